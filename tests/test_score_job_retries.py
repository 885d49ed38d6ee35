"""Spark task retries never duplicate rows (a dedicated ``local[2,2]`` session in a subprocess).

Local mode gives a task one attempt (``local[N]``); ``local[N,F]`` allows F attempts, so the injected
failure (``FLEETVISION_FAIL_AT=udf_first_attempt``: every scoring task raises on attempt 0) is retried
by Spark and the run must still write exactly one row per image. The session needs its own JVM,
hence the subprocess with its own warehouse and metastore.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.spark

_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from test_score_job_support import OracleModels, StandInModelSet, write_inventory
    from fleetvision import tables
    from fleetvision.config import load_config
    from fleetvision.scoring.run import RunOptions, run_scoring
    from fleetvision.spark import build_spark
    from fleetvision.taxonomy import load_taxonomy

    root = Path(sys.argv[1])
    cfg = load_config(overrides=[
        f"paths.warehouse={root / 'wh'}", f"paths.photos={root / 'photos'}", "spark.master=local[2,2]",
        "spark.driver_memory=1g",
        "spark.shuffle_partitions=2", "scoring.max_decode_error_rate=0.25", "scoring.min_scored_share=0.75",
        "spark.extra={spark.databricks.delta.snapshotPartitions: '2'}",
    ], environ={})
    spark = build_spark(cfg)
    taxonomy = load_taxonomy()
    db = cfg.tables.database
    inv = write_inventory(spark, db, root / "photos", taxonomy, n_listings=4, size=cfg.models.input_size)
    environ = {"FLEETVISION_FAIL_AT": "udf_first_attempt", "FLEETVISION_FAIL_MARKERS": str(root / "markers")}
    summary = run_scoring(spark, cfg, RunOptions(
        mode="full", model_set=StandInModelSet(), loader=OracleModels(inv.pixel_truth, taxonomy),
        log_to_mlflow=False, environ=environ))
    q = lambda spec: tables.qualified(db, spec)
    tags = spark.table(q(tables.IMAGE_TAGS))
    cache = spark.table(q(tables.PREDICTION_CACHE))
    out = {
        "status": summary.status,
        "images": spark.table(q(tables.LISTING_IMAGES)).count(),
        "tags": tags.count(),
        "tag_ids": tags.select("image_id").distinct().count(),
        "cache": cache.count(),
        "cache_keys": cache.select("content_hash", "model_set_id").distinct().count(),
        "photos_inferred": summary.photos_inferred,
        "listings": spark.table(q(tables.LISTING_COMPLETENESS)).count(),
        "wrong_angles": sum(
            1 for r in tags.collect()
            if r["image_id"] in inv.truth_by_image and r["angle"] != inv.truth_by_image[r["image_id"]].angle
        ),
    }
    print("RESULT " + json.dumps(out))
    spark.stop()
    """
)


def test_a_task_failing_on_its_first_attempt_is_retried_without_duplicate_rows(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    env.pop("FLEETVISION_FAIL_AT", None)
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=600, env=env
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout.split("RESULT ", 1)[1].splitlines()[0])
    markers = list((tmp_path / "markers").iterdir())
    assert markers, "the injected first-attempt failure never fired"
    assert result["status"] == "succeeded"
    assert result["tags"] == result["tag_ids"] == result["images"]
    assert result["cache"] == result["cache_keys"] == result["photos_inferred"]
    assert result["listings"] == 4 and result["wrong_angles"] == 0
