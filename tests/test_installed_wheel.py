"""The package works installed, away from its checkout: build the wheel, install it, run a small flow.

The wheel goes into a fresh virtual environment in a temporary folder; its dependencies come from the
project's environment (a ``.pth`` file naming its site-packages, like ``--system-site-packages``), so
the test needs no network. The flow runs in another temporary folder: generate a few listings,
``promote --starter``, ``score``, ``report``. Everything it writes lands there, the models come from
the installed package's data, and the console stays quiet (no Ivy report, no TensorFlow start-up).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
STEP_TIMEOUT_S = 600
# what the default console must not show (docs/runbook.md, *Logs*)
NOISE = (
    ":: resolution report ::",
    "Ivy Default Cache set to",
    "absl::InitializeLog",
    "cudart_stub.cc",
    "failed call to cuInit",
    "Couldn't find corresponding Hive SerDe",
    "Truncated the string representation",
    "Using Spark's default log4j profile",
)


def _starter_input_size() -> int:
    """S of the shipped starter models, whichever layout they are in (a head's backbone.json, or a spec)."""
    angle = ROOT / "models" / "starter" / "angle"
    if (angle / "backbone.json").is_file():
        return int(json.loads((angle / "backbone.json").read_text())["input_size"])
    return int(json.loads((angle / "metrics.json").read_text())["spec"]["input_size"])


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment holding the built wheel; returns its ``bin`` folder."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    # symlinks kept: src/fleetvision/resources/starter links to models/starter, as in the checkout
    skip = shutil.ignore_patterns("*.egg-info", "__pycache__")
    shutil.copytree(ROOT / "src", source / "src", symlinks=True, ignore=skip)
    shutil.copytree(ROOT / "models", source / "models", ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path_factory.mktemp("dist")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", str(dist), str(source)],
        check=True,
        timeout=STEP_TIMEOUT_S,
    )
    wheel = next(dist.glob("fleetvision-*.whl"))
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=STEP_TIMEOUT_S)
    site = Path(
        subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # the dependencies, from the project's environment; a path added by a .pth file does not run that
    # folder's own .pth files, so the checkout's editable install stays out
    (site / "fleetvision_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [*pip, "--python", str(venv / "bin" / "python"), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        check=True,
        timeout=STEP_TIMEOUT_S,
    )
    return venv / "bin"


def _run(bin_dir: Path, cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK", "FLEETVISION", "PYTHONPATH", "TF_"))}
    env.update(
        {
            "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
            "FLEETVISION__SPARK__MASTER": "local[2]",
            "FLEETVISION__SPARK__SHUFFLE_PARTITIONS": "2",
            "FLEETVISION__SPARK__DRIVER_MEMORY": "2g",
            "FLEETVISION__SYNTH__PHOTO_SCALE": "0.25",
            "FLEETVISION__SYNTH__MAX_PHOTOS": "6",
            "FLEETVISION__MODELS__INPUT_SIZE": str(_starter_input_size()),
        }
    )
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT_S)
    assert proc.returncode == 0, f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stderr[-4000:]}"
    return proc


def test_installed_package_runs_a_small_flow_from_another_directory(installed: Path, tmp_path: Path) -> None:
    where = _run(installed, tmp_path, str(installed / "python"), "-c", "import fleetvision as f; print(f.__file__)")
    assert Path(where.stdout.strip()).is_relative_to(installed.parent), where.stdout  # not the checkout's src/

    fleetvision = str(installed / "fleetvision")
    steps = [
        _run(installed, tmp_path, fleetvision, "generate", "--listings", "4"),
        _run(installed, tmp_path, fleetvision, "promote", "--starter"),
        _run(installed, tmp_path, fleetvision, "score", "--mode", "full"),
        _run(installed, tmp_path, fleetvision, "report"),
    ]

    # everything lands in the working directory, read from the installed package
    assert (tmp_path / "warehouse" / "fleetvision.db" / "image_tags" / "_delta_log").is_dir()
    assert (tmp_path / "mlflow.db").is_file()
    assert list((tmp_path / "reports").glob("*.html")), sorted(p.name for p in tmp_path.rglob("*"))[:50]
    assert "registered as version" in steps[1].stderr, steps[1].stderr  # the starter models were found
    noisy = {" ".join(s.args[1:3]): [n for n in NOISE if n in s.stdout + s.stderr] for s in steps}
    assert not any(noisy.values()), (noisy, [s.stderr[-3000:] for s in steps])
