"""The scoring job on an inventory from the synthetic generator (``fleetvision generate``)."""

from __future__ import annotations

import argparse
import json

import pytest
from test_score_job_support import (
    BAD_KIND_CODES,
    OracleModels,
    StandInModelSet,
    synth_config,
    table_rows,
    truth_from_labels,
)

from fleetvision import tables
from fleetvision.scoring.run import RunOptions, run_scoring
from fleetvision.synth import job as synth_job
from fleetvision.taxonomy import load_taxonomy

pytestmark = pytest.mark.spark

OUTPUTS = (tables.IMAGE_TAGS, tables.PREDICTION_CACHE, tables.LISTING_COMPLETENESS, tables.HERO_IMAGES)


def _generate(spark, config, *flags: str) -> None:
    parser = argparse.ArgumentParser()
    synth_job.add_arguments(parser)
    assert synth_job.main(spark, config, parser.parse_args(list(flags))) == 0


def _run(spark, config, taxonomy, mode: str):
    loader = OracleModels(truth_from_labels(spark, config, taxonomy), taxonomy)
    return run_scoring(
        spark, config, RunOptions(mode=mode, model_set=StandInModelSet(), loader=loader, log_to_mlflow=False)
    )


def test_generated_inventory_full_then_evolve_and_incremental(spark, config, tmp_path):
    config = synth_config(config, n_listings=10)
    taxonomy = load_taxonomy()
    db = config.tables.database
    q = lambda spec: tables.qualified(db, spec)  # noqa: E731
    _generate(spark, config, "--inventory")

    full = _run(spark, config, taxonomy, "full")
    assert full.status == "succeeded", full.render()
    labels = {r["image_id"]: r for r in spark.table(q(tables.IMAGE_LABELS)).collect()}
    tags = {r["image_id"]: r for r in spark.table(q(tables.IMAGE_TAGS)).collect()}
    images = {r["image_id"] for r in spark.table(q(tables.LISTING_IMAGES)).select("image_id").collect()}
    assert set(tags) == images and len(tags) == spark.table(q(tables.IMAGE_TAGS)).count()
    bad = {i: r["bad_kind"] for i, r in labels.items() if r["bad_kind"]}
    assert bad, "the generated inventory should contain bad files"
    for image_id, row in tags.items():
        if image_id in bad:
            assert (row["decode_status"], row["error_code"]) == ("error", BAD_KIND_CODES[bad[image_id]]), image_id
        else:
            assert row["decode_status"] == "ok", (image_id, row["error_detail"])
            assert row["angle"] == labels[image_id]["angle"]  # the oracle is right, so the tags are
            assert row["banner_flag"] == labels[image_id]["has_banner"]
    active = {r["listing_id"] for r in spark.table(q(tables.LISTINGS)).filter("status = 'active'").collect()}
    assert {r["listing_id"] for r in spark.table(q(tables.LISTING_COMPLETENESS)).collect()} == active
    hero_angles = [
        labels[r["hero_image_id"]]["angle"]
        for r in spark.table(q(tables.HERO_IMAGES)).collect()
        if r["hero_image_id"] is not None
    ]
    preferred = set(config.scoring.hero_preference)
    assert sum(a in preferred for a in hero_angles) >= 0.9 * len(hero_angles)  # exterior shots lead

    _generate(spark, config, "--evolve")
    report = sorted((config.paths.resolve("reports")).glob("generate-day*.json"))[-1].read_text()
    day = json.loads(report)
    inc = _run(spark, config, taxonomy, "incremental")
    assert inc.status == "succeeded" and inc.mode == "incremental", inc.render()
    changed = set(day["images_added"]) | set(day["images_replaced"])
    tags = {r["image_id"]: r for r in spark.table(q(tables.IMAGE_TAGS)).collect()}
    assert {i for i, r in tags.items() if r["run_id"] == inc.run_id} == changed
    assert not set(day["images_removed"]) & set(tags)
    assert inc.images_deleted == len(day["images_removed"])
    assert inc.images_in == len(changed)
    active = {r["listing_id"] for r in spark.table(q(tables.LISTINGS)).filter("status = 'active'").collect()}
    expected = set(day["listings_changed"]) & active
    assert inc.listings_updated <= len(expected | set(day["listings_edited"]))
    scored = {r["listing_id"] for r in spark.table(q(tables.LISTING_COMPLETENESS)).collect()}
    assert scored == active and not set(day["listings_sold"]) & scored

    after_incremental = {spec.name: table_rows(spark, q(spec)) for spec in OUTPUTS}
    again = _run(spark, config, taxonomy, "full")
    assert again.photos_inferred == 0
    assert {spec.name: table_rows(spark, q(spec)) for spec in OUTPUTS} == after_incremental
