"""The shipped starter models (models/starter/) keep the scoring contract and say how they were made."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fleetvision.config import load_config
from fleetvision.models.spec import TASK_OUTPUTS, TASKS

STARTER = Path(__file__).resolve().parents[1] / "models" / "starter"
SHAPES = {"angle": (27,), "banner": (1,), "plate_presence": (1,), "plate_box": (4,), "body": (7,), "angle_group": (3,)}
OPTIONAL = {"angle": {"angle_group"}}  # the angle model's group head (scoring.shot_groups)


@pytest.mark.parametrize("task", TASKS)
def test_starter_model_matches_the_contract(task: str) -> None:
    from fleetvision.models.pretrained import load_saved_task_model, saved_model_file
    from fleetvision.models.serving import predict_fn_for

    path = saved_model_file(STARTER / task)
    assert path.is_file(), f"missing starter model {path}"
    # a head on the installed backbone (safe mode: built-in layers only), or a whole model file
    model = load_saved_task_model(STARTER / task, task)
    size = load_config(environ={}).models.input_size
    assert tuple(model.input_shape) == (None, size, size, 3) and model.inputs[0].dtype == "uint8"
    out = predict_fn_for(model, size)(np.random.default_rng(0).integers(0, 256, (2, size, size, 3), np.uint8))
    assert set(TASK_OUTPUTS[task]) <= set(out) <= set(TASK_OUTPUTS[task]) | OPTIONAL.get(task, set())
    for name, value in out.items():
        assert value.shape == (2, *SHAPES[name]) and np.isfinite(value).all()
    card = json.loads((STARTER / task / "metrics.json").read_text())
    assert card["task"] == task and card["command"].startswith(
        ("fleetvision train", "fleetvision soup", "fleetvision group-head"))
    # a joined angle model names both heads (group_head_job), each a training run or a soup of them
    for part in [card, *(card[k] for k in ("view_head", "group_head") if k in card)]:
        assert part["command"].startswith(("fleetvision train", "fleetvision soup", "fleetvision group-head"))
        for member in part.get("soup_of", []):  # a soup's members are training runs of one recipe, each recorded
            assert member["command"].startswith(f"fleetvision train {task}") and member["metrics"]
    assert card["metrics"] and card["eval_fingerprint"]


def test_starter_models_are_small() -> None:
    total = sum(p.stat().st_size for p in STARTER.rglob("*.keras"))
    assert total < 25 * 1024 * 1024, f"starter models take {total / 1e6:.1f} MB"


def test_read_model_folder_fuses_the_starter_set_as_scoring_does(tmp_path: Path) -> None:
    import keras

    from fleetvision.models.serving import read_model_folder

    folder = read_model_folder(STARTER)
    size = load_config(environ={}).models.input_size
    assert folder.input_size == size and set(folder.models) == set(TASKS)
    # one backbone pass for the four heads, keyed as serving.read_models keys a registry's set
    predictors = folder.predictors()
    assert list(predictors) == ["+".join(TASKS)]
    batch = np.random.default_rng(1).integers(0, 256, (3, size, size, 3), np.uint8)
    out = predictors["+".join(TASKS)](batch)
    # and the angle and plate heads' answers for the mirror image (scoring.mirror_image) and the angle model's
    # group head (scoring.shot_groups), same pass
    assert set(out) == {o for t in TASKS for o in TASK_OUTPUTS[t]} | {"angle_mirror", "plate_presence_mirror",
                                                                      "angle_group"}
    # the fused answer is each task model's own answer
    alone = folder.models["body"](batch, training=False)
    np.testing.assert_allclose(out["body"], np.asarray(alone["body"] if isinstance(alone, dict) else alone),
                               atol=1e-5)

    with pytest.raises(FileNotFoundError, match="no 'angle' model"):
        read_model_folder(tmp_path)
    with pytest.raises(ValueError, match="no tasks"):
        read_model_folder(STARTER, tasks=[])
    # a whole model.keras at another input size beside the starter heads: refused, sizes named
    (tmp_path / "banner").mkdir()
    inputs = keras.Input((64, 64, 3), dtype="uint8")
    x = keras.layers.GlobalAveragePooling2D()(keras.ops.cast(inputs, "float32"))
    keras.Model(inputs, {"banner": keras.layers.Dense(1, activation="sigmoid", name="banner")(x)}).save(
        tmp_path / "banner" / "model.keras"
    )
    for task in ("angle",):
        (tmp_path / task).symlink_to(STARTER / task)
    with pytest.raises(ValueError, match="different input sizes"):
        read_model_folder(tmp_path, tasks=["angle", "banner"])
