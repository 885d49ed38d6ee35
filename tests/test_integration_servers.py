"""The same code against real servers: an MLflow tracking server, a Spark standalone cluster.

Changing one config value (``mlflow.tracking_uri``, ``spark.master``) is all it takes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from servers import mlflow_server, spark_standalone

pytestmark = pytest.mark.integration


def test_remote_mlflow_tracking_server_is_one_config_value(tmp_path: Path) -> None:
    import mlflow
    from mlflow import MlflowClient

    from fleetvision.config import load_config
    from fleetvision.tracking import configure_mlflow, registered_model_name

    with mlflow_server(tmp_path) as url:
        cfg = load_config(overrides=[f"mlflow.tracking_uri={url}"], environ={})
        try:
            configure_mlflow(cfg)
            assert mlflow.get_tracking_uri() == url
            (tmp_path / "summary.json").write_text(json.dumps({"images": 3}))
            with mlflow.start_run(run_name="integration") as run:
                mlflow.log_param("mode", "full")
                mlflow.log_metric("images_scored", 3)
                mlflow.log_artifact(str(tmp_path / "summary.json"))
            client = MlflowClient()
            got = client.get_run(run.info.run_id)
            assert got.data.params["mode"] == "full" and got.data.metrics["images_scored"] == 3
            name = registered_model_name(cfg, "angle")
            client.create_registered_model(name)
            mv = client.create_model_version(name, f"runs:/{run.info.run_id}/summary.json", run.info.run_id)
            client.set_registered_model_alias(name, cfg.mlflow.model_alias, mv.version)
            assert client.get_model_version_by_alias(name, "champion").version == mv.version
            # the artifact went through the server, not the local filesystem
            local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="summary.json",
                                                        dst_path=str(tmp_path / "dl"))
            assert json.loads(Path(local).read_text()) == {"images": 3}
        finally:
            mlflow.set_tracking_uri(None)
            mlflow.set_registry_uri(None)


_SPARK_JOB = textwrap.dedent(
    """
    import sys
    import pandas as pd
    from pyspark.sql import functions as F
    from fleetvision.config import load_config
    from fleetvision.spark import build_spark

    master, warehouse = sys.argv[1], sys.argv[2]
    overrides = [f"spark.master={master}", f"paths.warehouse={warehouse}", "spark.driver_memory=1g",
                 "spark.extra={spark.executor.memory: 1g, spark.executor.cores: '1'}"]
    cfg = load_config(overrides=overrides, environ={})
    spark = build_spark(cfg)
    assert spark.sparkContext.master == master

    @F.pandas_udf("long")
    def double(s: pd.Series) -> pd.Series:  # runs in a Python worker on the executor
        return s * 2

    spark.sql("CREATE DATABASE IF NOT EXISTS fleetvision")
    spark.range(100).withColumn("twice", double("id")).write.format("delta").saveAsTable("fleetvision.doubled")
    total = spark.table("fleetvision.doubled").agg(F.sum("twice")).first()[0]
    executors = spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size()
    print("TOTAL", total, "EXECUTORS", executors)
    spark.stop()
    """
)


def test_spark_standalone_cluster_runs_a_pandas_udf_into_delta(tmp_path: Path) -> None:
    with spark_standalone(tmp_path) as cluster:
        proc = subprocess.run(
            [sys.executable, "-c", _SPARK_JOB, cluster.master_url, str(tmp_path / "wh")],
            capture_output=True,
            text=True,
            timeout=400,
        )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "TOTAL 9900" in proc.stdout
    # the driver plus at least one executor registered
    assert int(proc.stdout.split("EXECUTORS")[1].split()[0]) >= 2


def test_the_tracking_server_dying_mid_run_leaves_the_tables_committed_and_the_ledger_saying_so(
    spark, config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13: the MLflow server is killed right after the run's image_tags MERGE commits."""
    import threading
    import time

    import mlflow
    from servers import kill_server
    from test_score_job_support import OracleModels, StandInModelSet, write_inventory

    from fleetvision import tables
    from fleetvision.scoring.run import RunOptions, run_scoring
    from fleetvision.taxonomy import load_taxonomy

    # MLflow's client retries a dead server for about 4 minutes by default (docs/runbook.md); one quick retry here
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    taxonomy = load_taxonomy()
    db = config.tables.database
    inv = write_inventory(
        spark, db, tmp_path / "photos", taxonomy, n_listings=2, size=config.models.input_size, with_bad=False
    )
    outputs = (tables.IMAGE_TAGS, tables.PREDICTION_CACHE, tables.LISTING_COMPLETENESS, tables.HERO_IMAGES)
    tables.ensure_tables(spark, db, (*outputs, tables.SCORING_RUNS))
    location = {
        spec.name: Path(
            spark.sql(f"DESCRIBE DETAIL {tables.qualified(db, spec)}").first()["location"].removeprefix("file:")
        )
        for spec in (tables.IMAGE_TAGS, tables.LISTING_COMPLETENESS)
    }
    first_merge = "_delta_log/00000000000000000001.json"  # version 0 is the CREATE TABLE
    killed_at: list[float] = []
    with mlflow_server(tmp_path) as url:
        try:
            # the server is up when the run starts: its experiment is created through it
            mlflow.set_tracking_uri(url)
            experiment = f"score-{tmp_path.name}"
            mlflow.create_experiment(experiment)
            cfg = config.model_copy(
                update={"mlflow": config.mlflow.model_copy(update={"tracking_uri": url, "experiment": experiment})}
            )
            done = threading.Event()

            def kill_after_the_tags_commit() -> None:
                while not done.is_set():
                    if (location["image_tags"] / first_merge).exists():
                        kill_server(url)
                        killed_at.append(time.time())
                        return
                    time.sleep(0.05)

            killer = threading.Thread(target=kill_after_the_tags_commit, daemon=True)
            killer.start()
            options = RunOptions(
                mode="full",
                model_set=StandInModelSet(),
                loader=OracleModels(inv.pixel_truth, taxonomy),
                log_to_mlflow=True,
            )
            try:
                summary = run_scoring(spark, cfg, options)
            finally:
                done.set()
                killer.join(timeout=10)
        finally:
            mlflow.set_tracking_uri(None)
            mlflow.set_registry_uri(None)

    print(summary.render())
    assert killed_at, "the server was never killed: the image_tags MERGE did not commit"
    # the listing tables committed after the server was gone: the run went on without it
    assert (location["listing_completeness"] / first_merge).stat().st_mtime > killed_at[0]
    assert summary.status == "succeeded", summary.render()
    assert summary.mlflow_run_id is None and "MLflow logging failed" in (summary.message or "")
    ledger = spark.table(tables.qualified(db, tables.SCORING_RUNS)).collect()
    assert len(ledger) == 1 and ledger[0]["status"] == "succeeded"  # the watermark moved
    assert ledger[0]["mlflow_run_id"] is None and "MLflow logging failed" in ledger[0]["message"]
    tags = spark.table(tables.qualified(db, tables.IMAGE_TAGS))
    assert tags.count() == tags.select("image_id").distinct().count() == len(inv.truth_by_image)
    listings = spark.table(tables.qualified(db, tables.LISTING_COMPLETENESS))
    assert sorted(r["listing_id"] for r in listings.collect()) == inv.listing_ids
