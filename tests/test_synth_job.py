"""Tier 2: ``fleetvision generate`` on a small inventory (Spark, Delta, change data feed)."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest
from PIL import Image, UnidentifiedImageError

from fleetvision.delta_writes import table_version
from fleetvision.synth import job
from fleetvision.synth.training_set import training_rows
from fleetvision.tables import (
    IMAGE_LABELS,
    LISTING_IMAGES,
    LISTINGS,
    TRAINING_IMAGES,
    TableContractError,
    qualified,
    validate_schema,
)
from fleetvision.taxonomy import load_taxonomy

pytestmark = pytest.mark.spark

def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    job.add_arguments(parser)
    return parser.parse_args(list(argv))


def _with(config, **synth):
    return config.model_copy(update={"synth": config.synth.model_copy(update=synth)})


def _table(spark, config, spec) -> list[dict]:
    return [r.asDict() for r in spark.table(qualified(config.tables.database, spec)).collect()]


@pytest.fixture(scope="module")
def inventory(spark, base_config, tmp_path_factory):
    """One small inventory for the module: 16 listings, 20% bad files, 40% daily churn, small files.

    The generate test reads it; the evolve test (last) changes it.
    """
    import uuid

    root = tmp_path_factory.mktemp("inventory")
    name = f"fv_{uuid.uuid4().hex[:10]}"
    spark.sql(f"CREATE DATABASE {name} LOCATION '{root / (name + '.db')}'")
    cfg = base_config.model_copy(update={
        "tables": base_config.tables.model_copy(update={"database": name}),
        "paths": base_config.paths.model_copy(update={"photos": str(root / "photos"), "reports": str(root / "r")}),
    })
    cfg = _with(cfg, bad_file_rate=0.2, evolve_rate=0.4, workers=1, photo_scale=0.25)
    assert job.main(spark, cfg, _args("--listings", "16", "--seed", "5")) == 0
    yield cfg
    spark.sql(f"DROP DATABASE IF EXISTS {name} CASCADE")


def _path(uri: str) -> Path:
    assert uri.startswith("file:///")
    return Path(uri[len("file://"):])


def test_generate_writes_the_input_tables_and_ground_truth(spark, inventory) -> None:
    cfg = inventory
    listings = _table(spark, cfg, LISTINGS)
    images = _table(spark, cfg, LISTING_IMAGES)
    labels = {r["image_id"]: r for r in _table(spark, cfg, IMAGE_LABELS)}
    db = cfg.tables.database
    for spec in (LISTINGS, LISTING_IMAGES, IMAGE_LABELS):
        validate_schema(spark.table(qualified(db, spec)).schema, spec)
    assert len(listings) == 16
    assert {r["seller_type"] for r in listings} == {"dealer", "private"}
    assert {r["image_id"] for r in images} == set(labels)
    assert {r["listing_id"] for r in images} == {r["listing_id"] for r in listings}
    bad = [labels[r["image_id"]] for r in images if labels[r["image_id"]]["bad_kind"]]
    assert abs(len(bad) / len(images) - 0.2) < 0.07
    assert {b["bad_kind"] for b in bad} == {"empty", "truncated", "not_image", "bomb", "missing_uri"}
    checked = 0
    for r in images:
        lab = labels[r["image_id"]]
        path = _path(r["uri"])
        assert r["content"] is None
        kind = lab["bad_kind"]
        if kind == "missing_uri":
            assert not path.exists()
        elif kind == "empty":
            assert path.stat().st_size == 0
        elif kind == "not_image":
            with pytest.raises(UnidentifiedImageError):
                Image.open(path)
        elif kind == "bomb":
            with pytest.raises(Image.DecompressionBombError):
                Image.open(path)
        elif kind == "truncated":
            with pytest.raises(OSError, match=r"(?i)truncat"):
                Image.open(path).load()
        elif checked < 40:  # a sample of the good files: they decode and match their labels
            img = Image.open(path)
            img.load()
            assert img.format == lab["file_format"] and lab["angle"] is not None
            checked += 1
        if lab["plate_present"]:
            x0, y0, x1, y1 = lab["plate_box"]
            assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
    shared = {}
    for r in images:
        shared.setdefault(labels[r["image_id"]]["photo_id"], set()).add(r["uri"])
    assert any(len(u) == 1 and sum(labels[i["image_id"]]["photo_id"] == pid for i in images) > 1
               for pid, u in shared.items()), "no photo re-used across a dealer's listings"


def test_evolve_changes_only_what_it_reports_and_the_cdf_shows_it(spark, inventory) -> None:
    cfg = inventory
    db = cfg.tables.database
    before_listings = {r["listing_id"]: r for r in _table(spark, cfg, LISTINGS)}
    before_images = {r["image_id"]: r for r in _table(spark, cfg, LISTING_IMAGES)}
    v0 = table_version(spark, db, LISTING_IMAGES)
    assert job.main(spark, cfg, _args("--evolve", "--workers", "1")) == 0
    report = json.loads((cfg.paths.resolve("reports") / "generate-day001.json").read_text())
    assert report["day"] == 1
    assert table_version(spark, db, LISTING_IMAGES) == v0 + 1  # one MERGE
    changes = (spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", v0 + 1)
               .table(qualified(db, LISTING_IMAGES)).select("image_id", "_change_type").collect())
    by_type: dict[str, set[str]] = {}
    for c in changes:
        by_type.setdefault(c["_change_type"], set()).add(c["image_id"])
    assert by_type.get("insert", set()) == set(report["images_added"])
    assert by_type.get("delete", set()) == set(report["images_removed"])
    assert by_type.get("update_postimage", set()) == set(report["images_replaced"])
    assert by_type.get("update_preimage", set()) == set(report["images_replaced"])
    assert report["images_added"] and report["listings_changed"]
    changed_active = set(report["listings_changed"]) - set(report["listings_added"])
    assert len(changed_active) == round(0.4 * 16)

    after_images = {r["image_id"]: r for r in _table(spark, cfg, LISTING_IMAGES)}
    for iid, row in before_images.items():  # untouched rows are byte-for-byte the same
        if iid in report["images_removed"]:
            assert iid not in after_images
        elif iid in report["images_replaced"]:
            assert after_images[iid]["uri"] != row["uri"] and after_images[iid]["updated_at"] > row["updated_at"]
        else:
            assert after_images[iid] == row
    after_listings = {r["listing_id"]: r for r in _table(spark, cfg, LISTINGS)}
    assert set(after_listings) - set(before_listings) == set(report["listings_added"])
    for lid, row in before_listings.items():
        if lid in report["listings_sold"]:
            assert after_listings[lid]["status"] == "sold"
        elif lid in report["listings_edited"]:
            assert abs(after_listings[lid]["year"] - row["year"]) == 1
        else:
            assert after_listings[lid] == row
    labels = {r["image_id"] for r in _table(spark, cfg, IMAGE_LABELS)}
    assert labels == set(after_images)


def test_inline_content_mode(spark, config) -> None:
    cfg = _with(config, workers=1, bad_file_rate=0.3, photo_scale=0.25)
    assert job.main(spark, cfg, _args("--listings", "2", "--inline")) == 0
    labels = {r["image_id"]: r for r in _table(spark, cfg, IMAGE_LABELS)}
    for r in _table(spark, cfg, LISTING_IMAGES):
        lab = labels[r["image_id"]]
        if lab["bad_kind"] == "missing_uri":
            assert r["content"] is None and not _path(r["uri"]).exists()
        else:
            assert len(r["content"]) == lab["byte_size"]
            if lab["bad_kind"] is None:
                Image.open(io.BytesIO(r["content"])).load()


def test_training_and_eval_sets(spark, config) -> None:
    cfg = _with(config, workers=1, train_per_class=2, val_per_class=1, eval_per_class=1, train_image_size=64)
    assert job.main(spark, cfg, _args("--training-set", "--eval-set")) == 0
    assert job.main(spark, cfg, _args("--training-set")) == 0  # a rerun replaces the dataset, not appends
    rows = _table(spark, cfg, TRAINING_IMAGES)
    validate_schema(spark.table(qualified(cfg.tables.database, TRAINING_IMAGES)).schema, TRAINING_IMAGES)
    by = {}
    for r in rows:
        by.setdefault((r["dataset"], r["split"]), []).append(r)
    # train/val hold the 8 exterior classes twice per round (synth.train_exterior_weight = 2): 27 + 8 = 35
    assert {k: len(v) for k, v in by.items()} == {
        ("synthetic-train-s7", "train"): 70, ("synthetic-train-s7", "val"): 35, ("synthetic-eval-s1001", "eval"): 27,
    }
    assert len({r["sample_id"] for r in rows}) == len(rows)
    img = Image.open(io.BytesIO(rows[0]["content"]))
    assert img.format == "JPEG" and max(img.size) == 64
    # the job's rows are the pure renderer's with the config's settings: train/val with the training-only
    # ones (exterior weight, uniform bodies, every plate style, the class yaw band), eval with none of them
    s, taxonomy = cfg.synth, load_taxonomy()
    assert s.train_yaw_band == "class"
    train = training_rows(taxonomy, cfg.market, 7, 2, "train", "synthetic-train-s7", 64, exterior_weight=2,
                          body_mix="uniform", plate_styles=tuple(s.train_plate_styles), yaw_band="class")
    evals = training_rows(taxonomy, cfg.market, 1001, 1, "eval", "synthetic-eval-s1001", 64)
    for (dataset, split), expected in ((("synthetic-train-s7", "train"), train),
                                       (("synthetic-eval-s1001", "eval"), evals)):
        written = {r["sample_id"]: r["content"] for r in by[(dataset, split)]}
        assert written == {r["sample_id"]: r["content"] for r in expected}, (dataset, split)


def test_evolve_without_an_inventory_fails_fast(spark, config) -> None:
    with pytest.raises(TableContractError, match="listings"):
        job.main(spark, config, _args("--evolve"))


def test_contact_sheet_command(spark, config, tmp_path: Path) -> None:
    out = tmp_path / "sheet.png"
    assert job.main(spark, config, _args("--contact-sheet", str(out))) == 0
    img = Image.open(out)
    assert img.format == "PNG" and img.width == 9 * 256
    assert not spark.catalog.tableExists(qualified(config.tables.database, LISTINGS))  # nothing else was made
