"""The one place a SparkSession is built.

Jobs call :func:`build_spark` once; library code takes ``spark`` as an argument and never calls
``getOrCreate`` itself.

Quiet by default: the driver JVM logs warnings and errors through the package's
``resources/log4j2.properties`` (which drops known-harmless ones), Ivy's dependency report is filtered
out of the JVM's stderr, and the Python workers get ``TF_CPP_MIN_LOG_LEVEL``. ``quiet=False``
(``--verbose``) leaves Spark, Ivy and TensorFlow as they are.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path
from typing import IO

from pyspark import SparkConf, SparkContext
from pyspark.sql import SparkSession

from fleetvision.config import Config, base_dir
from fleetvision.log_noise import JvmStderrFilter

logger = logging.getLogger(__name__)


def quiet_tf_log_level(config: Config) -> str:
    """``TF_CPP_MIN_LOG_LEVEL`` of the executors' Python workers in quiet runs: 3 on CPU, 2 with GPUs.

    3 also drops TensorFlow's C++ errors, which on a CPU-only run are the CUDA probe failing in every
    process ("failed call to cuInit"); with GPU executors CUDA errors matter, so they stay (level 2).
    ``spark.extra: {spark.executorEnv.TF_CPP_MIN_LOG_LEVEL: "0"}`` overrides it.
    """
    return "2" if config.spark.gpu.enabled else "3"


def spark_conf(config: Config, quiet: bool = True) -> dict[str, str]:
    """The Spark settings for a configuration, as plain strings (also used to write spark-defaults).

    Args:
        config: The job configuration.
        quiet: Also quiet TensorFlow's C++ logs in the executors' Python workers.
    """
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
    if quiet:
        # the executors' Python workers import TensorFlow; their stderr is the console in local mode
        conf["spark.executorEnv.TF_CPP_MIN_LOG_LEVEL"] = quiet_tf_log_level(config)
        conf["spark.executorEnv.MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
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
            script = base_dir() / script
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


def build_spark(config: Config, app_name: str | None = None, quiet: bool = True) -> SparkSession:
    """Build (or return the running) SparkSession for a configuration.

    Delta Lake's jars are resolved from Maven by Spark (``spark.jars.packages``) and cached in the
    Ivy directory, so only the first run on a machine downloads them. With the embedded metastore,
    ``fleetvision.<table>`` names survive the session; only one process at a time may open it
    (Derby's embedded mode), which is what local runs and tests need.

    Args:
        config: The job configuration.
        app_name: Spark application name (default ``spark.app_name``).
        quiet: Warnings and errors only from Spark, without Ivy's report or TensorFlow's C++ logs
            (module docstring); False leaves them as Spark and TensorFlow print them.
    """
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if quiet:
        # read when TensorFlow is first imported (driver) and inherited by local-mode Python workers
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", quiet_tf_log_level(config))
    if not config.paths.is_remote("warehouse"):
        config.paths.resolve("warehouse").mkdir(parents=True, exist_ok=True)
    builder = SparkSession.builder.appName(app_name or config.spark.app_name)
    if config.spark.master:
        builder = builder.master(config.spark.master)
    settings = spark_conf(config, quiet=quiet)
    java_options = [settings.pop("spark.driver.extraJavaOptions", "")]
    if config.spark.embedded_metastore:
        builder = builder.enableHiveSupport()
        # Derby writes derby.log into the working directory unless told where its home is.
        java_options.append(f"-Dderby.system.home={config.paths.resolve('warehouse')}")
    if quiet:
        from fleetvision.resources import resource_path

        java_options.append(f"-Dlog4j2.configurationFile={resource_path('log4j2.properties').as_uri()}")
    if any(java_options):
        settings["spark.driver.extraJavaOptions"] = " ".join(o for o in java_options if o)
    for k, v in settings.items():
        builder = builder.config(k, v)
    if quiet:
        _launch_filtered_gateway(settings, config.spark.master)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    logger.info("spark %s up: master=%s warehouse=%s", spark.version, spark.sparkContext.master, config.paths.warehouse)
    return spark


def _forward(stream: IO[bytes], line_filter: JvmStderrFilter) -> None:
    for raw in iter(stream.readline, b""):
        if line_filter.keep(raw.decode("utf-8", errors="replace")):
            os.write(2, raw)


def _launch_filtered_gateway(settings: dict[str, str], master: str | None) -> None:
    """Start the driver JVM with its stderr piped through :class:`JvmStderrFilter`.

    Only when this process starts the JVM itself: under spark-submit (``PYSPARK_GATEWAY_PORT`` set), or
    once a session has run in this process, the JVM already exists and its output is left alone.
    ``SparkSession.builder`` then finds the gateway and starts the context in that JVM.
    """
    if os.environ.get("PYSPARK_GATEWAY_PORT"):
        return
    from pyspark.java_gateway import launch_gateway

    with SparkContext._lock:
        if SparkContext._gateway is not None:
            return
        conf = SparkConf(loadDefaults=False)
        if master:
            conf.setMaster(master)
        for k, v in settings.items():
            conf.set(k, v)
        # read from before the JVM starts: a full pipe would block it while launch_gateway waits for it
        read_fd, write_fd = os.pipe()
        reader = os.fdopen(read_fd, "rb")
        threading.Thread(target=_forward, args=(reader, JvmStderrFilter()), name="jvm-stderr", daemon=True).start()
        try:
            gateway = launch_gateway(conf, popen_kwargs={"stderr": write_fd})
        finally:
            os.close(write_fd)  # the JVM holds its own copy
        SparkContext._gateway = gateway
        SparkContext._jvm = gateway.jvm
