"""The scoring job on a tiny inventory with stand-in models (tier 2: one local Spark session)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from test_score_job_support import (
    BAD_KIND_CODES,
    OracleModels,
    StandInModelSet,
    evolve_inventory,
    inferred_rows,
    table_rows,
    write_inventory,
)

from fleetvision import delta_writes, tables
from fleetvision.scoring import ScoringRules, job
from fleetvision.scoring.completeness import completeness
from fleetvision.scoring.hero import pick_hero
from fleetvision.scoring.run import InjectedFailureError, RunOptions, run_scoring
from fleetvision.scoring.work import last_watermark

pytestmark = pytest.mark.spark

OUTPUTS = (tables.IMAGE_TAGS, tables.PREDICTION_CACHE, tables.LISTING_COMPLETENESS, tables.HERO_IMAGES)


@pytest.fixture()
def config(config):
    """The test config with thresholds that fit a tiny inventory with one bad file of each kind."""
    scoring = config.scoring.model_copy(update={"max_decode_error_rate": 0.25, "min_scored_share": 0.75})
    return config.model_copy(update={"scoring": scoring})


@pytest.fixture()
def inventory(spark, config, taxonomy, tmp_path):
    return write_inventory(spark, config.tables.database, tmp_path / "photos", taxonomy, size=config.models.input_size)


def _options(inventory, taxonomy, tmp_path: Path, mode: str = "full", **kw) -> RunOptions:
    loader = OracleModels(inventory.pixel_truth, taxonomy, log_dir=str(tmp_path / "calls"))
    mlflow = kw.pop("mlflow", False)
    return RunOptions(mode=mode, model_set=StandInModelSet(), loader=loader, log_to_mlflow=mlflow, **kw)


def _q(config, spec) -> str:
    return tables.qualified(config.tables.database, spec)


def _own_experiment(config, tmp_path: Path):
    """The config with an MLflow experiment of its own whose artifacts stay under tmp_path."""
    import mlflow

    name = f"score-{tmp_path.name}"
    mlflow.set_tracking_uri(config.mlflow.resolved_tracking_uri())
    mlflow.create_experiment(name, artifact_location=(tmp_path / "mlartifacts").as_uri())
    return config.model_copy(update={"mlflow": config.mlflow.model_copy(update={"experiment": name})})


def test_full_run_tags_every_image_once_and_matches_the_truth(spark, config, inventory, taxonomy, tmp_path):
    config = _own_experiment(config, tmp_path)
    summary = run_scoring(spark, config, _options(inventory, taxonomy, tmp_path, mlflow=True))
    print(summary.render())
    assert summary.status == "succeeded", summary.render()

    tags = {r["image_id"]: r for r in spark.table(_q(config, tables.IMAGE_TAGS)).collect()}
    images = [r["image_id"] for r in spark.table(_q(config, tables.LISTING_IMAGES)).select("image_id").collect()]
    assert sorted(tags) == sorted(images)  # exactly one row per image, failures included
    for image_id, kind in inventory.bad_kind_by_image.items():
        assert tags[image_id]["decode_status"] == "error"
        assert tags[image_id]["error_code"] == BAD_KIND_CODES[kind], (image_id, tags[image_id]["error_detail"])
    for image_id, truth in inventory.truth_by_image.items():
        row = tags[image_id]
        assert row["decode_status"] == "ok" and row["error_code"] is None
        assert row["angle"] == truth.angle
        assert row["banner_flag"] == truth.has_banner
        assert row["plate_flag"] == truth.plate_present
        assert row["model_set_id"] == "standin-1" and row["model_versions"]["angle"] == "1"
        assert row["run_id"] == summary.run_id and len(row["content_hash"]) == 64
    assert tags["L000-00"]["content_hash"] == tags["L001-00"]["content_hash"]

    # counts: the re-used photo is inferred once; 5 bad files, one without bytes
    assert summary.images_in == len(images)
    assert summary.images_failed == len(BAD_KIND_CODES)
    assert summary.images_scored == len(inventory.truth_by_image)
    assert summary.photos_inferred == len(inventory.truth_by_image) - 1 + 4  # 4 bad files have bytes
    # a first run scores in one pass (the cache holds nothing for the model set): each copy of the re-used
    # photo is scored, once per copy, and the cache takes one prediction per content hash
    assert inferred_rows(tmp_path / "calls") == len(inventory.truth_by_image)
    cache = spark.table(_q(config, tables.PREDICTION_CACHE))
    assert cache.count() == cache.select("content_hash").distinct().count() == summary.photos_inferred

    # listing level equals the pure functions applied to the ground truth
    rules = ScoringRules.from_config(config.scoring, taxonomy)
    pdf = spark.table(_q(config, tables.IMAGE_TAGS)).toPandas()
    heroes = {r["listing_id"]: r for r in spark.table(_q(config, tables.HERO_IMAGES)).collect()}
    scores = {r["listing_id"]: r for r in spark.table(_q(config, tables.LISTING_COMPLETENESS)).collect()}
    assert sorted(heroes) == sorted(scores) == inventory.listing_ids
    listings = {r["listing_id"]: r.asDict() for r in spark.table(_q(config, tables.LISTINGS)).collect()}
    for lid in inventory.listing_ids:
        group = pdf[pdf.listing_id == lid]
        expected_hero = pick_hero(group, taxonomy, rules)
        assert heroes[lid]["hero_image_id"] == expected_hero.image_id
        assert inventory.truth_by_image[expected_hero.image_id].angle in rules.hero_preference
        expected = completeness(listings[lid], group, taxonomy, rules)
        assert scores[lid]["completeness_score"] == pytest.approx(expected["completeness_score"])
        assert sorted(scores[lid]["shots_present"]) == sorted(
            {t.angle for i, t in inventory.truth_by_image.items() if i.startswith(lid)}
        )
    assert scores["L000"]["n_failed"] == len(BAD_KIND_CODES)

    # the ledger row is the watermark; every commit says which run wrote it
    ledger = spark.table(_q(config, tables.SCORING_RUNS)).collect()
    assert len(ledger) == 1 and ledger[0]["status"] == "succeeded" and ledger[0]["dq_passed"]
    assert ledger[0]["mlflow_run_id"] == summary.mlflow_run_id is not None
    assert json.loads(ledger[0]["dq_report"])
    for spec in (*OUTPUTS, tables.SCORING_RUNS):
        history = spark.sql(f"DESCRIBE HISTORY {_q(config, spec)}").filter(F.col("operation") != "CREATE TABLE")
        metadata = {r["userMetadata"] for r in history.collect()}
        assert metadata == {f"fleetvision run_id={summary.run_id}"}, spec.name


def test_second_full_run_infers_nothing_and_leaves_the_tables_equal(spark, config, inventory, taxonomy, tmp_path):
    first = run_scoring(spark, config, _options(inventory, taxonomy, tmp_path))
    before = {spec.name: table_rows(spark, _q(config, spec)) for spec in OUTPUTS}
    calls = inferred_rows(tmp_path / "calls")
    second = run_scoring(spark, config, _options(inventory, taxonomy, tmp_path))
    assert second.status == "succeeded"
    assert second.photos_inferred == 0 and second.images_scored == 0
    assert second.images_cached == first.images_scored + first.images_cached
    assert inferred_rows(tmp_path / "calls") == calls
    after = {spec.name: table_rows(spark, _q(config, spec)) for spec in OUTPUTS}
    assert after == before
    assert last_watermark(spark, config.tables.database).run_id == second.run_id


def test_two_pass_and_one_pass_runs_write_the_same_tags(spark, config, inventory, taxonomy, tmp_path):
    def scoring(one_pass: str):
        return config.model_copy(update={"scoring": config.scoring.model_copy(update={"one_pass": one_pass})})

    def tags() -> dict:
        rows = spark.table(_q(config, tables.IMAGE_TAGS)).drop("run_id", "scored_at").collect()
        return {r["image_id"]: r.asDict(recursive=True) for r in rows}

    # a first run that hashes first: the bytes staged, the re-used photo scored once
    first = run_scoring(spark, scoring("never"), _options(inventory, taxonomy, tmp_path))
    assert first.status == "succeeded" and first.stage_seconds.keys() >= {"hash", "infer"}
    assert inferred_rows(tmp_path / "calls") == len(inventory.truth_by_image) - 1
    two_pass = tags()
    cache = table_rows(spark, _q(config, tables.PREDICTION_CACHE))
    # then one pass over the same photos although the cache could answer them all: every photo is read,
    # hashed and scored again, nothing new reaches the cache, and the tags are the same
    again = run_scoring(spark, scoring("always"), _options(inventory, taxonomy, tmp_path))
    assert again.status == "succeeded" and "hash" not in again.stage_seconds
    assert inferred_rows(tmp_path / "calls") == 2 * len(inventory.truth_by_image) - 1
    assert (again.images_in, again.images_failed, again.photos_inferred) == (
        first.images_in, first.images_failed, first.photos_inferred
    )
    assert tags() == two_pass
    assert table_rows(spark, _q(config, tables.PREDICTION_CACHE)) == cache


def test_runs_killed_before_their_ledger_row_then_rerun_equal_one_clean_run(
    spark, config, inventory, taxonomy, tmp_path
):
    # killed after the image_tags MERGE, then (rerun) after every MERGE but before the ledger row
    for fail_at in ("after_tags_merge", "before_ledger"):
        options = _options(inventory, taxonomy, tmp_path, environ={"FLEETVISION_FAIL_AT": fail_at})
        with pytest.raises(InjectedFailureError, match=fail_at):
            run_scoring(spark, config, options)
        assert spark.table(_q(config, tables.SCORING_RUNS)).count() == 0  # the watermark did not move
    rerun = run_scoring(spark, config, _options(inventory, taxonomy, tmp_path, mode="incremental"))
    assert rerun.status == "succeeded" and rerun.mode == "full"  # no watermark yet: incremental runs full
    assert rerun.photos_inferred == 0  # the killed runs' predictions were kept in the cache
    killed_and_rerun = {spec.name: table_rows(spark, _q(config, spec)) for spec in OUTPUTS}

    # one clean run over the same inventory in a fresh database
    clean_db = config.tables.database + "_clean"
    spark.sql(f"CREATE DATABASE {clean_db} LOCATION '{tmp_path / (clean_db + '.db')}'")
    try:
        clean_config = config.model_copy(update={"tables": config.tables.model_copy(update={"database": clean_db})})
        clean_inv = write_inventory(spark, clean_db, tmp_path / "photos", taxonomy, size=config.models.input_size)
        run_scoring(spark, clean_config, _options(clean_inv, taxonomy, tmp_path / "clean"))
        clean = {spec.name: table_rows(spark, tables.qualified(clean_db, spec)) for spec in OUTPUTS}
    finally:
        spark.sql(f"DROP DATABASE IF EXISTS {clean_db} CASCADE")
    assert killed_and_rerun == clean


def test_a_data_quality_breach_exits_1_and_does_not_move_the_watermark(
    spark, config, inventory, taxonomy, tmp_path, monkeypatch, capsys
):
    strict = config.model_copy(update={"scoring": config.scoring.model_copy(update={"max_decode_error_rate": 0.0})})
    monkeypatch.setattr(
        "fleetvision.scoring.job.RunOptions",
        lambda mode, log_to_mlflow: _options(inventory, taxonomy, tmp_path, mode=mode, mlflow=log_to_mlflow),
    )
    code = job.main(spark, strict, argparse.Namespace(mode="full", no_mlflow=True))
    out = capsys.readouterr().out
    assert code == 1
    assert "BREACHED: decode_error_rate" in out and "watermark       NOT moved" in out
    ledger = spark.table(_q(config, tables.SCORING_RUNS)).collect()
    assert [r["status"] for r in ledger] == ["failed_dq"] and ledger[0]["dq_passed"] is False
    assert last_watermark(spark, config.tables.database) is None
    # with the default thresholds the same work passes and moves the watermark
    assert job.main(spark, config, argparse.Namespace(mode="incremental", no_mlflow=True)) == 0
    assert last_watermark(spark, config.tables.database) is not None


def test_bad_input_table_fails_fast_with_exit_2(spark, config, capsys):
    tables.ensure_database(spark, config.tables.database)
    spark.createDataFrame([("x",)], "listing_id string").write.format("delta").saveAsTable(_q(config, tables.LISTINGS))
    code = job.main(spark, config, argparse.Namespace(mode="full", no_mlflow=True))
    assert code == 2
    err = capsys.readouterr().err
    assert "listings" in err and "missing column(s)" in err
    assert not spark.catalog.tableExists(_q(config, tables.SCORING_RUNS))


def test_incremental_run_scores_exactly_the_changes_and_matches_a_full_run(
    spark, config, inventory, taxonomy, tmp_path
):
    first = run_scoring(spark, config, _options(inventory, taxonomy, tmp_path))
    completeness_version = delta_writes.table_version(spark, config.tables.database, tables.LISTING_COMPLETENESS)
    evolution = evolve_inventory(spark, config.tables.database, inventory, taxonomy, size=config.models.input_size)
    calls = inferred_rows(tmp_path / "calls")

    run = run_scoring(spark, config, _options(inventory, taxonomy, tmp_path, mode="incremental"))
    assert run.status == "succeeded" and run.mode == "incremental", run.render()
    assert run.from_version == first.input_table_version + 1
    assert run.images_in == len(evolution.changed_images)
    assert run.images_deleted == len(evolution.deleted_images)
    assert run.photos_inferred == inferred_rows(tmp_path / "calls") - calls == len(evolution.new_bytes)
    assert run.listings_updated == len(evolution.recomputed_listings)
    assert run.listings_removed == len(evolution.removed_listings)

    tags = {r["image_id"]: r for r in spark.table(_q(config, tables.IMAGE_TAGS)).collect()}
    images = {r["image_id"] for r in spark.table(_q(config, tables.LISTING_IMAGES)).collect()}
    assert set(tags) == images and not evolution.deleted_images & set(tags)
    assert {i for i, r in tags.items() if r["run_id"] == run.run_id} == evolution.changed_images
    assert tags["L003-00"]["angle"] == "boot" and tags["L004-02"]["position"] == 7

    # only affected listings changed in listing_completeness (its change feed says so)
    feed = (
        spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", completeness_version + 1)
        .table(_q(config, tables.LISTING_COMPLETENESS))
    )
    touched = {r["listing_id"] for r in feed.select("listing_id").distinct().collect()}
    assert touched <= evolution.recomputed_listings | evolution.removed_listings
    assert {"L003", "L006", "L001"} <= touched
    listings = {r["listing_id"] for r in spark.table(_q(config, tables.LISTING_COMPLETENESS)).collect()}
    assert listings == (set(inventory.listing_ids) | {"L006"}) - evolution.removed_listings
    heroes = {r["listing_id"] for r in spark.table(_q(config, tables.HERO_IMAGES)).collect()}
    assert heroes == listings

    # a full run on the evolved inventory changes nothing: incremental == full
    after_incremental = {spec.name: table_rows(spark, _q(config, spec)) for spec in OUTPUTS}
    full = run_scoring(spark, config, _options(inventory, taxonomy, tmp_path))
    assert full.photos_inferred == 0
    assert {spec.name: table_rows(spark, _q(config, spec)) for spec in OUTPUTS} == after_incremental

    # nothing new: an incremental run selects nothing
    idle = run_scoring(spark, config, _options(inventory, taxonomy, tmp_path, mode="incremental"))
    assert idle.images_in == 0 and idle.listings_updated == 0 and idle.status == "succeeded"


_HOLDER = """
import sys
from fleetvision.catalog import register_warehouse_tables
from fleetvision.config import load_config
from fleetvision.spark import build_spark

warehouse, database = sys.argv[1], sys.argv[2]
cfg = load_config(overrides=[f"paths.warehouse={warehouse}", "spark.master=local[1]", "spark.driver_memory=1g"],
                  environ={})
spark = build_spark(cfg)
print("HOLDING", spark.table(f"{database}.listing_images").count(), flush=True)
sys.stdin.readline()
register_warehouse_tables(spark, warehouse)
print("TAGS", spark.table(f"{database}.image_tags").count(), flush=True)
spark.stop()
"""


def test_a_run_starts_and_finishes_while_another_spark_process_holds_the_warehouse(
    spark, config, taxonomy, tmp_path, warehouse_dir
):
    """An analyst's shell (a second Spark process) has the warehouse open during the run."""
    import subprocess
    import sys
    import uuid

    database = f"fv_shared_{uuid.uuid4().hex[:8]}"  # under the warehouse, where other processes look
    config = config.model_copy(update={"tables": config.tables.model_copy(update={"database": database})})
    tables.ensure_database(spark, database)
    inventory = write_inventory(spark, database, tmp_path / "photos", taxonomy, size=config.models.input_size)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(warehouse_dir), database],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = holder.stdout.readline()
        n_images = spark.table(_q(config, tables.LISTING_IMAGES)).count()
        assert line.split() == ["HOLDING", str(n_images)], (line, holder.poll() is not None and holder.stderr.read())
        summary = run_scoring(spark, config, _options(inventory, taxonomy, tmp_path))
        assert summary.status == "succeeded", summary.render()
        holder.stdin.write("go\n")
        holder.stdin.flush()
        out, err = holder.communicate(timeout=180)
        assert holder.returncode == 0, err[-3000:]
        assert f"TAGS {n_images}" in out  # the holder reads the tables the run wrote while it was open
    finally:
        if holder.poll() is None:
            holder.kill()
        spark.sql(f"DROP DATABASE IF EXISTS {database} CASCADE")
