"""The image's entrypoint (scripts/k8s_entrypoint.sh) keeps Spark on Kubernetes' container contract.

Kubernetes starts executor pods with ``executor`` and their settings in environment variables; the
entrypoint must turn that into a running executor on the image's own $SPARK_HOME (the pyspark wheel's).
No Kubernetes here, so the test gives the executor what the scheduler would (the driver's URL, an id,
cores, memory) and points it at a real driver on 127.0.0.1: the executor must register and run tasks.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from servers import SPARK_HOME, spark_standalone

ROOT = Path(__file__).resolve().parents[1]
ENTRYPOINT = ROOT / "scripts" / "k8s_entrypoint.sh"


def _run(*args: str, env: dict[str, str] | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ENTRYPOINT), *args],
        env={**os.environ, "SPARK_HOME": str(SPARK_HOME), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_any_other_command_passes_through():
    done = _run("echo", "fleetvision", "score")
    assert done.returncode == 0 and done.stdout.strip() == "fleetvision score"


@pytest.mark.parametrize(
    ("mode", "missing"), [("executor", "SPARK_DRIVER_URL"), ("driver", "SPARK_DRIVER_BIND_ADDRESS")]
)
def test_a_pod_started_without_the_schedulers_settings_gets_a_one_line_error(mode, missing):
    env = {k: "" for k in ("SPARK_DRIVER_URL", "SPARK_DRIVER_BIND_ADDRESS")}
    done = _run(mode, env=env)
    assert done.returncode == 64
    assert done.stderr.strip() == f"k8s_entrypoint: {mode} mode needs ${missing} (set by Spark's Kubernetes scheduler)"


def test_the_driver_mode_runs_spark_submit_in_client_mode():
    done = _run("driver", "--version", env={"SPARK_DRIVER_BIND_ADDRESS": "127.0.0.1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "version 4.0" in done.stdout + done.stderr


# The driver runs in its own process: in this one, SparkSession.builder would hand back the test
# session's local driver (one SparkContext per JVM), and stopping it would stop every later test's.
_DRIVER = textwrap.dedent(
    """
    import os, subprocess, sys, time
    from pyspark.sql import SparkSession

    master, entrypoint, spark_home, log_path = sys.argv[1:5]
    spark = (
        SparkSession.builder.master(master)
        .appName("k8s-entrypoint-test")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    sc = spark.sparkContext
    assert sc.master == master, sc.master
    env = {
        "SPARK_DRIVER_URL": f"spark://CoarseGrainedScheduler@127.0.0.1:{sc.getConf().get('spark.driver.port')}",
        "SPARK_EXECUTOR_ID": "7",
        "SPARK_EXECUTOR_CORES": "1",
        "SPARK_EXECUTOR_MEMORY": "512m",
        "SPARK_APPLICATION_ID": sc.applicationId,
        "SPARK_EXECUTOR_POD_IP": "127.0.0.1",
        "SPARK_EXECUTOR_POD_NAME": "fleetvision-exec-7",
        "SPARK_JAVA_OPT_0": "-Dfleetvision.test=k8s",
        "PYSPARK_PYTHON": sys.executable,
    }
    executor = None
    try:
        with open(log_path, "w") as log:
            executor = subprocess.Popen(
                [entrypoint, "executor"], env={**os.environ, "SPARK_HOME": spark_home, **env},
                stdout=log, stderr=subprocess.STDOUT,
            )
            deadline = time.monotonic() + 240
            while sc._jsc.sc().getExecutorMemoryStatus().size() < 2:  # the driver's block manager + ours
                if executor.poll() is not None:
                    sys.exit(f"EXECUTOR EXITED {executor.returncode}")
                if time.monotonic() > deadline:
                    sys.exit("the executor did not register within 240 s")
                time.sleep(1)
            # no worker exists, so only the entrypoint's executor can run these Python tasks
            print("SQUARES", sorted(sc.parallelize(range(8), 4).map(lambda x: x * x).collect()), flush=True)
    finally:
        spark.stop()
        if executor is not None:
            executor.terminate()
            executor.wait(60)
    """
)


@pytest.mark.integration
def test_an_executor_pod_registers_with_the_driver_and_runs_its_tasks(tmp_path):
    # a standalone master with no workers: the only executor is the one the entrypoint starts
    log_path = tmp_path / "executor.log"
    with spark_standalone(tmp_path, workers=0) as cluster:
        driver = subprocess.run(
            [sys.executable, "-c", _DRIVER, cluster.master_url, str(ENTRYPOINT), str(SPARK_HOME), str(log_path)],
            capture_output=True,
            text=True,
            timeout=600,
        )
    log_text = log_path.read_text() if log_path.exists() else ""
    assert driver.returncode == 0, driver.stderr[-3000:] + "\n--- executor log\n" + log_text[-3000:]
    assert f"SQUARES {[x * x for x in range(8)]}" in driver.stdout
    assert "KubernetesExecutorBackend" in log_text and "Successfully registered with driver" in log_text
    assert log_text.count("Finished task") == 4
