"""``fleetvision soup``: heads of several seeds averaged into one model folder, logged and registered.

The members are the shipped angle head with seeded noise on its weights (three "seeds" of one recipe),
on the installed backbone; the evaluation test reads a small frozen set through one local Spark session.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_feed import jpeg_bytes, training_row, write_training_rows

from fleetvision.models import soup_job

STARTER = Path(__file__).resolve().parents[1] / "models" / "starter"
TASK = "angle"


def _member(root: Path, seed: int, **spec_changes) -> Path:
    """``root/<TASK>/``: the starter angle head with noise drawn from ``seed``, its backbone.json, and its
    model card with that seed (and ``spec_changes``): as ``train --out root --set models.seed=N`` saves."""
    import keras

    folder = root / TASK
    folder.mkdir(parents=True)
    shutil.copy(STARTER / TASK / "backbone.json", folder / "backbone.json")
    head = keras.saving.load_model(STARTER / TASK / "head.keras", compile=False)
    rng = np.random.default_rng(seed)
    head.set_weights([w + rng.normal(0, 0.05, w.shape).astype(w.dtype) for w in head.get_weights()])
    head.save(folder / "head.keras")
    card = json.loads((STARTER / TASK / "metrics.json").read_text())
    card["spec"] = {**card["spec"], "seed": seed, **spec_changes}
    card["mlflow_run_id"] = f"run-{seed}"
    (folder / "metrics.json").write_text(json.dumps(card))
    return root


def _args(members: list[Path], out: Path, **kw) -> argparse.Namespace:
    return argparse.Namespace(
        task=TASK,
        members=members,
        out=out,
        register=kw.pop("register", False),
        no_eval=kw.pop("no_eval", True),
        conf=None,
        overrides=[],
        **kw,
    )


@pytest.fixture()
def soup_config(local_mlflow_config):
    return local_mlflow_config


def test_the_soup_is_the_members_mean_saved_as_a_head_with_its_card_and_registered(soup_config, tmp_path) -> None:
    import keras

    from fleetvision.models.pretrained import load_saved_task_model
    from fleetvision.models.resolve import mlflow_client

    members = [_member(tmp_path / f"s{seed}", seed) for seed in (0, 1, 2)]
    out = tmp_path / "soup"
    (out / TASK).mkdir(parents=True)
    (out / TASK / "model.keras").write_text("a whole model saved here before")  # would be read as the model
    assert soup_job.main(None, soup_config, _args(members, out, register=True)) == 0

    assert sorted(p.name for p in (out / TASK).iterdir()) == ["backbone.json", "head.keras", "metrics.json"]
    soup = keras.saving.load_model(out / TASK / "head.keras", compile=False)
    weights = [keras.saving.load_model(m / TASK / "head.keras", compile=False).get_weights() for m in members]
    for got, *parts in zip(soup.get_weights(), *weights, strict=True):
        np.testing.assert_allclose(got, np.mean(parts, axis=0), rtol=1e-6, atol=1e-7)
    assert soup.name == "head_angle"
    # a head like any other: on the installed backbone, image in, the angle softmax out
    model = load_saved_task_model(out / TASK, TASK)
    probs = model.predict(np.zeros((1, *model.input_shape[1:]), np.uint8), verbose=0)["angle"]
    assert probs.shape == (1, 27) and abs(float(probs.sum()) - 1) < 1e-4

    card = json.loads((out / TASK / "metrics.json").read_text())
    assert card["task"] == TASK and card["command"].startswith("fleetvision soup angle --members")
    assert card["spec"]["seed"] == [0, 1, 2] and card["metrics"] == {} and card["eval_set"] is None
    assert [(m["seed"], m["mlflow_run_id"]) for m in card["soup_of"]] == [(0, "run-0"), (1, "run-1"), (2, "run-2")]
    assert card["soup_of"][0]["metrics"] == json.loads((STARTER / TASK / "metrics.json").read_text())["metrics"]
    client = mlflow_client(soup_config)
    version = client.search_model_versions("name='fleetvision-angle'")[0]
    assert version.tags["fleetvision.source"] == "soup"
    run = client.get_run(card["mlflow_run_id"])
    assert run.data.params["member_seeds"] == "0,1,2" and run.data.params["member_runs"] == "run-0,run-1,run-2"
    assert run.data.tags["fleetvision.job"] == "soup"


def test_members_of_other_recipes_backbones_or_places_are_refused_and_nothing_is_written(
    soup_config, tmp_path, caplog
) -> None:
    a, b = _member(tmp_path / "a", 0), _member(tmp_path / "b", 1, epochs=9)
    out = tmp_path / "soup"
    assert soup_job.main(None, soup_config, _args([a, b], out)) == 2
    assert "different recipes (epochs: [5, 9])" in caplog.text
    assert soup_job.main(None, soup_config, _args([a, _member(tmp_path / "c", 0)], out)) == 2
    assert "seeds repeat" in caplog.text
    other = _member(tmp_path / "d", 3)
    meta = json.loads((other / TASK / "backbone.json").read_text())
    (other / TASK / "backbone.json").write_text(json.dumps({**meta, "input_size": 192}))
    assert soup_job.main(None, soup_config, _args([a, other], out)) == 2
    assert "different backbones" in caplog.text
    (tmp_path / "e").mkdir()
    assert soup_job.main(None, soup_config, _args([a, tmp_path / "e"], out)) == 2
    assert "no head.keras" in caplog.text
    nocard = _member(tmp_path / "f", 4)
    (nocard / TASK / "metrics.json").unlink()
    assert soup_job.main(None, soup_config, _args([a, nocard], out)) == 2
    assert "no metrics.json" in caplog.text
    # heads trained on weights other than the installed package's
    stale = [_member(tmp_path / f"w{seed}", seed) for seed in (6, 7)]
    for member in stale:
        meta = json.loads((member / TASK / "backbone.json").read_text())
        (member / TASK / "backbone.json").write_text(json.dumps({**meta, "weights_digest": "0" * 16}))
    assert soup_job.main(None, soup_config, _args(stale, out)) == 2
    assert "install the pinned package version" in caplog.text
    assert not out.exists()
    # the soup may not overwrite one of its members
    g = _member(tmp_path / "g", 5)
    before = (g / TASK / "head.keras").read_bytes()
    assert soup_job.main(None, soup_config, _args([a, g], g)) == 2
    assert "would overwrite one of its inputs" in caplog.text and (g / TASK / "head.keras").read_bytes() == before


@pytest.mark.spark
def test_the_soup_is_evaluated_on_the_frozen_set_as_train_does(spark, config, soup_config, tmp_path) -> None:
    from fleetvision.models.resolve import mlflow_client

    rows = []
    for i in range(6):
        img = np.full((60, 80, 3), 30 * i, np.uint8)
        rows.append(training_row(f"e{i}", jpeg_bytes(img), split="eval", dataset="synthetic-eval-t", angle_index=i))
    write_training_rows(spark, config.tables.database, rows)
    cfg = config.model_copy(update={"mlflow": soup_config.mlflow})
    members = [_member(tmp_path / f"s{seed}", seed) for seed in (0, 1)]
    assert soup_job.main(spark, cfg, _args(members, tmp_path / "soup", register=True, no_eval=False)) == 0
    card = json.loads((tmp_path / "soup" / TASK / "metrics.json").read_text())
    assert card["metrics"]["n"] == 6.0 and 0.0 <= card["metrics"]["top1"] <= 1.0
    assert len(card["eval_fingerprint"]) == 16 and card["eval_set"]
    client = mlflow_client(cfg)
    run = client.get_run(card["mlflow_run_id"])
    assert run.data.metrics["eval.angle.n"] == 6.0
    version = client.search_model_versions("name='fleetvision-angle'")[0]
    assert version.tags["eval.top1"] == f"{card['metrics']['top1']:.6g}"
