"""The command line: job listing, per-job help, thin spark-submit entry points, exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fleetvision import cli
from fleetvision.exit_codes import ExitCode

ROOT = Path(__file__).resolve().parents[1]
JOB_FILES = {
    "generate": "generate.py",
    "score": "nightly_score.py",
    "train": "train_model.py",
    "evaluate": "evaluate_model.py",
    "soup": "soup_model.py",
    "group-head": "group_head_model.py",
    "promote": "promote_model.py",
    "import-labels": "import_labels.py",
    "suggest-labels": "suggest_labels.py",
    "report": "report.py",
}


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_every_job_has_a_spark_submit_entry_point() -> None:
    assert set(JOB_FILES) == set(cli.JOBS)
    assert sorted(p.name for p in (ROOT / "jobs").glob("*.py")) == sorted(JOB_FILES.values())


def test_top_level_help_lists_every_job() -> None:
    proc = _run("-m", "fleetvision.cli", "--help")
    assert proc.returncode == 0, proc.stderr
    for job in ("generate", "train", "evaluate", "score", "promote", "report"):
        assert f"  {job}" in proc.stdout


@pytest.mark.parametrize("job", sorted(JOB_FILES))
def test_each_job_entry_point_prints_its_help(job: str) -> None:
    proc = _run(str(ROOT / "jobs" / JOB_FILES[job]), "--help")
    assert proc.returncode == 0, f"{job}: rc={proc.returncode}\n{proc.stderr[-2000:]}"
    assert f"fleetvision {job}" in proc.stdout
    assert "--conf" in proc.stdout and "--set" in proc.stdout


def test_bad_config_exits_2_and_names_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("spark:\n  mastr: local[1]\n")
    proc = _run("-m", "fleetvision.cli", "report", "--conf", str(bad))
    assert proc.returncode == ExitCode.USAGE
    assert "spark.mastr" in proc.stderr and str(bad) in proc.stderr


def test_unknown_job_is_a_usage_error() -> None:
    proc = _run("-m", "fleetvision.cli", "nope")
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr
