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
