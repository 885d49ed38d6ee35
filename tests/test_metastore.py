"""Table names across sessions and processes: the warehouse catalog (several processes at once) and Derby."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fleetvision import tables
from fleetvision.catalog import register_table, register_warehouse_tables, warehouse_tables

pytestmark = pytest.mark.spark

_SCRIPT = textwrap.dedent(
    """
    import sys
    from fleetvision.catalog import register_warehouse_tables
    from fleetvision.config import load_config
    from fleetvision.spark import build_spark
    from fleetvision import tables

    warehouse, action, metastore = sys.argv[1], sys.argv[2], sys.argv[3]
    cfg = load_config(overrides=[f"paths.warehouse={warehouse}", "spark.master=local[1]",
                                 "spark.driver_memory=1g", f"spark.metastore={metastore}"], environ={})
    spark = build_spark(cfg)
    if action == "write":
        tables.ensure_database(spark, "fleetvision")
        spark.createDataFrame([(1, "boot"), (2, "dashboard")], "id int, shot string") \\
            .write.format("delta").saveAsTable("fleetvision.persisted")
        print("WROTE", flush=True)
    elif action == "hold":
        # an analyst's shell: the warehouse open, a table read, the session kept alive
        print("HOLDING", spark.table("fleetvision.persisted").count(), flush=True)
        sys.stdin.readline()  # until the test has written from another process
        register_warehouse_tables(spark, warehouse)
        print("SEES", sorted(r.id for r in spark.table("fleetvision.second").collect()), flush=True)
    else:
        rows = sorted(tuple(r) for r in spark.table("fleetvision.persisted").collect())
        print("READ", rows)
        print("PROVIDER", spark.sql("DESCRIBE DETAIL fleetvision.persisted").first()["format"])
    spark.stop()
    """
)


def _start(warehouse: Path, action: str, metastore: str = "warehouse") -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", _SCRIPT, str(warehouse), action, metastore],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _run(warehouse: Path, action: str, metastore: str = "warehouse") -> str:
    proc = _start(warehouse, action, metastore)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    return out


def test_table_written_in_one_process_is_read_by_name_in_another(tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    assert "WROTE" in _run(warehouse, "write")
    out = _run(warehouse, "read")
    assert "READ [(1, 'boot'), (2, 'dashboard')]" in out
    assert "PROVIDER delta" in out
    assert not (warehouse / "metastore_db").exists()  # no metastore database: the folders are the catalog


def test_a_process_holding_the_warehouse_open_does_not_block_another(tmp_path: Path) -> None:
    """The Derby default refused a second process ("Another instance of Derby may have already booted")."""
    warehouse = tmp_path / "wh"
    assert "WROTE" in _run(warehouse, "write")
    holder = _start(warehouse, "hold")
    try:
        assert holder.stdout is not None and holder.stdin is not None
        line = holder.stdout.readline()
        assert line.startswith("HOLDING 2"), (line, holder.stderr.read() if holder.poll() is not None else "")
        # while the holder's session is open, a second process writes a new table and reads the first
        script = textwrap.dedent(
            f"""
            from fleetvision.config import load_config
            from fleetvision.spark import build_spark
            cfg = load_config(overrides=["paths.warehouse={warehouse}", "spark.master=local[1]",
                                         "spark.driver_memory=1g"], environ={{}})
            spark = build_spark(cfg)
            spark.createDataFrame([(7,), (8,)], "id int").write.format("delta").saveAsTable("fleetvision.second")
            print("ALSO", spark.table("fleetvision.persisted").count())
            spark.stop()
            """
        )
        writer = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
        assert writer.returncode == 0, writer.stderr[-3000:]
        assert "ALSO 2" in writer.stdout
        holder.stdin.write("go\n")
        holder.stdin.flush()
        out, err = holder.communicate(timeout=120)
        assert holder.returncode == 0, err[-3000:]
        assert "SEES [7, 8]" in out  # the holder finds the table the other process made
    finally:
        if holder.poll() is None:
            holder.kill()


def test_derby_is_still_available_for_one_process_at_a_time(tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    assert "WROTE" in _run(warehouse, "write", "derby")
    assert "READ [(1, 'boot'), (2, 'dashboard')]" in _run(warehouse, "read", "derby")
    assert (warehouse / "metastore_db").is_dir()


def test_tables_made_elsewhere_are_found_and_registered_once(spark, warehouse_dir: Path) -> None:
    # a Delta table written by path under the warehouse, as another process would leave it
    database = "fv_found"
    location = warehouse_dir / f"{database}.db" / "made_elsewhere"
    spark.createDataFrame([(1,)], "id int").write.format("delta").save(str(location))
    (warehouse_dir / f"{database}.db" / "not_delta").mkdir()
    found = {(t.database, t.table) for t in warehouse_tables(spark, str(warehouse_dir))}
    assert (database, "made_elsewhere") in found and (database, "not_delta") not in found
    register_warehouse_tables(spark, str(warehouse_dir))
    assert spark.table(f"{database}.made_elsewhere").count() == 1
    assert register_warehouse_tables(spark, str(warehouse_dir)) == []  # idempotent
    assert not register_table(spark, str(warehouse_dir), database, "not_delta")
    spark.sql(f"DROP DATABASE {database} CASCADE")


def test_ensure_table_adopts_a_table_another_process_created(spark, warehouse_dir: Path) -> None:
    database = "fv_adopt"
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {database}")
    location = warehouse_dir / f"{database}.db" / tables.SCORING_RUNS.name
    spark.createDataFrame([], tables.SCORING_RUNS.schema).write.format("delta").save(str(location))
    assert not spark.catalog.tableExists(f"{database}.{tables.SCORING_RUNS.name}")
    tables.ensure_table(spark, database, tables.SCORING_RUNS)  # registers it instead of failing on a non-empty path
    assert spark.catalog.tableExists(f"{database}.{tables.SCORING_RUNS.name}")
    spark.sql(f"DROP DATABASE {database} CASCADE")
