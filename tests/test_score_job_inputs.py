"""Input rows the contract does not expect (issue 13): duplicate ``image_id`` rows, images of unknown listings.

Tier 2: the session's ``local[2]`` Spark, real Delta tables, the stand-in models. The rules are in
``fleetvision.scoring.work`` (module docstring) and ``docs/runbook.md`` (*Failure modes*).
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from pathlib import Path

import pytest
from delta.tables import DeltaTable
from test_score_job_support import OracleModels, StandInModelSet, make_photo_row, write_inventory

from fleetvision import tables
from fleetvision.scoring import work as W
from fleetvision.scoring.run import RunOptions, run_scoring

pytestmark = pytest.mark.spark


def _q(config, spec) -> str:
    return tables.qualified(config.tables.database, spec)


def _run(spark, config, inventory, taxonomy, mode: str = "full"):
    options = RunOptions(
        mode=mode,
        model_set=StandInModelSet(),
        loader=OracleModels(inventory.pixel_truth, taxonomy),
        log_to_mlflow=False,
    )
    summary = run_scoring(spark, config, options)
    print(summary.render())
    assert summary.status == "succeeded", summary.render()
    return summary


def _append(spark, config, rows) -> None:
    frame = spark.createDataFrame(rows, tables.LISTING_IMAGES.schema)
    frame.write.format("delta").mode("append").saveAsTable(_q(config, tables.LISTING_IMAGES))
    # the output tables, as a run creates them, so the selection can be looked at before the first run
    outputs = (tables.IMAGE_TAGS, tables.PREDICTION_CACHE, tables.LISTING_COMPLETENESS, tables.HERO_IMAGES)
    tables.ensure_tables(spark, config.tables.database, (*outputs, tables.SCORING_RUNS))


def _sha256(row) -> str:
    return hashlib.sha256(bytes(row["content"])).hexdigest()


def _tags(spark, config) -> dict:
    rows = spark.table(_q(config, tables.IMAGE_TAGS)).collect()
    by_id = {r["image_id"]: r for r in rows}
    assert len(by_id) == len(rows), "an image has two tag rows"
    return by_id


def test_duplicate_image_rows_the_latest_updated_at_wins_and_the_others_are_counted_and_named(
    spark, config, taxonomy, tmp_path, caplog
):
    size = config.models.input_size
    db = config.tables.database
    inv = write_inventory(spark, db, tmp_path / "photos", taxonomy, n_listings=3, size=size, with_bad=False)
    original = {r["image_id"]: r for r in inv.rows}
    l002_truth = inv.truth_by_image["L002-00"]
    # a newer row for L000-01 (other bytes), an exact copy of L001-02, an older row for L002-00 (other bytes)
    newer = make_photo_row(inv, taxonomy, "L000", "L000-01", 1, "dashboard", False, "suv", True, size, 40_000_000, 901)
    newer["updated_at"] = datetime(2026, 1, 2)
    older = make_photo_row(inv, taxonomy, "L002", "L002-00", 0, "boot", False, "suv", True, size, 40_000_000, 902)
    older["updated_at"] = datetime(2025, 12, 31)
    inv.truth_by_image["L002-00"] = l002_truth  # the older row loses: the first row's truth stands
    _append(spark, config, [newer, dict(original["L001-02"]), older])
    n_rows = spark.table(_q(config, tables.LISTING_IMAGES)).count()
    n_images = len(inv.truth_by_image)
    assert n_rows == n_images + 3

    anomalies = W.select_work(spark, config.tables.database, "full", None).anomalies
    assert anomalies == W.InputAnomalies(3, ("L000-01", "L001-02", "L002-00"), 0, ())

    with caplog.at_level(logging.WARNING, logger="fleetvision.scoring.work"):
        run = _run(spark, config, inv, taxonomy)
    warned = [r.getMessage() for r in caplog.records if r.name == "fleetvision.scoring.work"]
    assert any("3 duplicate listing_images row(s)" in m and "L000-01, L001-02, L002-00" in m for m in warned), warned
    assert run.dq_passed and "3 duplicate listing_images row(s)" in (run.message or "")  # in the ledger too
    # every input row is accounted for: one tag per image, plus the 3 superseded rows
    assert run.images_in == n_images and run.images_in + anomalies.superseded_rows == n_rows
    tags = _tags(spark, config)
    assert set(tags) == set(inv.truth_by_image)
    assert tags["L000-01"]["angle"] == "dashboard" and tags["L000-01"]["content_hash"] == _sha256(newer)
    assert tags["L002-00"]["angle"] == l002_truth.angle and tags["L002-00"]["content_hash"] != _sha256(older)
    assert all(tags[i]["angle"] == t.angle for i, t in inv.truth_by_image.items())
    # the superseded bytes were never inferred; the cache has one row per photo
    cache = spark.table(_q(config, tables.PREDICTION_CACHE))
    hashes = [r["content_hash"] for r in cache.collect()]
    assert len(hashes) == len(set(hashes)) == run.photos_inferred and _sha256(older) not in hashes

    # the nightly path: one more row for L000-01, newer still; the incremental run takes it
    newest = make_photo_row(inv, taxonomy, "L000", "L000-01", 1, "boot", False, "suv", True, size, 40_000_000, 903)
    newest["updated_at"] = datetime(2026, 1, 3)
    _append(spark, config, [newest])
    watermark = W.last_watermark(spark, config.tables.database)
    incremental = W.select_work(spark, config.tables.database, "incremental", watermark).anomalies
    assert incremental == W.InputAnomalies(2, ("L000-01",), 0, ())
    again = _run(spark, config, inv, taxonomy, mode="incremental")
    assert again.mode == "incremental" and again.images_in == 1 and again.photos_inferred == 1
    tags = _tags(spark, config)
    assert len(tags) == n_images and tags["L000-01"]["angle"] == "boot"
    assert tags["L000-01"]["content_hash"] == _sha256(newest)


def test_images_of_a_listing_missing_from_listings_are_tagged_and_scored_once_it_arrives(
    spark, config, taxonomy, tmp_path, caplog
):
    size = config.models.input_size
    db = config.tables.database
    inv = write_inventory(spark, db, tmp_path / "photos", taxonomy, n_listings=3, size=size, with_bad=False)
    orphans = [
        make_photo_row(inv, taxonomy, "L999", "L999-00", 0, "full_front", False, "ute", True, size, 40_000_000, 911),
        make_photo_row(inv, taxonomy, "L999", "L999-01", 1, "dashboard", False, "ute", False, size, 40_000_000, 912),
    ]
    _append(spark, config, orphans)
    assert W.select_work(spark, db, "full", None).anomalies == W.InputAnomalies(0, (), 2, ("L999",))

    with caplog.at_level(logging.WARNING, logger="fleetvision.scoring.work"):
        run = _run(spark, config, inv, taxonomy)
    assert any("2 image(s) of listings missing from listings" in r.getMessage() for r in caplog.records)
    # tags are facts about photos: written, inferred and counted like any other
    assert run.images_in == run.images_scored == len(inv.truth_by_image)
    tags = _tags(spark, config)
    assert set(tags) == set(inv.truth_by_image)
    assert [tags[i]["angle"] for i in ("L999-00", "L999-01")] == ["full_front", "dashboard"]
    assert tags["L999-00"]["listing_id"] == "L999" and tags["L999-00"]["decode_status"] == "ok"
    # a listing that does not exist has no status: no completeness or hero row
    completeness = {r["listing_id"] for r in spark.table(_q(config, tables.LISTING_COMPLETENESS)).collect()}
    heroes = {r["listing_id"] for r in spark.table(_q(config, tables.HERO_IMAGES)).collect()}
    assert completeness == heroes == set(inv.listing_ids) and run.listings_updated == 3

    # the listing arrives (active) and another leaves listings: the next incremental run follows both
    listings = _q(config, tables.LISTINGS)
    spark.createDataFrame(
        [("L999", "Ford", "Ranger", 2022, "ute", "private", "S9", "active", datetime(2026, 1, 2))],
        tables.LISTINGS.schema,
    ).write.format("delta").mode("append").saveAsTable(listings)
    DeltaTable.forName(spark, listings).delete("listing_id = 'L002'")
    again = _run(spark, config, inv, taxonomy, mode="incremental")
    assert again.images_in == 0 and again.photos_inferred == 0
    assert again.listings_updated == 1 and again.listings_removed == 1
    rows = {r["listing_id"]: r for r in spark.table(_q(config, tables.LISTING_COMPLETENESS)).collect()}
    assert set(rows) == {"L000", "L001", "L999"}
    assert rows["L999"]["n_photos"] == 2 and sorted(rows["L999"]["shots_present"]) == ["dashboard", "full_front"]
    heroes = {r["listing_id"]: r for r in spark.table(_q(config, tables.HERO_IMAGES)).collect()}
    assert set(heroes) == {"L000", "L001", "L999"} and heroes["L999"]["hero_image_id"] in {"L999-00", "L999-01"}
    # L002's photos keep their tags (facts about photos); only its listing rows went
    assert {i for i, r in _tags(spark, config).items() if r["listing_id"] == "L002"} == {
        i for i in inv.truth_by_image if i.startswith("L002")
    }


def test_input_anomalies_say_nothing_when_clean_and_name_the_ids_otherwise():
    assert W.InputAnomalies().note() is None
    note = W.InputAnomalies(2, ("a", "b"), 3, ("L9",)).note()
    assert note is not None and "2 duplicate listing_images row(s)" in note and ": a, b;" in note
    assert note.endswith("3 image(s) of listings missing from listings, tagged without completeness: L9")


def test_each_photo_is_read_once_the_bytes_hashed_are_the_bytes_inferred(spark, config, taxonomy, tmp_path):
    """Issue 11: the hash stage stages the bytes it hashed; inference decodes those, never the uri again.

    Every uri photo is overwritten with other bytes between the two stages (a feed replacing files during
    a run): the predictions still belong to the bytes that were hashed.
    """
    from fleetvision.scoring import ScoringRules, image_stages
    from fleetvision.scoring.staging import Staging
    from fleetvision.scoring.tags import prediction_cache_key
    from fleetvision.scoring.udf import UdfSettings

    db = config.tables.database
    inv = write_inventory(
        spark, db, tmp_path / "photos", taxonomy, n_listings=4, size=config.models.input_size, with_bad=False
    )
    _append(spark, config, [])
    selection = W.select_work(spark, db, "full", None)
    settings = UdfSettings.from_config(config, {})
    rules = ScoringRules.from_config(config.scoring, taxonomy, driver_side=config.market.driver_side)
    staging = Staging(spark, db, "read-once")
    try:
        hashed = image_stages.hash_photos(staging, selection.images, settings, 2)
        uri_photos = {r["uri"] for r in inv.rows if r["uri"]}
        assert uri_photos, "the inventory has no uri photos"
        for uri in uri_photos:
            Path(uri.removeprefix("file://")).write_bytes(b"replaced after hashing: not an image")
        # both joins (ids broadcast, bytes left in place; or shuffled) pick the same photos
        todo = image_stages.photos_to_infer(spark, db, hashed, prediction_cache_key("s", "right"), broadcast_ids=True)
        shuffled = image_stages.photos_to_infer(
            spark, db, hashed, prediction_cache_key("s", "right"), broadcast_ids=False
        )
        assert "BroadcastHashJoin" in todo._jdf.queryExecution().executedPlan().toString()
        assert sorted(map(tuple, todo.select("content_hash", "image_id").collect())) == sorted(
            map(tuple, shuffled.select("content_hash", "image_id").collect())
        )
        n = todo.count()
        assert n == hashed.select("content_hash").distinct().count()
        predicted = image_stages.infer_photos(
            staging, todo, n, StandInModelSet(), settings, taxonomy, rules, OracleModels(inv.pixel_truth, taxonomy),
            None,
        )
        by_hash = {r["content_hash"]: r for r in predicted.collect()}
        for row in hashed.select("image_id", "content_hash").collect():
            prediction = by_hash[row["content_hash"]]
            assert prediction["decode_status"] == "ok", (row["image_id"], prediction["error_detail"])
            assert prediction["angle"] == inv.truth_by_image[row["image_id"]].angle, row["image_id"]
    finally:
        staging.remove()
