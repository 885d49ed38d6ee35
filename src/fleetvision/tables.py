"""Every FleetVision table's schema, in one place, and the Delta operations on them.

The schemas here are the contract documented in ``docs/tables.md``; tests check both agree.
Input tables (``listings``, ``listing_images``) belong to the marketplace: the job validates them
against their contract before any work. Output tables belong to FleetVision: they are created here,
if missing, with their properties (change data feed where consumers read increments).

Every Delta write in the package goes through this module: one MERGE builder (:func:`merge_by_key`,
matched on :func:`key_condition`) with thin variants (:func:`merge_upsert`, :func:`upsert_and_delete`,
:func:`insert_new`, :func:`merge_actions`), and the plain writes
(:func:`overwrite_table`, :func:`overwrite_where`, :func:`append_rows`, :func:`update_where`,
:func:`write_scratch`). Each commit carries ``fleetvision run_id=<id>`` when given a run id.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import types as T

logger = logging.getLogger(__name__)

CDF_PROPERTY = "delta.enableChangeDataFeed"


@dataclass(frozen=True)
class TableSpec:
    """A table's contract.

    Attributes:
        name: Unqualified table name (the database comes from config).
        schema: Column names, types and nullability.
        key: The columns that identify a row; MERGE matches on them.
        properties: Delta table properties set at creation.
        owner: ``input`` (the marketplace's, validated) or ``output`` (FleetVision's, created).
        description: One line for the docs.
        partition_by: Partition columns, if any.
        added_columns: Nullable columns added after the table's first release. A table written
            before them still matches the contract: reads see them as null
            (:func:`validate_input_table`) and :func:`ensure_table` adds them.
    """

    name: str
    schema: T.StructType
    key: tuple[str, ...]
    owner: str
    description: str
    properties: Mapping[str, str] = field(default_factory=dict)
    partition_by: tuple[str, ...] = ()
    added_columns: tuple[str, ...] = ()


def _s(*fields: T.StructField) -> T.StructType:
    return T.StructType(list(fields))


def _f(name: str, dtype: T.DataType, nullable: bool = True) -> T.StructField:
    return T.StructField(name, dtype, nullable)


STR, INT, LONG, DBL, FLT, BOOL, TS, BIN = (
    T.StringType(),
    T.IntegerType(),
    T.LongType(),
    T.DoubleType(),
    T.FloatType(),
    T.BooleanType(),
    T.TimestampType(),
    T.BinaryType(),
)
STR_ARR = T.ArrayType(STR, containsNull=True)
INT_ARR = T.ArrayType(INT, containsNull=True)
FLT_ARR = T.ArrayType(FLT, containsNull=True)
STR_MAP = T.MapType(STR, STR, valueContainsNull=True)
DBL_MAP = T.MapType(STR, DBL, valueContainsNull=True)
# Delta rejects NOT NULL inside arrays and maps: nested fields stay nullable.
TOP_K = T.ArrayType(_s(_f("label", STR), _f("score", FLT)), containsNull=True)

# ----------------------------------------------------------------------------------------- inputs
LISTINGS = TableSpec(
    name="listings",
    key=("listing_id",),
    owner="input",
    description="One row per listing: what the seller declared.",
    schema=_s(
        _f("listing_id", STR, False),
        _f("make", STR),
        _f("model", STR),
        _f("year", INT),
        _f("body_type", STR),
        _f("seller_type", STR),  # dealer | private
        _f("seller_id", STR),
        _f("status", STR),  # active | sold | withdrawn
        _f("updated_at", TS),
    ),
)

LISTING_IMAGES = TableSpec(
    name="listing_images",
    key=("image_id",),
    owner="input",
    description="One row per listing photo: a uri read on the executors, or the bytes inline.",
    properties={CDF_PROPERTY: "true"},
    schema=_s(
        _f("image_id", STR, False),
        _f("listing_id", STR, False),
        _f("position", INT),
        _f("uri", STR),
        _f("content", BIN),
        _f("updated_at", TS),
    ),
)

# Ground truth written by the synthetic generator; the scoring job never reads it.
IMAGE_LABELS = TableSpec(
    name="image_labels",
    key=("image_id",),
    owner="synthetic",
    description="Ground truth for generated photos (tests and evaluation only; never read by scoring).",
    schema=_s(
        _f("image_id", STR, False),
        _f("listing_id", STR),
        _f("photo_id", STR),  # the rendered photo; re-used photos share it across listings
        _f("angle", STR),
        _f("shot_group", STR),
        _f("body_type", STR),
        _f("has_banner", BOOL),
        _f("banner_kind", STR),
        _f("banner_coverage", DBL),
        _f("plate_present", BOOL),
        _f("plate_box", FLT_ARR),  # x0, y0, x1, y1 normalised to the displayed (EXIF-rotated) image
        _f("plate_text", STR),
        _f("hard_negative", STR),  # odometer | price_text | null
        _f("bad_kind", STR),  # null for a good file, else empty | truncated | not_image | bomb | missing_uri ...
        _f("file_format", STR),  # JPEG | PNG | WEBP
        _f("width", INT),
        _f("height", INT),
        _f("exif_orientation", INT),
        _f("color_mode", STR),
        _f("jpeg_quality", INT),
        _f("byte_size", LONG),
    ),
)

# The labelled training set (synthetic, or imported from a user's own labelled photos).
TRAINING_IMAGES = TableSpec(
    name="training_images",
    key=("sample_id",),
    owner="synthetic",
    description="Labelled photos for training and the frozen evaluation sets.",
    schema=_s(
        _f("sample_id", STR, False),
        _f("dataset", STR, False),  # e.g. synthetic-train-s7, synthetic-eval-s1001, folder:/path
        _f("split", STR, False),  # train | val | eval
        _f("content", BIN, False),  # encoded image (JPEG/PNG/WebP)
        _f("angle", STR),
        _f("angle_index", INT),  # -1 when unknown
        _f("has_banner", INT),  # 1, 0, or -1 when unknown
        _f("plate_present", INT),  # 1, 0, or -1 when unknown
        _f("plate_box", FLT_ARR),  # empty when no plate
        _f("body_type", STR),  # null for interior/detail shots
        _f("body_index", INT),  # -1 when no body label
        _f("source", STR),  # synthetic | folder | votes
        # angle classes the label allows: [i] for a full label, several for a coarse one (a group, a
        # view without a side), [] for none; null (rows written before it) = [angle_index] or none
        _f("angle_allowed", INT_ARR),
    ),
    added_columns=("angle_allowed",),
)

# ---------------------------------------------------------------------------------------- outputs
_PREDICTION_FIELDS = (
    _f("width", INT),
    _f("height", INT),
    _f("decode_status", STR, False),  # ok | error
    _f("error_code", STR),  # null when ok; see fleetvision.decode.ErrorCode
    _f("error_detail", STR),
    _f("angle", STR),
    _f("angle_score", FLT),
    _f("angle_top3", TOP_K),
    _f("shot_group", STR),
    _f("banner_score", FLT),
    _f("banner_flag", BOOL),
    _f("plate_score", FLT),
    _f("plate_flag", BOOL),
    _f("plate_box", FLT_ARR),
    _f("body_type", STR),
    _f("body_score", FLT),
    _f("sharpness", FLT),
    _f("brightness", FLT),
)

IMAGE_TAGS = TableSpec(
    name="image_tags",
    key=("image_id",),
    owner="output",
    description="One row per image in listing_images, failures included.",
    schema=_s(
        _f("image_id", STR, False),
        _f("listing_id", STR, False),
        _f("position", INT),
        _f("content_hash", STR),  # sha256 of the bytes; null when the bytes could not be read
        *_PREDICTION_FIELDS,
        _f("model_set_id", STR),
        _f("model_versions", STR_MAP),
        _f("scored_at", TS, False),
        _f("run_id", STR, False),
    ),
)

PREDICTION_CACHE = TableSpec(
    name="prediction_cache",
    key=("content_hash", "model_set_id"),
    owner="output",
    description="(content hash, model set) -> predictions: an identical photo is never inferred twice.",
    schema=_s(
        _f("content_hash", STR, False),
        _f("model_set_id", STR, False),
        *_PREDICTION_FIELDS,
        _f("model_versions", STR_MAP),
        _f("created_at", TS, False),
        _f("run_id", STR, False),
    ),
)

LISTING_COMPLETENESS = TableSpec(
    name="listing_completeness",
    key=("listing_id",),
    owner="output",
    description="One row per listing: completeness score 0-100, its components and the reasons.",
    properties={CDF_PROPERTY: "true"},
    schema=_s(
        _f("listing_id", STR, False),
        _f("seller_type", STR),
        _f("n_photos", INT, False),
        _f("n_scored", INT, False),
        _f("n_failed", INT, False),
        _f("n_exterior", INT, False),
        _f("n_interior", INT, False),
        _f("n_detail", INT, False),
        _f("shots_present", STR_ARR),
        _f("shots_missing", STR_ARR),
        _f("banner_free_share", DBL),
        _f("plate_visible", BOOL),
        _f("mean_quality", DBL),
        _f("declared_body_type", STR),
        _f("predicted_body_type", STR),
        _f("body_type_mismatch", BOOL),
        _f("completeness_score", DBL, False),
        _f("components", DBL_MAP),
        _f("reasons", STR_ARR),
        _f("scorer_version", STR, False),
        _f("computed_at", TS, False),
        _f("run_id", STR, False),
    ),
)

HERO_IMAGES = TableSpec(
    name="hero_images",
    key=("listing_id",),
    owner="output",
    description="One row per listing: the hero photo, why it won, and the canonical gallery order.",
    schema=_s(
        _f("listing_id", STR, False),
        _f("hero_image_id", STR),
        _f("hero_reason", STR),
        _f("gallery_order", STR_ARR),
        _f("duplicates_removed", STR_ARR),
        _f("scorer_version", STR, False),
        _f("computed_at", TS, False),
        _f("run_id", STR, False),
    ),
)

SCORING_RUNS = TableSpec(
    name="scoring_runs",
    key=("run_id",),
    owner="output",
    description="The run ledger; the last successful row is the watermark for incremental runs.",
    schema=_s(
        _f("run_id", STR, False),
        _f("mode", STR, False),  # full | incremental
        _f("status", STR, False),  # succeeded | failed_dq
        _f("started_at", TS, False),
        _f("finished_at", TS),
        _f("input_table_version", LONG),  # listing_images version consumed (the watermark)
        _f("from_version", LONG),  # first version read by an incremental run
        _f("listings_table_version", LONG),  # listings version read (status changes since the last run)
        _f("images_in", LONG),
        _f("images_scored", LONG),
        _f("images_cached", LONG),
        _f("images_failed", LONG),
        _f("images_deleted", LONG),
        _f("photos_inferred", LONG),  # distinct photos (content hashes) this run scored
        _f("listings_updated", LONG),
        _f("listings_removed", LONG),  # listings no longer active: completeness and hero rows removed
        _f("model_set_id", STR),
        _f("model_versions", STR_MAP),
        _f("mlflow_run_id", STR),
        _f("dq_passed", BOOL),
        _f("dq_report", STR),  # JSON
        _f("angle_counts", T.MapType(STR, LONG, valueContainsNull=True)),  # the next run's drift baseline
        _f("message", STR),
    ),
)

RUN_LEASES = TableSpec(
    name="run_leases",
    key=("lease_name",),
    owner="output",
    description="One row per lease: the scoring run that holds it (one at a time per database), until when.",
    schema=_s(
        _f("lease_name", STR, False),  # scoring
        _f("run_id", STR, False),  # the run that holds (or last held) it
        _f("holder", STR, False),  # host:pid of that run's driver
        _f("acquired_at", TS, False),
        _f("renewed_at", TS, False),
        _f("expires_at", TS, False),  # another run may take it over from then on
        _f("released_at", TS),  # null while held
    ),
)

ALL_TABLES: tuple[TableSpec, ...] = (
    LISTINGS,
    LISTING_IMAGES,
    IMAGE_LABELS,
    TRAINING_IMAGES,
    IMAGE_TAGS,
    PREDICTION_CACHE,
    LISTING_COMPLETENESS,
    HERO_IMAGES,
    SCORING_RUNS,
    RUN_LEASES,
)
TABLES_BY_NAME: dict[str, TableSpec] = {t.name: t for t in ALL_TABLES}


class TableContractError(ValueError):
    """An input table does not match its contract."""


# ------------------------------------------------------------------------------------- operations
def qualified(database: str, spec: TableSpec | str) -> str:
    name = spec.name if isinstance(spec, TableSpec) else spec
    return f"{database}.{name}"


def ensure_database(spark: SparkSession, database: str) -> None:
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {database}")


def ensure_table(spark: SparkSession, database: str, spec: TableSpec) -> None:
    """Create a Delta table with its schema and properties if it does not exist.

    An existing table is checked against the contract instead (missing or mistyped columns raise).
    """
    from delta.tables import DeltaTable

    from fleetvision.catalog import register_table

    ensure_database(spark, database)
    name = qualified(database, spec)
    # another process may have made it since this session registered the warehouse's tables
    if spark.catalog.tableExists(name) or register_table(spark, None, database, spec.name):
        schema = spark.table(name).schema
        validate_schema(schema, spec, where=name)
        have = {f.name.lower() for f in schema.fields}
        added = [f for f in spec.schema.fields if f.name in spec.added_columns and f.name.lower() not in have]
        if added:
            columns = ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in added)
            spark.sql(f"ALTER TABLE {name} ADD COLUMNS ({columns})")
            logger.info("table %s: added column(s) %s", name, columns)
        return
    builder = DeltaTable.createIfNotExists(spark).tableName(name).addColumns(spec.schema)
    for k, v in spec.properties.items():
        builder = builder.property(k, v)
    if spec.description:
        builder = builder.comment(spec.description)
    if spec.partition_by:
        builder = builder.partitionedBy(*spec.partition_by)
    builder.execute()
    logger.info("created table %s", name)


def ensure_tables(spark: SparkSession, database: str, specs: Iterable[TableSpec] = ALL_TABLES) -> None:
    for spec in specs:
        ensure_table(spark, database, spec)


def _type_name(dt: T.DataType) -> str:
    return dt.simpleString()


def validate_schema(actual: T.StructType, spec: TableSpec, where: str | None = None) -> None:
    """Check a schema against a table's contract.

    Every contract column must be present with the same type, except the spec's ``added_columns``,
    which may be missing. Extra columns are allowed (the marketplace may carry more than we read).
    Nullability is not enforced here: Spark relaxes it
    on many paths, so null checks on key columns happen on the data.

    Raises:
        TableContractError: naming every missing and every mistyped column.
    """
    where = where or spec.name
    have = {f.name.lower(): f for f in actual.fields}
    missing = [f.name for f in spec.schema.fields if f.name.lower() not in have and f.name not in spec.added_columns]
    mistyped = [
        f"{f.name} is {_type_name(have[f.name.lower()].dataType)}, expected {_type_name(f.dataType)}"
        for f in spec.schema.fields
        if f.name.lower() in have and not _compatible(have[f.name.lower()].dataType, f.dataType)
    ]
    problems = []
    if missing:
        problems.append(f"missing column(s): {', '.join(missing)}")
    if mistyped:
        problems.append(f"mistyped column(s): {'; '.join(mistyped)}")
    if problems:
        raise TableContractError(f"table {where} does not match the {spec.name} contract: {' | '.join(problems)}")


def _compatible(actual: T.DataType, expected: T.DataType) -> bool:
    """Types equal up to nullability flags inside arrays, maps and structs."""
    if isinstance(expected, T.ArrayType):
        return isinstance(actual, T.ArrayType) and _compatible(actual.elementType, expected.elementType)
    if isinstance(expected, T.MapType):
        return (
            isinstance(actual, T.MapType)
            and _compatible(actual.keyType, expected.keyType)
            and _compatible(actual.valueType, expected.valueType)
        )
    if isinstance(expected, T.StructType):
        if not isinstance(actual, T.StructType) or len(actual.fields) != len(expected.fields):
            return False
        return all(
            a.name == e.name and _compatible(a.dataType, e.dataType)
            for a, e in zip(actual.fields, expected.fields)
        )
    return actual == expected


def validate_input_table(spark: SparkSession, database: str, spec: TableSpec) -> DataFrame:
    """Read an input table by name and check it against its contract before any work.

    A missing ``added_columns`` column (a table written before it) reads as null.

    Raises:
        TableContractError: The table is missing, or a column is missing or mistyped.
    """
    name = qualified(database, spec)
    if not spark.catalog.tableExists(name):
        raise TableContractError(f"input table {name} does not exist (expected the {spec.name} contract)")
    df = spark.table(name)
    validate_schema(df.schema, spec, where=name)
    from pyspark.sql import functions as F

    have = {c.lower() for c in df.columns}
    for f in spec.schema.fields:
        if f.name in spec.added_columns and f.name.lower() not in have:
            df = df.withColumn(f.name, F.lit(None).cast(f.dataType))
    return df


def conform(df: DataFrame, spec: TableSpec, keep: Sequence[str] = ()) -> DataFrame:
    """Select and cast a DataFrame's columns to a table's contract, in contract order.

    Args:
        keep: Columns of ``df`` outside the contract to carry after the contract's (a MERGE action column).
    """
    from pyspark.sql import functions as F

    cols = []
    have = set(df.columns)
    for f in spec.schema.fields:
        if f.name in have:
            cols.append(F.col(f.name).cast(f.dataType).alias(f.name))
        else:
            cols.append(F.lit(None).cast(f.dataType).alias(f.name))
    return df.select(*cols, *[F.col(c) for c in keep])


# ------------------------------------------------------------------------------------ delta writes
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


# ------------------------------------------------------------------------------------------ docs
def schema_markdown(specs: Iterable[TableSpec] = ALL_TABLES) -> str:
    """The table reference for ``docs/tables.md``, generated from the specs (a test keeps them equal)."""
    specs = tuple(specs)
    out: list[str] = []
    for spec in specs:
        props = ", ".join(f"`{k}={v}`" for k, v in spec.properties.items()) or "none"
        out.append(f"### `{spec.name}` ({spec.owner})\n")
        out.append(f"{spec.description}\n")
        out.append(f"Key: `{', '.join(spec.key)}`. Properties: {props}.\n")
        out.append("| column | type | nullable |")
        out.append("| --- | --- | --- |")
        for f in spec.schema.fields:
            out.append(f"| `{f.name}` | `{f.dataType.simpleString()}` | {'yes' if f.nullable else 'no'} |")
        out.append("")
    if any("error_code" in spec.schema.fieldNames() for spec in specs):
        out.append(error_codes_markdown())
    return "\n".join(out)


def error_codes_markdown() -> str:
    """The ``error_code`` values (``image_tags``, ``prediction_cache``), from :class:`fleetvision.decode.ErrorCode`."""
    from fleetvision.decode import ERROR_CODE_MEANINGS, ERROR_CODES

    out = [
        "### Error codes\n",
        "`error_code` in `image_tags` and `prediction_cache` (null when the photo decoded). Every input photo "
        "gets one `image_tags` row, with predictions or one of these codes; `error_detail` says more in one "
        "line and never quotes the file's bytes.\n",
        "| code | meaning |",
        "| --- | --- |",
    ]
    out += [f"| `{code}` | {ERROR_CODE_MEANINGS[code]} |" for code in ERROR_CODES]
    out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(schema_markdown())
