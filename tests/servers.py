"""Real servers for integration tests, started on 127.0.0.1 and stopped afterwards.

Each helper starts the real thing (an MLflow tracking server, a Spark standalone master and workers)
as a child process, waits until it answers, and on exit terminates it and its children.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyspark

BIN = Path(sys.executable).parent
SPARK_HOME = Path(pyspark.__file__).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(check, what: str, proc: subprocess.Popen, log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError):
            if check():
                return
        time.sleep(0.5)
    raise TimeoutError(f"{what} did not come up in {timeout:.0f}s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _start(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        cmd,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # own process group: stopping it stops its children (gunicorn workers)
        env={**os.environ, **(env or {})},
    )


_RUNNING: dict[str, subprocess.Popen] = {}  # a server's URL -> its process, while it runs


def kill_server(url: str) -> None:
    """SIGKILL a server started here (its whole process group), as a crash or the OOM killer would."""
    os.killpg(_RUNNING[url].pid, signal.SIGKILL)
    _RUNNING[url].wait(timeout=20)


def _port_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


@contextlib.contextmanager
def mlflow_server(workdir: Path) -> Iterator[str]:
    """An MLflow tracking server with a SQLite backend and served artifacts; yields its URL."""
    port = free_port()
    log = workdir / "mlflow-server.log"
    proc = _start(
        [
            str(BIN / "mlflow"),
            "server",
            "--host", "127.0.0.1",
            "--port", str(port),
            "--workers", "1",
            "--backend-store-uri", f"sqlite:///{workdir / 'server.db'}",
            "--artifacts-destination", str(workdir / "server-artifacts"),
        ],
        log,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
            return r.status == 200

    try:
        _wait(healthy, "mlflow server", proc, log)
        _RUNNING[url] = proc
        yield url
    finally:
        _RUNNING.pop(url, None)
        _stop(proc)


@dataclass(frozen=True)
class StandaloneCluster:
    """A running Spark standalone cluster on 127.0.0.1."""

    master_url: str  # spark://127.0.0.1:<port>
    master_ui: str  # http://127.0.0.1:<port>
    worker_uis: tuple[str, ...]  # one per worker; <ui>/json/ lists its running and finished executors
    worker_dirs: tuple[Path, ...]  # each worker's SPARK_WORKER_DIR: <dir>/<app id>/<executor id>/ per executor


@contextlib.contextmanager
def spark_standalone(
    workdir: Path, cores: int = 1, memory: str = "1g", workers: int = 1
) -> Iterator[StandaloneCluster]:
    """A Spark standalone master and ``workers`` workers (``cores`` and ``memory`` each) on 127.0.0.1."""
    port, master_ui_port = free_port(), free_port()
    env = {"SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": "127.0.0.1"}
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    mlog = workdir / "master.log"
    master = _start(
        [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
         "--webui-port", str(master_ui_port)],
        mlog,
        env,
    )
    procs: list[subprocess.Popen] = []
    url = f"spark://127.0.0.1:{port}"
    try:
        _wait(lambda: _port_open(port), "spark master", master, mlog)
        uis, dirs = [], []
        for i in range(workers):
            wlog, ui_port = workdir / f"worker-{i}.log", free_port()
            work = workdir / f"work-{i}"
            procs.append(
                _start(
                    [spark_class, "org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1",
                     "--cores", str(cores), "--memory", memory, "--webui-port", str(ui_port), "--work-dir", str(work)],
                    wlog,
                    env,
                )
            )
            uis.append(f"http://127.0.0.1:{ui_port}")
            dirs.append(work)
        for i, proc in enumerate(procs):
            wlog = workdir / f"worker-{i}.log"
            _wait(lambda log=wlog: "Successfully registered with master" in log.read_text(), "spark worker", proc, wlog)
        yield StandaloneCluster(url, f"http://127.0.0.1:{master_ui_port}", tuple(uis), tuple(dirs))
    finally:
        for proc in procs:
            _stop(proc)
        _stop(master)
