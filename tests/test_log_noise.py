"""The default console: start-up chatter without a log level is recognised line by line; errors pass."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

from fleetvision import cli
from fleetvision.log_noise import JvmStderrFilter, is_native_startup_noise, native_startup_filtered

# the driver JVM's stderr at the start of a local run (Spark 4.0, Delta from the Ivy cache)
JVM_START = """WARNING: Using incubator modules: jdk.incubator.vector
:: loading settings :: url = jar:file:/venv/pyspark/jars/ivy-2.5.3.jar!/org/apache/ivy/core/settings/ivysettings.xml
Ivy Default Cache set to: /root/.ivy2.5.2/cache
The jars for the packages stored in: /root/.ivy2.5.2/jars
io.delta#delta-spark_2.13 added as a dependency
:: resolving dependencies :: org.apache.spark#spark-submit-parent-5e81f460;1.0
\tconfs: [default]
\tfound io.delta#delta-spark_2.13;4.0.1 in central
:: resolution report :: resolve 332ms :: artifacts dl 5ms
\t:: modules in use:
\tio.delta#delta-spark_2.13;4.0.1 from central in [default]
\t---------------------------------------------------------------------
\t|      default     |   3   |   0   |   0   |   0   ||   3   |   0   |
:: retrieving :: org.apache.spark#spark-submit-parent-5e81f460
\t0 artifacts copied, 3 already retrieved (0kB/18ms)
26/12/03 08:33:41 WARN Utils: Your hostname, vm, resolves to a loopback address: 127.0.0.1
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796286811.323096   13082 cudart_stub.cc:31] Could not find cuda drivers on your machine.
E0000 00:00:1796286836.525152   13082 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error
26/12/03 08:35:00 ERROR Executor: Exception in task 0.0 in stage 3.0
\tat org.apache.spark.executor.Executor.run(Executor.scala:1)
"""


def test_ivy_report_and_startup_chatter_are_dropped_warnings_and_errors_kept() -> None:
    line_filter = JvmStderrFilter()
    kept = [line for line in JVM_START.splitlines(keepends=True) if line_filter.keep(line)]
    assert kept == [
        "26/12/03 08:33:41 WARN Utils: Your hostname, vm, resolves to a loopback address: 127.0.0.1\n",
        "E0000 00:00:1796286836.525152   13082 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error\n",
        "26/12/03 08:35:00 ERROR Executor: Exception in task 0.0 in stage 3.0\n",
        "\tat org.apache.spark.executor.Executor.run(Executor.scala:1)\n",  # a stack trace is not Ivy's
    ]


# the same on a cold Ivy cache, no network but Maven Central (captured 2026-12-04): downloads, a proxy hint,
# blank lines and a problems summary of the unreachable spark-packages repository, all inside the report
JVM_START_COLD = """:: loading settings :: url = jar:file:/venv/pyspark/jars/ivy-2.5.3.jar!/ivysettings.xml
Ivy Default Cache set to: /tmp/ivy/cache
The jars for the packages stored in: /tmp/ivy/jars
io.delta#delta-spark_2.13 added as a dependency
:: resolving dependencies :: org.apache.spark#spark-submit-parent-7e4b6e9c;1.0
\tconfs: [default]
\tfound io.delta#delta-spark_2.13;4.0.1 in central
You probably access the destination server through a proxy server that is not well configured.
downloading https://repo1.maven.org/maven2/io/delta/delta-spark_2.13/4.0.1/delta-spark_2.13-4.0.1.jar ...
\t[SUCCESSFUL ] io.delta#delta-spark_2.13;4.0.1!delta-spark_2.13.jar (410ms)
:: resolution report :: resolve 1279ms :: artifacts dl 564ms
\t---------------------------------------------------------------------

:: problems summary ::
:::: WARNINGS
\tHost repos.spark-packages.org not found. url=https://repos.spark-packages.org/org/sonatype/oss/oss-parent/9/oss-parent-9.jar


:: USE VERBOSE OR DEBUG MESSAGE LEVEL FOR MORE DETAILS
:: retrieving :: org.apache.spark#spark-submit-parent-7e4b6e9c
\tconfs: [default]
\t3 artifacts copied, 0 already retrieved (7945kB/18ms)
26/12/04 13:31:39 WARN NativeCodeLoader: Unable to load native-hadoop library for your platform
Setting default log level to "WARN".
"""


def test_a_cold_cache_report_is_dropped_to_its_end() -> None:
    line_filter = JvmStderrFilter()
    kept = [line for line in JVM_START_COLD.splitlines(keepends=True) if line_filter.keep(line)]
    assert kept == [
        "26/12/04 13:31:39 WARN NativeCodeLoader: Unable to load native-hadoop library for your platform\n",
        'Setting default log level to "WARN".\n',
    ]


def test_an_ivy_failure_is_shown() -> None:
    line_filter = JvmStderrFilter()
    lines = [
        ":: loading settings :: url = jar:file:/x/ivysettings.xml\n",
        "\t\tmodule not found: io.delta#delta-spark_2.13;9.9.9\n",
        "\t::::::::::::::::::::::::::::::::::::::::::::::\n",
        "\t::          UNRESOLVED DEPENDENCIES         ::\n",
        "Exception in thread \"main\" java.lang.RuntimeException: [unresolved dependency]\n",
    ]
    assert [line for line in lines if line_filter.keep(line)] == lines[1:]


def test_absl_info_lines_are_noise_errors_are_not() -> None:
    assert is_native_startup_noise("I1203 08:33:41.123456   1234 port.cc:153] oneDNN custom operations are on.")
    assert is_native_startup_noise("W0000 00:00:1796286811.3 99 gpu_device.cc:2] Cannot dlopen some GPU libraries.")
    assert not is_native_startup_noise("E0000 00:00:1796286836.5 13082 cuda_platform.cc:52] failed call to cuInit")
    assert not is_native_startup_noise("2026-12-03 08:40:02 INFO fleetvision.tracking: mlflow tracking=...")


def test_native_writes_during_an_import_are_filtered_and_the_rest_replayed(capfd) -> None:
    with native_startup_filtered():
        os.write(2, b"I0000 00:00:1796286811.3 1 cudart_stub.cc:31] Could not find cuda drivers\n")
        os.write(2, b"a real warning\n")
    assert capfd.readouterr().err == "a real warning\n"


def test_default_logging_shows_fleetvision_info_and_library_warnings_only() -> None:
    try:
        cli.configure_logging(verbose=False)
        assert logging.getLogger("fleetvision.scoring.run").isEnabledFor(logging.INFO)
        assert not logging.getLogger("fleetvision.scoring.run").isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("py4j.clientserver").isEnabledFor(logging.INFO)
        assert logging.getLogger("py4j.clientserver").isEnabledFor(logging.WARNING)
        assert not logging.getLogger("somelib").isEnabledFor(logging.INFO)
        cli.configure_logging(verbose=True)
        assert logging.getLogger("fleetvision.scoring.run").isEnabledFor(logging.DEBUG)
        assert logging.getLogger("py4j.clientserver").isEnabledFor(logging.INFO)
    finally:
        cli.configure_logging(verbose=False)


def test_quiet_environment_keeps_values_the_caller_set() -> None:
    environ = {"TF_CPP_MIN_LOG_LEVEL": "0"}
    cli.quiet_environment(environ)
    assert environ["TF_CPP_MIN_LOG_LEVEL"] == "0"
    assert environ["MLFLOW_LOGGING_LEVEL"] == "WARNING"
    fresh: dict[str, str] = {}
    cli.quiet_environment(fresh)
    assert fresh["TF_CPP_MIN_LOG_LEVEL"] == "3"


def test_executors_get_tensorflow_quiet_unless_verbose() -> None:
    from fleetvision.config import load_config
    from fleetvision.spark import spark_conf

    cfg = load_config(environ={})
    assert spark_conf(cfg)["spark.executorEnv.TF_CPP_MIN_LOG_LEVEL"] == "3"
    gpu = load_config(overrides=["spark.gpu.enabled=true"], environ={})
    assert spark_conf(gpu)["spark.executorEnv.TF_CPP_MIN_LOG_LEVEL"] == "2"  # CUDA errors matter there
    assert "spark.executorEnv.TF_CPP_MIN_LOG_LEVEL" not in spark_conf(cfg, quiet=False)


def test_promote_starter_needs_no_spark() -> None:
    from fleetvision.models import promote_job

    parser = __import__("argparse").ArgumentParser()
    promote_job.add_arguments(parser)
    assert not promote_job.needs_spark(parser.parse_args(["--starter"]))
    assert promote_job.needs_spark(parser.parse_args(["angle", "--version", "2"]))


def test_verbose_flag_is_accepted_by_every_job() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "fleetvision.cli", "report", "--help"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert "--verbose" in proc.stdout
