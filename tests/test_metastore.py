"""Tables are addressable by name across sessions and processes (embedded Derby metastore)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.spark

_SCRIPT = textwrap.dedent(
    """
    import sys
    from fleetvision.config import load_config
    from fleetvision.spark import build_spark
    from fleetvision import tables

    warehouse, action = sys.argv[1], sys.argv[2]
    cfg = load_config(overrides=[f"paths.warehouse={warehouse}", "spark.master=local[1]",
                                 "spark.driver_memory=1g"], environ={})
    spark = build_spark(cfg)
    if action == "write":
        tables.ensure_database(spark, "fleetvision")
        spark.createDataFrame([(1, "boot"), (2, "dashboard")], "id int, shot string") \\
            .write.format("delta").saveAsTable("fleetvision.persisted")
        print("WROTE")
    else:
        rows = sorted(tuple(r) for r in spark.table("fleetvision.persisted").collect())
        print("READ", rows)
        print("PROVIDER", spark.sql("DESCRIBE DETAIL fleetvision.persisted").first()["format"])
    spark.stop()
    """
)


def _run(warehouse: Path, action: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(warehouse), action],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_table_written_in_one_process_is_read_by_name_in_another(tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    assert "WROTE" in _run(warehouse, "write")
    out = _run(warehouse, "read")
    assert "READ [(1, 'boot'), (2, 'dashboard')]" in out
    assert "PROVIDER delta" in out
    assert (warehouse / "metastore_db").is_dir()
