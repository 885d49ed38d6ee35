"""The labelling loop on Spark: suggest-labels -> labellers fill the CSV -> import-labels --votes."""

from __future__ import annotations

import argparse
import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.spark


def _jpeg(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def _tables(spark, db: str, tmp_path: Path) -> None:
    from fleetvision.tables import (
        IMAGE_TAGS,
        LISTING_IMAGES,
        LISTINGS,
        SCORING_RUNS,
        TRAINING_IMAGES,
        ensure_table,
        qualified,
    )

    now = datetime.now(UTC).replace(tzinfo=None)
    for spec in (LISTINGS, LISTING_IMAGES, IMAGE_TAGS, SCORING_RUNS):
        ensure_table(spark, db, spec)
    listings = [{"listing_id": f"L{i}", "body_type": "sedan", "updated_at": now} for i in range(3)]
    spark.createDataFrame(listings, LISTINGS.schema).write.format("delta").mode("append").saveAsTable(
        qualified(db, LISTINGS)
    )
    photo = tmp_path / "photos" / "uri_photo.png"  # inside the photo roots (paths.photos)
    photo.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((20, 30, 3), 90, np.uint8)).save(photo, "PNG")
    images, tags = [], []
    for i in range(6):
        listing = f"L{i % 3}"
        inline = i != 5
        images.append(
            {
                "image_id": f"img/{i}",
                "listing_id": listing,
                "position": i,
                "uri": None if inline else f"file://{photo}",
                "content": bytearray(_jpeg(i)) if inline else None,
                "updated_at": now,
            }
        )
        top = [("side_driver", 0.4 + 0.1 * (i % 2)), ("side_passenger", 0.35), ("full_front", 0.1)]
        tags.append(
            {
                "image_id": f"img/{i}",
                "listing_id": listing,
                "position": i,
                "decode_status": "ok",
                "angle": top[0][0],
                "angle_score": top[0][1],
                "angle_top3": [{"label": lab, "score": s} for lab, s in top],
                "shot_group": "exterior",
                "banner_score": 0.1,
                "banner_flag": False,
                "plate_score": 0.2,
                "plate_flag": False,
                "body_type": "suv" if i == 0 else "sedan",
                "body_score": 0.6,
                "scored_at": now,
                "run_id": "run-1",
            }
        )
    spark.createDataFrame(images, LISTING_IMAGES.schema).write.format("delta").mode("append").saveAsTable(
        qualified(db, LISTING_IMAGES)
    )
    spark.createDataFrame(tags, IMAGE_TAGS.schema).write.format("delta").mode("append").saveAsTable(
        qualified(db, IMAGE_TAGS)
    )
    run = {
        "run_id": "run-1",
        "mode": "full",
        "status": "succeeded",
        "started_at": now,
        "finished_at": now,
        "input_table_version": 1,
    }
    spark.createDataFrame([run], SCORING_RUNS.schema).write.format("delta").mode("append").saveAsTable(
        qualified(db, SCORING_RUNS)
    )
    # a training_images table from before angle_allowed, with one synthetic row
    old_schema = ", ".join(
        f"`{f.name}` {f.dataType.simpleString()}" for f in TRAINING_IMAGES.schema.fields if f.name != "angle_allowed"
    )
    spark.sql(f"CREATE TABLE {qualified(db, TRAINING_IMAGES)} ({old_schema}) USING delta")
    spark.sql(
        f"INSERT INTO {qualified(db, TRAINING_IMAGES)} VALUES ('old', 'votes:old', 'train', X'FFD8', 'boot', "
        "17, -1, -1, CAST(array() AS array<float>), NULL, -1, 'synthetic')"
    )


def test_suggest_fill_import_votes(spark, config, tmp_path: Path) -> None:
    from fleetvision import labels_import, suggest_job
    from fleetvision.feed import training_frame
    from fleetvision.label_consensus import angle_label_sets
    from fleetvision.tables import TRAINING_IMAGES, qualified
    from fleetvision.taxonomy import load_taxonomy

    taxonomy = load_taxonomy()
    db = config.tables.database
    _tables(spark, db, tmp_path)
    out = tmp_path / "to_label"
    args = argparse.Namespace(
        out=out, count=4, per_listing=2, pool_factor=5, run_id=None, all_tags=False, max_candidates=None
    )
    assert suggest_job.main(spark, config, args) == 0
    with (out / "labels.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and all((out / r["file"]).is_file() for r in rows)
    assert all(r["label"] == "" and r["suggested_label"] == "side_driver" for r in rows)
    assert any("listing says sedan" in r["reason"] for r in rows)  # img/0: body suv vs sedan
    assert all(Image.open(out / r["file"]).format == "JPEG" for r in rows)

    # three labellers fill their copies: two agree per photo
    answers = ["side", "interior", "suv", "side_driver"]
    for name, flip in (("alice", False), ("bob", False), ("carol", True)):
        with (out / f"{name}.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            for r, label in zip(rows, answers, strict=True):
                writer.writerow({**r, "label": "boot" if flip else label})
    cfg = config.model_copy(update={"models": config.models.model_copy(update={"consensus_min_votes": 2})})
    votes = argparse.Namespace(
        folder=None,
        votes=[str(out / f"{n}.csv") for n in ("alice", "bob", "carol")],
        images_dir=str(out),
        task="angle",
        dataset="votes:loop",
        report=tmp_path / "report.json",
    )
    assert labels_import.main(spark, cfg, votes) == 0
    table = spark.table(qualified(db, TRAINING_IMAGES))
    assert "angle_allowed" in table.columns  # added to the old table
    got = {r["angle"] or r["body_type"]: r for r in table.where("dataset = 'votes:loop'").collect()}
    sets = angle_label_sets(taxonomy)
    assert list(got["side"]["angle_allowed"]) == list(sets["side"]) and got["side"]["angle_index"] == -1
    assert list(got["interior"]["angle_allowed"]) == list(sets["interior"])
    assert list(got["suv"]["angle_allowed"]) == [] and got["suv"]["body_type"] == "suv"
    assert got["side_driver"]["angle_index"] == taxonomy.index("side_driver")
    old = table.where("sample_id = 'old'").first()
    assert old["angle_allowed"] is None  # old rows stay as they were

    masks = {
        r["sample_id"]: r["angle_mask"]
        for r in training_frame(spark, cfg, splits=("train", "val", "eval"), dataset_prefix="votes:").collect()
    }
    assert masks["old"] == 1 << 17
    by_sample = {r["sample_id"]: r for r in got.values()}
    for sample_id, r in by_sample.items():
        expected = sum(1 << i for i in (r["angle_allowed"] or []))
        if r["angle"] in ("side", "interior", "suv"):  # sets invariant under the flank mapping, or empty
            assert masks[sample_id] == expected
    angle_rows = training_frame(spark, cfg, splits=("train", "val", "eval"), dataset_prefix="votes:", tasks=("angle",))
    assert {r["sample_id"] for r in angle_rows.collect()} == {"old"} | {
        s for s, r in by_sample.items() if r["angle"] is not None
    }


def test_import_from_listings_labels_exterior_photos_with_the_declared_type(spark, config, tmp_path: Path) -> None:
    import json

    from fleetvision import labels_import
    from fleetvision.feed import training_frame
    from fleetvision.tables import TRAINING_IMAGES, qualified
    from fleetvision.taxonomy import load_taxonomy

    db = config.tables.database
    _tables(spark, db, tmp_path)  # 3 sedan listings, 6 exterior photos (img/5 read from its uri)
    report = tmp_path / "declared.json"
    args = argparse.Namespace(
        folder=None,
        votes=None,
        from_listings=True,
        images_dir=None,
        task=None,
        dataset=None,
        report=report,
        min_exterior=0.8,
        per_listing=1,
        per_type=2000,
    )
    assert labels_import.main(spark, config, args) == 0
    assert labels_import.main(spark, config, args) == 0  # re-run: the same rows, MERGEd by sample_id
    dataset = f"listings:{db}"
    rows = spark.table(qualified(db, TRAINING_IMAGES)).where(f"dataset = '{dataset}'").collect()
    # one photo a listing, its most surely exterior one (top-3 on exterior classes 0.95 against 0.85)
    assert len(rows) == 3
    assert {r["body_type"] for r in rows} == {"sedan"} and {r["source"] for r in rows} == {"listing_declared"}
    assert {r["body_index"] for r in rows} == {load_taxonomy().body_index("sedan")}
    assert all(r["angle_index"] == -1 and r["has_banner"] == -1 and r["plate_present"] == -1 for r in rows)
    written = json.loads(report.read_text())
    assert written["accepted"] == 3 and written["dropped_by_reason"] == {"over_cap": 3}
    assert sorted(d["image"] for d in written["dropped"]) == ["img/0", "img/2", "img/4"]
    body_rows = training_frame(
        spark, config, splits=("train", "val", "eval"), dataset_prefix="listings:", tasks=("body",)
    ).collect()
    assert {r["sample_id"] for r in body_rows} == {r["sample_id"] for r in rows}

    # it gives body types only
    assert labels_import.main(spark, config, argparse.Namespace(**{**vars(args), "task": "angle"})) == 2


def test_audit_declared_sample_then_import_corrects_listings_declared_wrong(spark, config, tmp_path: Path) -> None:
    import hashlib
    import json

    from fleetvision import labels_import, suggest_job
    from fleetvision.tables import TRAINING_IMAGES, qualified

    db = config.tables.database
    _tables(spark, db, tmp_path)  # 3 sedan listings, 2 exterior photos each (img/5 read from its uri)
    out = tmp_path / "audit"
    suggest_args = argparse.Namespace(out=out, count=200, per_listing=2, pool_factor=5, run_id=None, all_tags=False,
                                      max_candidates=None, audit_declared=2, min_exterior=0.8, seed=0)
    assert suggest_job.main(spark, config, suggest_args) == 0
    with (out / "labels.csv").open(newline="") as f:
        sample = list(csv.DictReader(f))
    assert len(sample) == 2 and len({r["listing_id"] for r in sample}) == 2
    assert {r["reason"] for r in sample} == {"declared_audit"} and {r["suggested_label"] for r in sample} == {"sedan"}
    # each listing's photo that shows its profile best (odd positions: side views 0.85 of the top-3, against 0.75)
    assert all(int(r["image_id"].split("/")[1]) % 2 == 1 for r in sample)
    assert all((out / r["file"]).is_file() for r in sample)
    # the same seed draws the same listings; --run-id does not go with it
    again = tmp_path / "again"
    assert suggest_job.main(spark, config, argparse.Namespace(**{**vars(suggest_args), "out": again})) == 0
    assert (again / "labels.csv").read_text() == (out / "labels.csv").read_text()
    assert suggest_job.main(spark, config, argparse.Namespace(**{**vars(suggest_args), "run_id": "run-1"})) == 2

    # a labeller finds the first listing is a hatch, the second a sedan as declared
    wrong_listing = sample[0]["listing_id"]
    labelled = out / "alice.csv"
    with labelled.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(sample[0]))
        writer.writeheader()
        writer.writerows([{**sample[0], "label": "hatch"}, {**sample[1], "label": "Sedan"}])
    report = tmp_path / "declared.json"
    args = argparse.Namespace(folder=None, votes=None, from_listings=True, images_dir=None, task=None, dataset=None,
                              report=report, min_exterior=0.8, per_listing=4, per_type=2000, audit=[labelled])
    assert labels_import.main(spark, config, args) == 0
    written = json.loads(report.read_text())
    assert written["audit"]["audited"] == 2 and written["audit"]["wrong"] == 1
    assert written["audit"]["wrong_listings"] == [wrong_listing] and written["audit"]["rate"] == 0.5
    assert written["audit"]["corrections"] == {wrong_listing: ["sedan", "hatch"]}
    assert written["dropped"] == [] and written["accepted"] == 6
    assert written["by_label"] == {"hatch": 2, "sedan": 4}
    # every exterior photo of the listing found wrong takes the type the labeller saw; the others keep theirs
    rows = spark.table(qualified(db, TRAINING_IMAGES)).where(f"dataset = 'listings:{db}'").collect()
    assert len(rows) == 6
    def sample_id(image: str) -> str:  # as label_rows.training_row names a row
        return hashlib.sha256(f"listings:{db}\n{image}\nbody".encode()).hexdigest()[:32]

    hatch = {sample_id(f"img/{i}") for i in range(6) if f"L{i % 3}" == wrong_listing}
    assert {r["sample_id"] for r in rows if r["body_type"] == "hatch"} == hatch
    assert {r["body_type"] for r in rows if r["sample_id"] not in hatch} == {"sedan"}

    # a CSV that is not an audit is refused before anything is written
    votes = tmp_path / "votes.csv"
    votes.write_text("image,labeller,label\na.jpg,bob,hatch\n")
    assert labels_import.main(spark, config, argparse.Namespace(**{**vars(args), "audit": [votes]})) == 2
