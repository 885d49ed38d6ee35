"""The one place a SparkSession is built.

Jobs call :func:`build_spark` once; library code takes ``spark`` as an argument and never calls
``getOrCreate`` itself.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from pyspark.sql import SparkSession

from fleetvision.config import PROJECT_ROOT, Config

logger = logging.getLogger(__name__)


def spark_conf(config: Config) -> dict[str, str]:
    """The Spark settings for a configuration, as plain strings (also used to write spark-defaults)."""
    sc = config.spark
    warehouse = config.paths.location("warehouse")
    conf: dict[str, str] = {
        "spark.jars.packages": sc.delta_package,
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.warehouse.dir": str(warehouse),
        "spark.sql.shuffle.partitions": str(sc.shuffle_partitions),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(sc.arrow_max_records_per_batch),
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": str(sc.ui_enabled).lower(),
        "spark.driver.memory": sc.driver_memory,
        # Python workers are reused across tasks so the per-worker model cache survives batches.
        "spark.python.worker.reuse": "true",
        "spark.databricks.delta.schema.autoMerge.enabled": "false",
        # Delta rebuilds snapshots in 50 tasks by default: far too many for small tables and local mode.
        "spark.databricks.delta.snapshotPartitions": str(sc.shuffle_partitions),
        # Progress bars garble job logs; the run summary says what happened.
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
    }
    if sc.ivy_dir:
        conf["spark.jars.ivy"] = str(Path(sc.ivy_dir).expanduser())
    if sc.embedded_metastore:
        # Derby metastore under the warehouse: table names persist across sessions and processes.
        metastore = config.paths.resolve("warehouse") / "metastore_db"
        conf["spark.sql.catalogImplementation"] = "hive"
        conf["spark.hadoop.javax.jdo.option.ConnectionURL"] = f"jdbc:derby:;databaseName={metastore};create=true"
        conf["spark.hadoop.datanucleus.schema.autoCreateAll"] = "true"
        conf["spark.hadoop.hive.metastore.schema.verification"] = "false"
    if sc.gpu.enabled:
        script = Path(sc.gpu.discovery_script)
        if not script.is_absolute():
            script = PROJECT_ROOT / script
        conf.update(
            {
                "spark.executor.resource.gpu.amount": str(sc.gpu.executor_amount),
                "spark.task.resource.gpu.amount": str(sc.gpu.task_amount),
                "spark.executor.resource.gpu.discoveryScript": str(script),
                "spark.driver.resource.gpu.amount": "0",
            }
        )
    conf.update(sc.extra)
    return conf


def build_spark(config: Config, app_name: str | None = None) -> SparkSession:
    """Build (or return the running) SparkSession for a configuration.

    Delta Lake's jars are resolved from Maven by Spark (``spark.jars.packages``) and cached in the
    Ivy directory, so only the first run on a machine downloads them. With the embedded metastore,
    ``fleetvision.<table>`` names survive the session; only one process at a time may open it
    (Derby's embedded mode), which is what local runs and tests need.
    """
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if not config.paths.is_remote("warehouse"):
        config.paths.resolve("warehouse").mkdir(parents=True, exist_ok=True)
    builder = SparkSession.builder.appName(app_name or config.spark.app_name)
    if config.spark.master:
        builder = builder.master(config.spark.master)
    for k, v in spark_conf(config).items():
        builder = builder.config(k, v)
    if config.spark.embedded_metastore:
        builder = builder.enableHiveSupport()
    if config.spark.embedded_metastore:
        # Derby writes derby.log into the working directory unless told where its home is.
        derby_home = config.paths.resolve("warehouse")
        builder = builder.config("spark.driver.extraJavaOptions", f"-Dderby.system.home={derby_home}")
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    logger.info("spark %s up: master=%s warehouse=%s", spark.version, spark.sparkContext.master, config.paths.warehouse)
    return spark
