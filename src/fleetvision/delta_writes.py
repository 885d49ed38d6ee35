"""Every Delta write in the package: one MERGE builder and the plain writes, each commit tagged with its run.

One MERGE builder (:func:`merge_by_key`, matched on :func:`key_condition` of the table's contract in
:mod:`fleetvision.tables`) with thin variants (:func:`merge_upsert`, :func:`upsert_and_delete`,
:func:`insert_new`, :func:`merge_actions`), and the plain writes (:func:`overwrite_table`,
:func:`overwrite_where`, :func:`append_rows`, :func:`update_where`, :func:`write_scratch`). Each commit
carries ``fleetvision run_id=<id>`` as Delta user metadata when given a run id (:class:`commit_metadata`),
so a table's history says which run wrote what.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import types as T

from fleetvision.tables import TableSpec, conform, ensure_table, qualified

logger = logging.getLogger(__name__)

RUN_COLUMNS = frozenset({"run_id", "scored_at", "computed_at", "created_at"})
"""Columns that say which run wrote a row (and when), not what the row says."""

MergeClause = bool | str
"""A MERGE clause: ``False`` (absent), ``True`` (unconditional) or a SQL condition (``t``: target, ``s``: source)."""


def key_condition(spec: TableSpec, target: str = "t", source: str = "s") -> str:
    """The MERGE match condition: every key column of ``spec`` equal on both sides."""
    return " AND ".join(f"{target}.`{k}` = {source}.`{k}`" for k in spec.key)


def changed_condition(spec: TableSpec, ignore: Iterable[str] = RUN_COLUMNS) -> str | None:
    """SQL that is true when a matched row differs in a column other than the key and ``ignore``.

    Returns:
        The condition, or None when there is no column to compare.
    """
    ignored = set(ignore) | set(spec.key)

    def comparable(side: str, f: T.StructField) -> str:
        # Maps have no equality in Spark SQL: compare their entries, sorted.
        if isinstance(f.dataType, T.MapType):
            return f"array_sort(map_entries({side}.`{f.name}`))"
        return f"{side}.`{f.name}`"

    compared = [f for f in spec.schema.fields if f.name not in ignored]
    return " OR ".join(f"NOT ({comparable('t', f)} <=> {comparable('s', f)})" for f in compared) or None


def merge_by_key(
    spark: SparkSession,
    database: str,
    spec: TableSpec,
    source: DataFrame,
    *,
    run_id: str | None = None,
    delete: MergeClause = False,
    update: MergeClause = True,
    insert: MergeClause = True,
    keep: Sequence[str] = (),
) -> None:
    """The one MERGE builder: ``source`` into the table, matched on the table's key.

    Matched rows are deleted (``delete``), then updated (``update``); unmatched source rows are
    inserted (``insert``); each clause is absent (False), unconditional (True) or a SQL condition.
    Updates and inserts write every contract column from the source (conformed to the contract first).
    The commit carries ``run_id`` as Delta user metadata (none when ``run_id`` is None).

    Args:
        keep: Source columns outside the contract that the conditions read (e.g. an action column);
            they are never written.

    Raises:
        ValueError: No clause at all.
    """
    from delta.tables import DeltaTable

    if not (delete or update or insert):
        raise ValueError(f"a MERGE into {spec.name} needs at least one of delete, update, insert")
    columns = {f.name: f"s.`{f.name}`" for f in spec.schema.fields}
    merger = (
        DeltaTable.forName(spark, qualified(database, spec))
        .alias("t")
        .merge(conform(source, spec, keep).alias("s"), key_condition(spec))
    )
    if delete:
        merger = merger.whenMatchedDelete(condition=_condition(delete))
    if update:
        if keep:  # the source carries extra columns: name the written ones
            merger = merger.whenMatchedUpdate(condition=_condition(update), set=columns)
        else:
            merger = merger.whenMatchedUpdateAll(condition=_condition(update))
    if insert:
        if keep:
            merger = merger.whenNotMatchedInsert(condition=_condition(insert), values=columns)
        else:
            merger = merger.whenNotMatchedInsertAll(condition=_condition(insert))
    with commit_metadata(spark, run_id):
        merger.execute()


def _condition(clause: MergeClause) -> str | None:
    return None if clause is True else str(clause)


def merge_upsert(
    spark: SparkSession,
    database: str,
    spec: TableSpec,
    updates: DataFrame,
    run_id: str | None = None,
    delete_when: str | None = None,
) -> None:
    """MERGE ``updates`` into the table by its key: update matches, insert the rest.

    Idempotent: the same updates merged twice leave the table as merged once. The commit carries
    ``run_id`` as Delta user metadata so the table history says which run wrote what.

    Args:
        delete_when: Optional SQL condition on the source (alias ``s``) for matched rows to delete.
    """
    merge_by_key(spark, database, spec, updates, run_id=run_id, delete=delete_when or False)


def insert_new(spark: SparkSession, database: str, spec: TableSpec, rows: DataFrame, run_id: str | None = None) -> None:
    """MERGE that only inserts rows whose key is not in the table yet (Delta runs it as an anti join)."""
    merge_by_key(spark, database, spec, rows, run_id=run_id, update=False)


ACTION_COLUMN = "_op"
"""The column of a :func:`merge_actions` source that says what to do with each row."""


def upsert_and_delete(
    spark: SparkSession,
    database: str,
    spec: TableSpec,
    updates: DataFrame,
    deleted_keys: DataFrame | None,
    *,
    run_id: str | None = None,
    changed_only: bool = False,
) -> int:
    """One MERGE (one commit) that upserts ``updates`` and deletes the rows whose key is in ``deleted_keys``.

    An upsert and a delete by key in one commit: a run's outputs change in one table version, and the
    run pays one MERGE.

    Args:
        updates: Rows to write (conformed to the contract); a matched row is replaced (with
            ``changed_only``: only when a column other than :data:`RUN_COLUMNS` differs).
        deleted_keys: Key columns of rows to delete; None or no rows for none. A key must not also be in
            ``updates`` (Delta refuses a MERGE where two source rows match one target row).

    Returns:
        The number of rows deleted.
    """
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    op = ACTION_COLUMN
    source = conform(updates, spec).withColumn(op, F.lit("update"))
    if deleted_keys is not None:
        removed = deleted_keys.select(*spec.key).distinct()
        source = source.unionByName(conform(removed, spec).withColumn(op, F.lit("delete")))
    changed = changed_condition(spec) if changed_only else None
    update = f"s.`{op}` = 'update'" + (f" AND ({changed})" if changed else "")
    merge_by_key(
        spark,
        database,
        spec,
        source,
        run_id=run_id,
        delete=f"s.`{op}` = 'delete'" if deleted_keys is not None else False,
        update=update,
        insert=f"s.`{op}` = 'update'",
        keep=(op,),
    )
    if deleted_keys is None:
        return 0
    metrics = DeltaTable.forName(spark, qualified(database, spec)).history(1).select("operationMetrics").first()
    return int((metrics["operationMetrics"] or {}).get("numTargetRowsDeleted", 0)) if metrics else 0


def merge_actions(
    spark: SparkSession,
    database: str,
    spec: TableSpec,
    source: DataFrame,
    run_id: str | None = None,
    action_column: str = ACTION_COLUMN,
) -> None:
    """One MERGE applying ``insert`` / ``update`` / ``delete`` rows, as ``action_column`` says.

    ``delete`` removes the matched row; ``update`` replaces a matched row and inserts an unmatched one;
    ``insert`` inserts an unmatched row (a matched one is left alone).
    """
    action = f"s.`{action_column}`"
    merge_by_key(
        spark,
        database,
        spec,
        source,
        run_id=run_id,
        delete=f"{action} = 'delete'",
        update=f"{action} = 'update'",
        insert=f"{action} IN ('insert', 'update')",
        keep=(action_column,),
    )


def update_where(
    spark: SparkSession,
    database: str,
    spec: TableSpec,
    condition: Column,
    assignments: Mapping[str, Column],
    run_id: str | None = None,
) -> None:
    """UPDATE the rows matching ``condition`` with ``assignments`` (column -> value) in one commit."""
    from delta.tables import DeltaTable

    with commit_metadata(spark, run_id):
        DeltaTable.forName(spark, qualified(database, spec)).update(condition, dict(assignments))


def append_rows(
    spark: SparkSession, database: str, spec: TableSpec, rows: DataFrame, run_id: str | None = None
) -> None:
    """Append ``rows`` (conformed to the contract) in one commit; for rows whose key is new by construction."""
    with commit_metadata(spark, run_id):
        conform(rows, spec).write.format("delta").mode("append").saveAsTable(qualified(database, spec))


def overwrite_where(
    spark: SparkSession, database: str, spec: TableSpec, rows: DataFrame, condition: str, run_id: str | None = None
) -> None:
    """Replace the rows matching the SQL ``condition`` with ``rows`` (Delta ``replaceWhere``), in one commit."""
    with commit_metadata(spark, run_id):
        (
            conform(rows, spec)
            .write.format("delta")
            .mode("overwrite")
            .option("replaceWhere", condition)
            .saveAsTable(qualified(database, spec))
        )


def write_scratch(spark: SparkSession, df: DataFrame, path: str, *, compression: str | None = None) -> DataFrame:
    """Materialise ``df`` as a Delta table at ``path`` (no contract, not in the catalog); return a reader of it.

    For a run's intermediate results: the reader sees a fixed, deterministic copy. ``compression``: the
    Parquet codec of its files (``uncompressed`` for photo bytes, which do not compress); None: the
    session's (``spark.sql.parquet.compression.codec``, snappy by default).
    """
    writer = df.write.format("delta").mode("overwrite")
    if compression is not None:
        writer = writer.option("compression", compression)
    writer.save(path)
    return spark.read.format("delta").load(path)


class commit_metadata:  # noqa: N801 - used as a context manager, reads like a statement
    """Set ``spark.databricks.delta.commitInfo.userMetadata`` for the Delta commits inside the block."""

    KEY = "spark.databricks.delta.commitInfo.userMetadata"

    def __init__(self, spark: SparkSession, run_id: str | None) -> None:
        self.spark = spark
        self.value = f"fleetvision run_id={run_id}" if run_id else None
        self.previous: str | None = None

    def __enter__(self) -> commit_metadata:
        if self.value is not None:
            self.previous = self.spark.conf.get(self.KEY, None)
            self.spark.conf.set(self.KEY, self.value)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.value is not None:
            if self.previous is None:
                self.spark.conf.unset(self.KEY)
            else:
                self.spark.conf.set(self.KEY, self.previous)


def overwrite_table(
    spark: SparkSession, database: str, spec: TableSpec, df: DataFrame, run_id: str | None = None
) -> None:
    """Replace a table's contents (same schema) in one Delta commit."""
    ensure_table(spark, database, spec)
    # insertInto (by position, after conform) keeps the table definition in the metastore as it is;
    # saveAsTable(mode=overwrite) would re-register it and Hive logs a spurious alter-table error.
    with commit_metadata(spark, run_id):
        conform(df, spec).write.insertInto(qualified(database, spec), overwrite=True)


def table_version(spark: SparkSession, database: str, spec: TableSpec) -> int:
    """The table's current Delta version."""
    from delta.tables import DeltaTable

    row = DeltaTable.forName(spark, qualified(database, spec)).history(1).select("version").first()
    if row is None:
        raise RuntimeError(f"table {qualified(database, spec)} has no history")
    return int(row["version"])
