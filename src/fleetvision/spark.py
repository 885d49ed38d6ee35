"""The one place a SparkSession is built.

Jobs call :func:`build_spark` once; library code takes ``spark`` as an argument and never calls
``getOrCreate`` itself.

Quiet by default: the driver JVM logs warnings and errors through the package's
``resources/log4j2.properties`` (which drops known-harmless ones), Ivy's dependency report is filtered
out of the JVM's stderr, and the Python workers get ``TF_CPP_MIN_LOG_LEVEL``. ``quiet=False``
(``--verbose``) leaves Spark, Ivy and TensorFlow as they are.

Under spark-submit, spark-submit's settings win: its flags, its ``--conf`` values and
``spark-defaults.conf`` (the master above all) are kept, and the config file fills in only what they
leave unset (:func:`plan_session`). Delta Lake's classes are checked before the session exists
(:func:`check_delta_classes`): spark-submit ignores ``spark.jars.packages`` set from Python, so a
missing ``--packages`` is named at once instead of surfacing as a catalog error.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import IO, Any

from pyspark import SparkConf, SparkContext
from pyspark.sql import SparkSession

from fleetvision.config import Config, base_dir
from fleetvision.log_noise import JvmStderrFilter

logger = logging.getLogger(__name__)

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
# Where the chosen master came from; recorded on the session so a run summary can say it.
MASTER_SOURCE_CONF = "spark.fleetvision.masterSource"
SOURCE_SPARK_SUBMIT, SOURCE_SPARK_DEFAULTS, SOURCE_CONFIG = "spark-submit", "spark-defaults", "config"
SOURCE_SPARK_DEFAULT = "Spark's default"
SPARK_DEFAULT_MASTER = "local[*]"  # what spark-submit runs on when nobody names a master


class DeltaJarsMissingError(RuntimeError):
    """Spark's driver cannot load Delta Lake's classes; the message is one line naming the fix."""


@dataclass(frozen=True)
class SessionPlan:
    """Which settings the session builder applies, once spark-submit's own have been taken into account.

    Attributes:
        master: The master the job runs on.
        master_source: Where it came from: ``spark-submit`` (its ``--master``, or ``--master`` in
            ``PYSPARK_SUBMIT_ARGS``), ``spark-defaults`` (``spark-defaults.conf``), ``config`` (the
            config file, an environment variable or ``--set``) or ``Spark's default`` (``local[*]``).
        apply_master: Whether the builder sets ``master`` (only when it comes from the config).
        settings: The config's settings to apply (those spark-submit left unset).
        kept_from_submit: Keys the config also sets, with a different value, that keep spark-submit's or
            spark-defaults.conf's value.
    """

    master: str
    master_source: str
    apply_master: bool
    settings: dict[str, str]
    kept_from_submit: tuple[str, ...]


def plan_session(
    config_master: str | None,
    config_settings: Mapping[str, str],
    *,
    under_spark_submit: bool,
    submitted: Mapping[str, str],
    defaults: Mapping[str, str],
    submit_args_master: str | None = None,
) -> SessionPlan:
    """Decide which master and settings a session gets: spark-submit's settings win over the config.

    Args:
        config_master: ``spark.master`` from the config (None: not set there).
        config_settings: The config's other Spark settings (:func:`spark_conf`).
        under_spark_submit: spark-submit started this Python process (its JVM is already running).
        submitted: The settings spark-submit started the JVM with (its flags, ``--conf`` values and
            ``spark-defaults.conf``); ignored unless ``under_spark_submit``.
        defaults: The entries of ``spark-defaults.conf`` (empty if there is none).
        submit_args_master: ``--master`` in ``PYSPARK_SUBMIT_ARGS`` when this process starts Spark itself.

    Returns:
        The plan; nothing it names is applied yet.
    """
    held = dict(submitted) if under_spark_submit else dict(defaults)
    if under_spark_submit and held.get("spark.master"):
        master = held["spark.master"]
        # spark-submit resolves --master, then spark-defaults.conf, then local[*]: equal to the defaults' value
        # means it came from there (or from an identical --master, which says the same)
        source = SOURCE_SPARK_DEFAULTS if defaults.get("spark.master") == master else SOURCE_SPARK_SUBMIT
    elif not under_spark_submit and submit_args_master:
        master, source = submit_args_master, SOURCE_SPARK_SUBMIT
        held["spark.master"] = master
    elif held.get("spark.master"):
        master, source = held["spark.master"], SOURCE_SPARK_DEFAULTS
    elif config_master:
        master, source = config_master, SOURCE_CONFIG
    else:
        master, source = SPARK_DEFAULT_MASTER, SOURCE_SPARK_DEFAULT
    settings = {k: v for k, v in config_settings.items() if k not in held}
    kept = sorted(k for k, v in config_settings.items() if k in held and held[k] != v)
    if config_master and source != SOURCE_CONFIG and config_master != master:
        kept = sorted([*kept, "spark.master"])
    return SessionPlan(
        master=master,
        master_source=source,
        apply_master=source == SOURCE_CONFIG,
        settings=settings,
        kept_from_submit=tuple(kept),
    )


def read_spark_defaults(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The entries of ``spark-defaults.conf`` (``$SPARK_CONF_DIR``, else ``$SPARK_HOME/conf``); {} if none.

    Spark reads the file as Java properties: ``key value``, ``key=value`` or ``key: value`` per line,
    ``#`` and ``!`` start comments.
    """
    conf_dir = environ.get("SPARK_CONF_DIR")
    if not conf_dir:
        home = environ.get("SPARK_HOME")
        if not home:
            from pyspark.find_spark_home import _find_spark_home

            home = _find_spark_home()
        conf_dir = str(Path(home) / "conf")
    path = Path(conf_dir) / "spark-defaults.conf"
    if not path.is_file():
        return {}
    return parse_spark_defaults(path.read_text())


def parse_spark_defaults(text: str) -> dict[str, str]:
    """Parse ``spark-defaults.conf`` text (the simple subset of Java properties Spark's files use)."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "!")):
            continue
        cut = min((i for i in (line.find(c) for c in (" ", "\t", "=", ":")) if i > 0), default=len(line))
        key, value = line[:cut], line[cut:].strip()
        if value[:1] in ("=", ":"):
            value = value[1:].strip()
        out[key] = value
    return out


def submit_args_master(environ: Mapping[str, str] = os.environ) -> str | None:
    """``--master`` in ``PYSPARK_SUBMIT_ARGS`` (what pyspark passes to the spark-submit it starts)."""
    args = shlex.split(environ.get("PYSPARK_SUBMIT_ARGS", ""))
    for i, arg in enumerate(args):
        if arg == "--master" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--master="):
            return arg.split("=", 1)[1]
    return None


def delta_fix(scala_version: str, delta_version: str) -> str:
    """The one-line message for a driver without Delta Lake's classes, naming the spark-submit flags to add."""
    package = f"io.delta:delta-spark_{scala_version}:{delta_version}"
    jars = f"delta-spark_{scala_version}-{delta_version}.jar,delta-storage-{delta_version}.jar"
    return (
        f"Delta Lake's classes are not on Spark's classpath ({DELTA_EXTENSION} not found): "
        f"add '--packages {package}' to spark-submit, or '--jars {jars}' on a cluster without Maven access "
        "(or put those jars in $SPARK_HOME/jars); nothing was done"
    )


def check_delta_classes(jvm: Any) -> None:
    """Fail fast, before any table is touched, when the driver JVM cannot load Delta Lake's classes.

    Looks the class up the way Spark loads session extensions (the context class loader, which holds
    ``--packages`` and ``--jars``).

    Args:
        jvm: The py4j view of the driver JVM (``SparkContext._jvm``).

    Raises:
        DeltaJarsMissingError: The class does not load; the message names the fix.
    """
    from py4j.protocol import Py4JJavaError

    try:
        jvm.org.apache.spark.util.Utils.classForName(DELTA_EXTENSION, True, False)
    except Py4JJavaError as e:
        scala = ".".join(str(jvm.scala.util.Properties.versionNumberString()).split(".")[:2])
        raise DeltaJarsMissingError(delta_fix(scala, installed_delta_version())) from e


def installed_delta_version() -> str:
    """The version of the installed ``delta-spark`` Python package: the jars must be the same release."""
    try:
        return package_version("delta-spark")
    except PackageNotFoundError:  # pragma: no cover - a dependency of the package
        return "<the delta-spark version pinned in pyproject.toml>"


@dataclass(frozen=True)
class ExecutorInfo:
    """One executor of the running application: ``driver`` in local mode."""

    executor_id: str
    host_port: str
    total_tasks: int


@dataclass(frozen=True)
class Placement:
    """Where a job ran: the master, where that setting came from, and the executors that did the work."""

    master: str
    master_source: str
    app_id: str
    executors: tuple[ExecutorInfo, ...]

    def describe(self) -> str:
        """``spark://h:7077 (from spark-submit), app-...; executors 0@h:p (12 tasks), 1@h:p (11 tasks)``."""
        executors = ", ".join(f"{e.executor_id}@{e.host_port} ({e.total_tasks} tasks)" for e in self.executors)
        return f"{self.master} (from {self.master_source}), {self.app_id}; executors {executors or '-'}"


def job_placement(spark: SparkSession) -> Placement:
    """The master the session runs on, its source, and its executors with the tasks each has run.

    The executors come from Spark's status store (what the UI's ``/executors`` page shows; it is kept
    with the UI off). The driver is listed only in local mode, where it is the one executor.
    """
    sc = spark.sparkContext
    source = sc.getConf().get(MASTER_SOURCE_CONF, None) or "unknown"
    executors: list[ExecutorInfo] = []
    try:
        listing = sc._jsc.sc().statusStore().executorList(True).iterator()  # type: ignore[union-attr]
        while listing.hasNext():
            e = listing.next()
            executors.append(ExecutorInfo(str(e.id()), str(e.hostPort()), int(e.totalTasks())))
    except Exception as e:  # a record, never a reason to fail a run
        logger.warning("could not list the executors: %s", e)
    if any(e.executor_id != "driver" for e in executors):
        executors = [e for e in executors if e.executor_id != "driver"]
    ordered = sorted(executors, key=lambda e: (len(e.executor_id), e.executor_id))  # 2 before 10
    return Placement(str(sc.master), source, str(sc.applicationId), tuple(ordered))


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
    if sc.metastore == "warehouse":
        # no metastore database: the session's catalog is in memory and build_spark registers the
        # warehouse's Delta tables from their folders (fleetvision.catalog), so processes share it
        conf["spark.sql.catalogImplementation"] = "in-memory"
    if sc.metastore == "derby":
        # Hive's embedded Derby metastore under the warehouse: one process at a time.
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

    Run plainly (``fleetvision <job>``, ``python jobs/<job>.py``), this process starts Spark itself:
    Delta Lake's jars are resolved from Maven by Spark (``spark.jars.packages``) and cached in the Ivy
    directory, so only the first run on a machine downloads them. Under spark-submit the JVM is already
    running: spark-submit's master and settings are kept (:func:`plan_session`), and Delta Lake's jars
    must come from its ``--packages``/``--jars`` or ``$SPARK_HOME/jars``. Table names: with
    ``spark.metastore: warehouse`` (the embedded default) the session registers every Delta table under
    the warehouse (:mod:`fleetvision.catalog`), so any number of processes can have it open at once;
    ``derby`` is Hive's embedded metastore (one process at a time); ``cluster`` is the cluster's own.

    Args:
        config: The job configuration.
        app_name: Spark application name (default ``spark.app_name``); spark-submit's ``--name`` wins.
        quiet: Warnings and errors only from Spark, without Ivy's report or TensorFlow's C++ logs
            (module docstring); False leaves them as Spark and TensorFlow print them.

    Raises:
        DeltaJarsMissingError: The driver cannot load Delta Lake's classes (checked before the session
            is created, so no table is touched).
    """
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if quiet:
        # read when TensorFlow is first imported (driver) and inherited by local-mode Python workers
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", quiet_tf_log_level(config))
    if not config.paths.is_remote("warehouse"):
        config.paths.resolve("warehouse").mkdir(parents=True, exist_ok=True)
    settings = {"spark.app.name": app_name or config.spark.app_name, **spark_conf(config, quiet=quiet)}
    java_options = [settings.pop("spark.driver.extraJavaOptions", "")]
    if config.spark.metastore == "derby":
        # Derby writes derby.log into the working directory unless told where its home is.
        java_options.append(f"-Dderby.system.home={config.paths.resolve('warehouse')}")
    if quiet:
        from fleetvision.resources import resource_path

        java_options.append(f"-Dlog4j2.configurationFile={resource_path('log4j2.properties').as_uri()}")
    if any(java_options):
        settings["spark.driver.extraJavaOptions"] = " ".join(o for o in java_options if o)

    under_submit = bool(os.environ.get("PYSPARK_GATEWAY_PORT"))
    submitted: dict[str, str] = {}
    if under_submit:
        SparkContext._ensure_initialized()  # connects to spark-submit's JVM
        submitted = dict(SparkConf().getAll())  # what spark-submit started it with (system properties)
        # spark-submit names the application after the script unless --name is given: not a choice to keep
        if submitted.get("spark.app.name") == Path(sys.argv[0]).name:
            submitted.pop("spark.app.name")
    plan = plan_session(
        config.spark.master,
        settings,
        under_spark_submit=under_submit,
        submitted=submitted,
        defaults=read_spark_defaults(),
        submit_args_master=submit_args_master(),
    )
    applied = {**plan.settings, MASTER_SOURCE_CONF: plan.master_source}
    if plan.apply_master:
        applied["spark.master"] = plan.master
    if not under_submit:
        _launch_gateway(applied, filtered=quiet)
    jvm = SparkContext._jvm
    if config.spark.metastore == "derby" and jvm.java.lang.System.getProperty("derby.system.home") is None:
        # under spark-submit the driver's Java options came too late to name Derby's home
        jvm.java.lang.System.setProperty("derby.system.home", str(config.paths.resolve("warehouse")))
    check_delta_classes(jvm)

    builder = SparkSession.builder
    if config.spark.metastore == "derby":
        builder = builder.enableHiveSupport()
    for k, v in applied.items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    if config.spark.metastore == "warehouse":
        from fleetvision.catalog import register_warehouse_tables, session_warehouse

        register_warehouse_tables(spark, session_warehouse(spark))
    if plan.kept_from_submit:
        logger.info("spark-submit's settings kept over the config's: %s", ", ".join(plan.kept_from_submit))
    logger.info(
        "spark %s up: master=%s (from %s) warehouse=%s",
        spark.version,
        spark.sparkContext.master,
        plan.master_source,
        config.paths.warehouse,
    )
    return spark


def _forward(stream: IO[bytes], line_filter: JvmStderrFilter) -> None:
    for raw in iter(stream.readline, b""):
        if line_filter.keep(raw.decode("utf-8", errors="replace")):
            os.write(2, raw)


def _launch_gateway(settings: dict[str, str], filtered: bool) -> None:
    """Start the driver JVM with ``settings``, its stderr piped through :class:`JvmStderrFilter` if ``filtered``.

    Only when this process starts the JVM itself (not under spark-submit), and only once per process:
    ``SparkSession.builder`` then finds the gateway and starts the context in that JVM. Started here,
    before the session, so Delta Lake's classes can be checked before anything touches a table.
    """
    from pyspark.java_gateway import launch_gateway

    with SparkContext._lock:
        if SparkContext._gateway is not None:
            return
        conf = SparkConf(loadDefaults=False)
        for k, v in settings.items():
            conf.set(k, v)
        if not filtered:
            gateway = launch_gateway(conf)
        else:
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
