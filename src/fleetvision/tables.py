"""Every FleetVision table's schema, in one place, and the Delta operations on them.

The schemas here are the contract documented in ``docs/tables.md``; tests check both agree.
Input tables (``listings``, ``listing_images``) belong to the marketplace: the job validates them
against their contract before any work. Output tables belong to FleetVision: they are created here,
if missing, with their properties (change data feed where consumers read increments).

Creating, validating and conforming tables happens here; every Delta write (MERGE by a contract's key,
overwrites, appends, scratch copies, each commit tagged with its run) is :mod:`fleetvision.delta_writes`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
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
