"""Tier 2: the petastorm feed (Spark -> tf.data) on a tiny training_images table."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.spark

SRC = Path(__file__).resolve().parents[1] / "src"


def jpeg_bytes(array: np.ndarray, fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, fmt)
    return buf.getvalue()


def training_row(
    sample_id: str,
    content: bytes,
    *,
    split: str = "train",
    dataset: str = "synthetic-train-t",
    angle_index: int = -1,
    has_banner: int = -1,
    plate_present: int = -1,
    plate_box: Sequence[float] = (),
    body_index: int = -1,
) -> dict[str, Any]:
    """A training_images row (only the labels given are known)."""
    return {
        "sample_id": sample_id,
        "dataset": dataset,
        "split": split,
        "content": bytearray(content),
        "angle": None,
        "angle_index": angle_index,
        "has_banner": has_banner,
        "plate_present": plate_present,
        "plate_box": list(plate_box),
        "body_type": None,
        "body_index": body_index,
        "source": "test",
    }


def write_training_rows(spark, database: str, rows: Sequence[dict[str, Any]]) -> None:
    from fleetvision.delta_writes import merge_upsert
    from fleetvision.tables import TRAINING_IMAGES, ensure_table

    ensure_table(spark, database, TRAINING_IMAGES)
    merge_upsert(spark, database, TRAINING_IMAGES, spark.createDataFrame(list(rows), TRAINING_IMAGES.schema))


def _rows() -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(10):
        img = rng.integers(0, 256, (40 + i, 60, 3), dtype=np.uint8)
        plate = i % 2 == 0
        rows.append(
            training_row(
                f"s{i:02d}",
                jpeg_bytes(img, "PNG" if i == 3 else "JPEG"),
                angle_index=i,
                has_banner=i % 2,
                plate_present=int(plate),
                plate_box=[0.1, 0.2, 0.3, 0.25] if plate else [],
                body_index=i % 7 if i < 8 else -1,
            )
        )
    rows.append(
        training_row(
            "e00",
            jpeg_bytes(rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)),
            split="eval",
            dataset="synthetic-eval-t",
            angle_index=5,
        )
    )
    rows.append(
        training_row(
            "other",
            jpeg_bytes(rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)),
            dataset="folder:/elsewhere",
            angle_index=1,
        )
    )
    # a plate marked present whose box is unknown (an import with presence labels only)
    rows.append(training_row("nobox", jpeg_bytes(rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)), plate_present=1))
    return rows


def test_feed_yields_the_right_rows_shapes_and_labels(spark, config, database) -> None:
    from fleetvision.feed import tf_examples, training_frame

    write_training_rows(spark, database, _rows())
    frame = training_frame(spark, config, splits=("train",), dataset_prefix="synthetic")
    with tf_examples(spark, frame, config, with_sample_id=True) as (examples, n):
        got = {ex["sample_id"].decode(): ex for ex in examples.as_numpy_iterator()}
    assert n == 11 and set(got) == {f"s{i:02d}" for i in range(10)} | {"nobox"}
    s4 = got["s04"]
    assert isinstance(s4["content"], bytes) and s4["content"][:3] == b"\xff\xd8\xff"
    assert (s4["angle_index"], s4["has_banner"], s4["plate_present"], s4["box_known"], s4["body_index"]) == (
        4,
        0,
        1,
        1,
        4,
    )
    np.testing.assert_allclose(s4["box"], [0.1, 0.2, 0.3, 0.25], atol=1e-6)
    assert got["s05"]["box_known"] == 0 and got["s09"]["body_index"] == -1
    assert got["nobox"]["plate_present"] == 1 and got["nobox"]["box_known"] == 0
    assert got["s03"]["content"][:4] == b"\x89PNG"
    # a body-only run reads only rows with a body label (exterior shots)
    body = training_frame(spark, config, splits=("train",), dataset_prefix="synthetic", tasks=("body",))
    assert sorted(r["sample_id"] for r in body.select("sample_id").collect()) == [f"s{i:02d}" for i in range(8)]
    cache = Path(config.paths.resolve("artifacts")) / "petastorm"
    assert cache.is_dir()
    assert spark.conf.get("petastorm.spark.converter.parentCacheDirUrl") == cache.as_uri()


def test_feed_into_the_training_pipeline(spark, config, database) -> None:
    from fleetvision.feed import tf_examples, training_frame
    from fleetvision.models.pipeline import training_dataset
    from fleetvision.models.spec import TrainSpec
    from fleetvision.taxonomy import load_taxonomy

    write_training_rows(spark, database, _rows())
    cfg = config.model_copy(update={"models": config.models.model_copy(update={"input_size": 48})})
    spec = TrainSpec.from_config(cfg, ("angle", "plate", "body"), quick=True, batch_size=4)
    frame = training_frame(spark, cfg, splits=("train",), dataset_prefix="synthetic", max_rows=8, seed=1)
    with tf_examples(spark, frame, cfg) as (examples, n):
        batches = list(training_dataset(examples, spec, load_taxonomy().flip_permutation))
    assert n == 8 and [int(b[0].shape[0]) for b in batches] == [4, 4]
    x, y, w = batches[0]
    assert x.shape == (4, 48, 48, 3) and x.dtype.name == "uint8"
    assert set(y) == {"angle", "plate_presence", "plate_box", "body"}
    assert y["plate_box"].shape == (4, 4) and y["plate_presence"].shape == (4, 1)
    # the box trains only where a plate is present with a known box
    present = y["plate_presence"].numpy()[:, 0] == 1
    assert (w["plate_box"].numpy() <= present).all()


def test_eval_set_is_sorted_and_fingerprinted(spark, config, database) -> None:
    from fleetvision.feed import EmptyDatasetError, load_eval_set

    write_training_rows(spark, database, _rows())
    eval_set = load_eval_set(spark, config)
    assert eval_set.sample_ids == ("e00",) and eval_set.labels.angle_index.tolist() == [5]
    assert len(eval_set.fingerprint) == 16 and "split=eval" in eval_set.description
    with pytest.raises(EmptyDatasetError, match=r"no evaluation rows .* dataset starting 'nothing'"):
        load_eval_set(spark, config, dataset_prefix="nothing")


def test_only_the_feed_imports_petastorm() -> None:
    pattern = re.compile(r"^\s*(import petastorm|from petastorm)", re.MULTILINE)
    offenders = [
        str(p.relative_to(SRC)) for p in SRC.rglob("*.py") if pattern.search(p.read_text()) and p.name != "feed.py"
    ]
    assert offenders == []


def test_feed_turns_market_labels_into_flank_classes_for_the_market_driver_side(spark, config, database) -> None:
    """training_images holds market labels; the feed gives the angle model flank classes."""
    from fleetvision.feed import training_frame
    from fleetvision.taxonomy import load_taxonomy

    tax = load_taxonomy()
    img = jpeg_bytes(np.zeros((8, 8, 3), np.uint8))
    labels = {"a": "side_driver", "b": "front_3q_passenger", "c": "dashboard"}
    write_training_rows(spark, database, [training_row(k, img, angle_index=tax.index(v)) for k, v in labels.items()])
    for driver_side, want in (
        ("right", {"a": "side_right", "b": "front_3q_left", "c": "dashboard"}),
        ("left", {"a": "side_left", "b": "front_3q_right", "c": "dashboard"}),
    ):
        cfg = config.model_copy(update={"market": config.market.model_copy(update={"driver_side": driver_side})})
        rows = training_frame(spark, cfg, splits=("train",), dataset_prefix="synthetic").collect()
        assert {r["sample_id"]: tax.flank_names[r["angle_index"]] for r in rows} == want
