"""One scoring run, start to finish: select, hash, infer, MERGE, recompute listings, check, record.

:func:`run_scoring` wires the pure core to the tables and does nothing else. Every stage's result is
staged in a Delta table under ``<database location>/_fv_staging/<run_id>/`` before it is merged, so each
MERGE reads a fixed, deterministic source and a Spark task retry can never add a row twice (only the
files of a successful task attempt are committed). The order makes reruns idempotent:

1. ``prediction_cache`` MERGE (by content hash and model set),
2. ``image_tags`` MERGE (by image_id) and removal of deleted images' tags,
3. ``listing_completeness`` / ``hero_images`` MERGE for the affected active listings and removal for
   listings no longer active,
4. data-quality checks,
5. the MLflow run, then the ``scoring_runs`` row, last. Only a ``succeeded`` row moves the watermark.

A run killed anywhere before step 5 leaves the watermark where it was; the next run selects the same
work, finds its predictions in the cache and MERGEs the same rows again. Every Delta commit carries
``fleetvision run_id=<id>`` as user metadata.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fleetvision import tables
from fleetvision.decode import PhotoRoots
from fleetvision.scoring import ScoringRules
from fleetvision.scoring import work as W
from fleetvision.scoring.lease import HeldLease, acquire_lease
from fleetvision.scoring.tags import prediction_cache_key
from fleetvision.scoring.udf import (
    FAIL_AT_ENV,
    PREDICTION_SCHEMA,
    ModelLoader,
    UdfSettings,
    make_hash_udf,
    make_scoring_udf,
)
from fleetvision.spark import Placement, job_placement
from fleetvision.tables import (
    HERO_IMAGES,
    IMAGE_TAGS,
    LISTING_COMPLETENESS,
    LISTING_IMAGES,
    LISTINGS,
    PREDICTION_CACHE,
    SCORING_RUNS,
    TableSpec,
    qualified,
)
from fleetvision.taxonomy import Taxonomy, load_taxonomy

if TYPE_CHECKING:
    from fleetvision.config import Config

logger = logging.getLogger(__name__)

STATUS_SUCCEEDED = "succeeded"
STATUS_FAILED_DQ = "failed_dq"
EXIT_OK, EXIT_FAILED = 0, 1
FAIL_POINTS = ("after_cache_merge", "after_tags_merge", "after_listings_merge", "before_ledger", "udf_first_attempt")
"""Values of ``FLEETVISION_FAIL_AT`` (recovery tests): the run raises :class:`InjectedFailureError` there."""
# Columns that say which run wrote a row (and when), not what the row says.
RUN_COLUMNS = frozenset({"run_id", "scored_at", "computed_at", "created_at"})
_STAGING_DIR = "_fv_staging"
GroupFn = Callable[[pd.DataFrame], pd.DataFrame]


class InjectedFailureError(RuntimeError):
    """Raised at a ``FLEETVISION_FAIL_AT`` point, as if the process had been killed there."""


@dataclass
class RunSummary:
    """What a run did; printed at the end, logged to MLflow as ``summary.json``.

    ``images_scored`` counts photos whose predictions were inferred in this run (every photo sharing the
    bytes of an inferred one included), ``images_cached`` those answered by predictions an earlier run
    left in the prediction cache, ``images_failed`` those with an error code; every selected photo is in
    exactly one of them. ``photos_inferred`` is the number of distinct photos (content hashes) the models
    saw.
    """

    run_id: str
    mode: str
    status: str
    started_at: datetime
    finished_at: datetime | None = None
    input_table_version: int | None = None
    from_version: int | None = None
    listings_table_version: int | None = None
    model_set_id: str | None = None
    model_versions: dict[str, str] = field(default_factory=dict)
    images_in: int = 0
    images_scored: int = 0
    images_cached: int = 0
    images_failed: int = 0
    images_deleted: int = 0
    photos_inferred: int = 0
    failed_by_code: dict[str, int] = field(default_factory=dict)
    listings_updated: int = 0
    listings_removed: int = 0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    score_stats: dict[str, float] = field(default_factory=dict)
    angle_counts: dict[str, int] = field(default_factory=dict)
    dq_passed: bool | None = None
    dq_breached: list[str] = field(default_factory=list)
    dq_report: str | None = None
    mlflow_run_id: str | None = None
    message: str | None = None
    # where the run ran: the master, where that setting came from, the executors (not in the ledger)
    placement: Placement | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.status == STATUS_SUCCEEDED else EXIT_FAILED

    @property
    def total_seconds(self) -> float:
        return sum(self.stage_seconds.values())

    @property
    def throughput(self) -> float:
        """Selected photos per second over the whole run."""
        return self.images_in / self.total_seconds if self.total_seconds > 0 else 0.0

    def counts(self) -> dict[str, int]:
        """The image and listing counts (MLflow metrics)."""
        names = ("images_in", "images_scored", "images_cached", "images_failed", "images_deleted")
        names += ("photos_inferred", "listings_updated", "listings_removed")
        return {name: int(getattr(self, name)) for name in names}

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("started_at", "finished_at"):
            out[key] = out[key].isoformat() if out[key] is not None else None
        out["throughput_images_per_s"] = round(self.throughput, 3)
        out["exit_code"] = self.exit_code
        out.pop("dq_report", None)
        return out

    def render(self) -> str:
        """The one-screen text summary the job prints."""
        verdict = "OK" if self.status == STATUS_SUCCEEDED else f"FAILED ({self.status})"
        versions = ", ".join(f"{k}={v}" for k, v in sorted(self.model_versions.items())) or "-"
        failed = ", ".join(f"{k}={v}" for k, v in sorted(self.failed_by_code.items())) or "none"
        stages = "  ".join(f"{k} {v:.1f}s" for k, v in self.stage_seconds.items())
        window = (
            f"{self.from_version}..{self.input_table_version}"
            if self.from_version is not None
            else f"@{self.input_table_version}"
        )
        lines = [
            f"FleetVision scoring run {self.run_id}: {verdict}",
            f"  mode            {self.mode} (listing_images {window}, listings @{self.listings_table_version})",
            f"  models          {self.model_set_id} [{versions}]",
            f"  images in       {self.images_in}",
            f"    inferred      {self.images_scored} ({self.photos_inferred} distinct photos sent to the models)",
            f"    from cache    {self.images_cached}",
            f"    failed        {self.images_failed} ({failed})",
            f"    tags removed  {self.images_deleted}",
            f"  listings        {self.listings_updated} recomputed, {self.listings_removed} removed",
            f"  time            {self.total_seconds:.1f}s ({self.throughput:.1f} images/s): {stages}",
        ]
        if self.score_stats:
            stats = ", ".join(f"{k}={v:.3g}" for k, v in sorted(self.score_stats.items()))
            lines.append(f"  scores          {stats}")
        dq = "passed" if self.dq_passed else f"BREACHED: {', '.join(self.dq_breached) or '?'}"
        lines.append(f"  checks          {dq}")
        lines.append(f"  watermark       {'moved' if self.status == STATUS_SUCCEEDED else 'NOT moved'}")
        lines.append(f"  mlflow run      {self.mlflow_run_id or '-'}")
        if self.placement is not None:
            lines.append(f"  spark           {self.placement.describe()}")
        if self.message:
            lines.append(f"  note            {self.message}")
        return "\n".join(lines)


class _Stopwatch:
    """Times each stage; at each stage start, renews the run's lease when due (which checks it is still ours)."""

    def __init__(self, summary: RunSummary, lease: HeldLease | None = None) -> None:
        self.summary = summary
        self.lease = lease

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            if self.lease is not None:
                self.lease.renew()
            yield
        finally:
            self.summary.stage_seconds[name] = round(
                self.summary.stage_seconds.get(name, 0.0) + time.perf_counter() - start, 3
            )


def _fail_point(name: str, environ: Mapping[str, str]) -> None:
    if environ.get(FAIL_AT_ENV) == name:
        raise InjectedFailureError(f"{FAIL_AT_ENV}={name}: run stopped on purpose at {name}")


def new_run_id(now: datetime) -> str:
    """A sortable, unique run id: ``YYYYmmddTHHMMSSZ-<8 hex>``."""
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


# -------------------------------------------------------------------------------------- staging
class Staging:
    """Delta tables for one run's intermediate results, under the database's location."""

    def __init__(self, spark: SparkSession, database: str, run_id: str) -> None:
        location = spark.catalog.getDatabase(database).locationUri.rstrip("/")
        self.spark = spark
        self.root = f"{location}/{_STAGING_DIR}/{run_id}"
        self.parent = f"{location}/{_STAGING_DIR}"

    def write(self, name: str, df: DataFrame) -> DataFrame:
        """Materialise ``df`` as a Delta table and return a reader of it."""
        path = f"{self.root}/{name}"
        df.write.format("delta").mode("overwrite").save(path)
        return self.spark.read.format("delta").load(path)

    def remove(self, *, everything: bool = False) -> None:
        """Delete this run's staging tables (or every run's, with ``everything``)."""
        jvm = self.spark.sparkContext._jvm
        if jvm is None:
            return
        path = jvm.org.apache.hadoop.fs.Path(self.parent if everything else self.root)
        fs = path.getFileSystem(self.spark.sparkContext._jsc.hadoopConfiguration())
        fs.delete(path, True)


# ---------------------------------------------------------------------------------- delta writes
def merge_changed(
    spark: SparkSession,
    database: str,
    spec: TableSpec,
    updates: DataFrame,
    run_id: str,
) -> None:
    """MERGE by key, updating a matched row only when a column other than the run columns differs.

    Consumers of a change data feed (ranking reads ``listing_completeness``) then see a change only
    when a listing's result changed, not every time a run recomputes it.
    """
    from delta.tables import DeltaTable

    def comparable(side: str, f: T.StructField) -> str:
        # Maps have no equality in Spark SQL: compare their entries, sorted.
        if isinstance(f.dataType, T.MapType):
            return f"array_sort(map_entries({side}.`{f.name}`))"
        return f"{side}.`{f.name}`"

    compared = [f for f in spec.schema.fields if f.name not in RUN_COLUMNS and f.name not in spec.key]
    changed = " OR ".join(f"NOT ({comparable('t', f)} <=> {comparable('s', f)})" for f in compared)
    cond = " AND ".join(f"t.`{k}` = s.`{k}`" for k in spec.key)
    merger = (
        DeltaTable.forName(spark, qualified(database, spec))
        .alias("t")
        .merge(tables.conform(updates, spec).alias("s"), cond)
        .whenMatchedUpdateAll(condition=changed or None)
        .whenNotMatchedInsertAll()
    )
    with tables.commit_metadata(spark, run_id):
        merger.execute()


def insert_new(spark: SparkSession, database: str, spec: TableSpec, rows: DataFrame, run_id: str) -> None:
    """MERGE that only inserts rows whose key is not in the table yet (Delta runs it as an anti join)."""
    from delta.tables import DeltaTable

    cond = " AND ".join(f"t.`{k}` = s.`{k}`" for k in spec.key)
    merger = (
        DeltaTable.forName(spark, qualified(database, spec))
        .alias("t")
        .merge(tables.conform(rows, spec).alias("s"), cond)
        .whenNotMatchedInsertAll()
    )
    with tables.commit_metadata(spark, run_id):
        merger.execute()


def delete_keys(spark: SparkSession, database: str, spec: TableSpec, keys: DataFrame, run_id: str) -> int:
    """Delete the rows whose key is in ``keys`` (a MERGE, so the commit carries the run id).

    Returns:
        The number of rows deleted.
    """
    from delta.tables import DeltaTable

    cond = " AND ".join(f"t.`{k}` = s.`{k}`" for k in spec.key)
    source = keys.select(*spec.key).distinct()
    table = DeltaTable.forName(spark, qualified(database, spec))
    with tables.commit_metadata(spark, run_id):
        table.alias("t").merge(source.alias("s"), cond).whenMatchedDelete().execute()
    metrics = table.history(1).select("operationMetrics").first()
    return int((metrics["operationMetrics"] or {}).get("numTargetRowsDeleted", 0)) if metrics else 0


# ---------------------------------------------------------------------------------- model set
def model_versions(model_set: Any) -> dict[str, str]:
    """``task -> version`` of a model set (written to every output row)."""
    versions = getattr(model_set, "versions", None)
    if callable(versions):
        versions = versions()
    if isinstance(versions, Mapping):
        return {str(k): str(v) for k, v in versions.items()}
    models = getattr(model_set, "models", None)
    if isinstance(models, Mapping):
        return {str(k): str(getattr(v, "version", v)) for k, v in models.items()}
    raise TypeError(f"model set {model_set!r} has neither .versions nor .models")


def _partitions(rows: int, per_partition: int, parallelism: int) -> int:
    return max(1, min(max(parallelism, math.ceil(rows / max(per_partition, 1))), 4096))


# ---------------------------------------------------------------------------------- listing level
_HERO_ONLY = tuple(f for f in HERO_IMAGES.schema.fields if f.name not in {x.name for x in LISTING_COMPLETENESS.schema})
LISTING_RESULT_SCHEMA = T.StructType(
    [T.StructField(f.name, f.dataType, True) for f in (*LISTING_COMPLETENESS.schema.fields, *_HERO_ONLY)]
)
"""One row per recomputed listing: its ``listing_completeness`` columns and its ``hero_images`` columns."""


def listing_result_fn(taxonomy: Taxonomy, rules: ScoringRules, run_id: str, computed_at: datetime) -> GroupFn:
    """The ``applyInPandas`` function: one listing's tags in, its completeness and hero row out.

    The closure holds only the taxonomy, the rules, the run id and the run's timestamp. Each group's
    rows carry the listing's declared ``listing_body_type`` and ``listing_seller_type``; a listing with
    no photos arrives as one row with a null ``image_id`` (the core ignores such rows).
    """
    from fleetvision.scoring.completeness import completeness_frame
    from fleetvision.scoring.hero import hero_frame

    columns = [f.name for f in LISTING_RESULT_SCHEMA.fields]

    def listing_result(pdf: pd.DataFrame) -> pd.DataFrame:
        first = pdf.iloc[0]
        listing = {
            "listing_id": first["listing_id"],
            "body_type": first["listing_body_type"],
            "seller_type": first["listing_seller_type"],
        }
        scores = completeness_frame(pdf, listing, taxonomy, rules, run_id=run_id, computed_at=computed_at)
        hero = hero_frame(
            pdf, taxonomy, rules, listing_id=str(first["listing_id"]), run_id=run_id, computed_at=computed_at
        )
        for f in _HERO_ONLY:
            scores[f.name] = hero[f.name].to_numpy()
        return scores[columns]

    return listing_result


# ---------------------------------------------------------------------------------- the run
@dataclass(frozen=True)
class RunOptions:
    """How to run, beyond the config.

    Attributes:
        mode: ``full`` or ``incremental``.
        model_set: A model set already resolved (default: resolved from the registry by alias).
        loader: Loads models in the workers (default: the MLflow registry loader).
        log_to_mlflow: Record an MLflow run (params, metrics, summary and contact sheet).
        environ: Where ``FLEETVISION_FAIL_AT`` is read (default ``os.environ``).
    """

    mode: str = "full"
    model_set: Any = None
    loader: ModelLoader | None = None
    log_to_mlflow: bool = True
    environ: Mapping[str, str] | None = None


def run_scoring(spark: SparkSession, config: Config, options: RunOptions) -> RunSummary:
    """Run the scoring job once.

    Args:
        spark: The session (built by the caller).
        config: The job configuration.
        options: Mode and injectable parts.

    Returns:
        The run's summary; ``status`` is ``succeeded`` or ``failed_dq``.

    Raises:
        fleetvision.tables.TableContractError: An input table is missing or off-contract (nothing done).
        ValueError: The mode or the scoring rules are invalid (nothing done).
        InjectedFailureError: A ``FLEETVISION_FAIL_AT`` point was reached.
        fleetvision.scoring.lease.LeaseBusyError: Another run holds the database's scoring lease
            (nothing done).
        fleetvision.scoring.lease.LeaseLostError: The lease was lost mid-run (expired and taken over,
            or broken by hand); the run stopped at a stage start.
    """
    environ = os.environ if options.environ is None else options.environ
    db = config.tables.database
    # Fail fast, before any work: inputs on contract, rules valid (then the lease, then the outputs).
    tables.validate_input_table(spark, db, LISTINGS)
    tables.validate_input_table(spark, db, LISTING_IMAGES)
    taxonomy = load_taxonomy()
    rules = ScoringRules.from_config(config.scoring, taxonomy, driver_side=config.market.driver_side)
    if options.mode not in W.MODES:
        raise ValueError(f"scoring mode must be one of {W.MODES}, got {options.mode!r}")

    started_at = datetime.now(UTC).replace(tzinfo=None)
    run_id = new_run_id(started_at)
    # One run per database at a time: the lease (and its table) before any other table is created or
    # written, so two first runs never race to create the outputs; released however the run ends.
    lease = acquire_lease(spark, db, run_id, timedelta(minutes=config.scoring.lease_ttl_minutes))
    try:
        outputs = (IMAGE_TAGS, PREDICTION_CACHE, LISTING_COMPLETENESS, HERO_IMAGES, SCORING_RUNS)
        tables.ensure_tables(spark, db, outputs)
        return _score_under_lease(spark, config, options, environ, taxonomy, rules, started_at, lease)
    finally:
        lease.release()


def _score_under_lease(
    spark: SparkSession,
    config: Config,
    options: RunOptions,
    environ: Mapping[str, str],
    taxonomy: Taxonomy,
    rules: ScoringRules,
    started_at: datetime,
    lease: HeldLease,
) -> RunSummary:
    """The run's work, once its inputs are checked and it holds the lease (:func:`run_scoring`)."""
    db = config.tables.database
    run_id = lease.run_id
    summary = RunSummary(run_id=run_id, mode=options.mode, status="running", started_at=started_at)
    clock = _Stopwatch(summary, lease)
    with clock.stage("resolve_models"):
        model_set = options.model_set
        if model_set is None:
            from fleetvision.models.registry import resolve_model_set

            model_set = resolve_model_set(config)
        summary.model_set_id = str(model_set.model_set_id)
        summary.model_versions = model_versions(model_set)
    logger.info("scoring run %s (%s) with model set %s", run_id, options.mode, summary.model_set_id)

    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(config.spark.arrow_max_records_per_batch))
    staging = Staging(spark, db, run_id)
    settings = UdfSettings.from_config(config, environ)
    parallelism = spark.sparkContext.defaultParallelism
    batch_rows = config.spark.arrow_max_records_per_batch

    # 1. select the work, and pin what the run will change before anything is merged.
    with clock.stage("select"):
        watermark = W.last_watermark(spark, db)
        selection = W.select_work(spark, db, options.mode, watermark)  # type: ignore[arg-type]
        summary.mode = selection.mode
        summary.input_table_version = selection.input_version
        summary.from_version = selection.from_version
        summary.listings_table_version = selection.listings_version
        work_images = selection.images
        # Both read pinned table versions: the same ids however often they are evaluated.
        deleted = selection.deleted_image_ids
        affected = selection.affected_listing_ids.distinct()
        # An upper bound for partitioning; the exact count comes from the staged hashes.
        images_estimate = work_images.count()

    # 2. hash every selected photo's bytes on the executors.
    with clock.stage("hash"):
        hash_udf = make_hash_udf(settings.max_bytes, settings.remote_options, settings.photo_roots)
        hashed = staging.write(
            "hashes",
            work_images.repartition(_partitions(images_estimate, batch_rows, parallelism))
            .select("image_id", "listing_id", "position", hash_udf("uri", "content").alias("h"))
            .select("image_id", "listing_id", "position", "h.*"),
        )
        summary.images_in = hashed.count()

    # 3. infer one photo per content hash the cache lacks; every model on the same decoded batch.
    with clock.stage("infer"):
        cache_table = W.pinned(spark, db, PREDICTION_CACHE.name)
        cache_key = prediction_cache_key(summary.model_set_id, rules.driver_side)  # cached tags are market names
        todo = W.photos_to_infer(hashed, work_images, cache_table, cache_key)
        summary.photos_inferred = todo.count()
        if summary.photos_inferred:
            score_udf = make_scoring_udf(model_set, settings, taxonomy, rules, options.loader)
            predicted = staging.write(
                "predictions",
                todo.repartition(_partitions(summary.photos_inferred, batch_rows, parallelism))
                .select("content_hash", score_udf("uri", "content").alias("p"))
                .select("content_hash", "p.*"),
            )
        else:
            predicted = None

    versions_col = F.create_map(*[F.lit(x) for kv in sorted(summary.model_versions.items()) for x in kv])
    # 4. MERGE the new predictions into the cache, then the tags of every selected photo.
    with clock.stage("merge_tags"):
        if predicted is not None:
            insert_new(
                spark,
                db,
                PREDICTION_CACHE,
                predicted.withColumn("model_set_id", F.lit(cache_key))
                .withColumn("model_versions", versions_col)
                .withColumn("created_at", F.lit(started_at))
                .withColumn("run_id", F.lit(run_id)),
                run_id,
            )
        _fail_point("after_cache_merge", environ)
        cache_now = W.cache_rows(spark.table(qualified(db, PREDICTION_CACHE)), cache_key)
        staged_tags = staging.write("tags", _tag_rows(hashed, cache_now, predicted, summary, versions_col))
        _count_tags(staged_tags, summary)
        tables.merge_upsert(spark, db, IMAGE_TAGS, staged_tags, run_id=run_id)
        if deleted.count():
            summary.images_deleted = delete_keys(spark, db, IMAGE_TAGS, deleted, run_id)
        _fail_point("after_tags_merge", environ)

    # 5. recompute the affected listings with the pure completeness and hero functions.
    with clock.stage("listings"):
        _recompute_listings(
            spark, db, affected, selection.listings_version, taxonomy, rules, run_id, started_at, staging, summary
        )
        _fail_point("after_listings_merge", environ)

    # 6. data-quality checks, against the previous successful run.
    with clock.stage("checks"):
        from fleetvision.scoring.checks import run_checks

        summary.angle_counts = _angle_counts(staged_tags)
        previous = _previous_angle_counts(spark, db, watermark)
        result = run_checks(
            images_in=summary.images_in,
            images_failed=summary.images_failed,
            images_scored=summary.images_scored + summary.images_cached,
            angle_counts=summary.angle_counts,
            previous_angle_counts=previous,
            rules=rules,
        )
        summary.dq_passed = bool(result.passed)
        summary.dq_breached = list(result.breached)
        summary.score_stats = _score_stats(spark, staged_tags, db, affected)
    summary.status = STATUS_SUCCEEDED if summary.dq_passed else STATUS_FAILED_DQ
    if not summary.dq_passed:
        summary.message = "data-quality checks breached; the watermark was not moved"
    summary.dq_report = result.to_json(stage_seconds=summary.stage_seconds)

    # 7. MLflow, then the ledger row, last.
    summary.finished_at = datetime.now(UTC).replace(tzinfo=None)
    summary.placement = job_placement(spark)
    if options.log_to_mlflow:
        summary.mlflow_run_id = log_to_mlflow(spark, config, summary, affected, selection.input_version)
    _fail_point("before_ledger", environ)
    lease.renew(force=True)  # only the lease's holder moves the watermark
    write_ledger(spark, db, summary)
    staging.remove()
    logger.info("scoring run %s finished: %s", run_id, summary.status)
    return summary


# ------------------------------------------------------------------------------------ run helpers
def _tag_rows(
    hashed: DataFrame,
    cache: DataFrame,
    predicted: DataFrame | None,
    summary: RunSummary,
    versions_col: Any,
) -> DataFrame:
    """``image_tags`` rows for the selected photos: read errors, else the cached predictions of their bytes.

    The extra column ``_inferred`` marks predictions computed by this run (for the counts only).
    """
    pred_cols = [f.name for f in PREDICTION_SCHEMA.fields]
    cached = cache.select("content_hash", *[F.col(c).alias(f"_p_{c}") for c in pred_cols])
    rows = hashed.join(cached, "content_hash", "left")
    if predicted is not None:
        fresh = predicted.select("content_hash").distinct().withColumn("_inferred", F.lit(True))
        rows = rows.join(fresh, "content_hash", "left")
    else:
        rows = rows.withColumn("_inferred", F.lit(None).cast("boolean"))
    read_failed = F.col("read_error_code").isNotNull()
    columns = {c: F.when(read_failed, F.lit(None)).otherwise(F.col(f"_p_{c}")) for c in pred_cols}
    columns["decode_status"] = F.when(read_failed, F.lit("error")).otherwise(F.col("_p_decode_status"))
    columns["error_code"] = F.coalesce(F.col("read_error_code"), F.col("_p_error_code"))
    columns["error_detail"] = F.coalesce(F.col("read_error_detail"), F.col("_p_error_detail"))
    return rows.select(
        "image_id",
        "listing_id",
        "position",
        "content_hash",
        *[columns[c].alias(c) for c in pred_cols],
        F.lit(summary.model_set_id).alias("model_set_id"),
        versions_col.alias("model_versions"),
        F.lit(summary.started_at).alias("scored_at"),
        F.lit(summary.run_id).alias("run_id"),
        F.coalesce(F.col("_inferred"), F.lit(False)).alias("_inferred"),
    )


def _count_tags(staged_tags: DataFrame, summary: RunSummary) -> None:
    """Fill the image counts; every selected photo must have a decode status (else the run is broken)."""
    counts = staged_tags.groupBy("decode_status", "error_code", "_inferred").count().collect()
    missing = sum(r["count"] for r in counts if r["decode_status"] is None)
    if missing:
        raise RuntimeError(
            f"{missing} photo(s) have a content hash but no prediction in prediction_cache for model set "
            f"{summary.model_set_id}: the cache MERGE did not land"
        )
    summary.images_scored = sum(r["count"] for r in counts if r["decode_status"] == "ok" and r["_inferred"])
    summary.images_cached = sum(r["count"] for r in counts if r["decode_status"] == "ok" and not r["_inferred"])
    failed: dict[str, int] = {}
    for r in counts:
        if r["decode_status"] != "ok":
            failed[r["error_code"] or "unknown"] = failed.get(r["error_code"] or "unknown", 0) + r["count"]
    summary.failed_by_code = dict(sorted(failed.items()))
    summary.images_failed = sum(failed.values())
    tagged = summary.images_scored + summary.images_cached + summary.images_failed
    if tagged != summary.images_in:
        raise RuntimeError(f"{summary.images_in} photos selected but {tagged} tag rows staged")


_LISTING_TAG_COLUMNS = (
    "image_id",
    "position",
    "content_hash",
    "width",
    "height",
    "decode_status",
    "error_code",
    "angle",
    "angle_score",
    "shot_group",
    "banner_score",
    "banner_flag",
    "plate_score",
    "plate_flag",
    "body_type",
    "body_score",
    "sharpness",
    "brightness",
)


def _recompute_listings(
    spark: SparkSession,
    db: str,
    affected: DataFrame,
    listings_version: int,
    taxonomy: Taxonomy,
    rules: ScoringRules,
    run_id: str,
    computed_at: datetime,
    staging: Staging,
    summary: RunSummary,
) -> None:
    """Recompute completeness and hero rows of the affected active listings; drop the inactive ones."""
    listings = W.read_version(spark, db, LISTINGS.name, listings_version).select(
        "listing_id",
        "status",
        F.col("seller_type").alias("listing_seller_type"),
        F.col("body_type").alias("listing_body_type"),
    )
    active = affected.join(listings.filter(W.is_active(F.col("status"))).drop("status"), "listing_id")
    removed = affected.join(active.select("listing_id"), "listing_id", "left_anti")
    tags = (
        spark.table(qualified(db, IMAGE_TAGS))
        .join(active.select("listing_id"), "listing_id", "left_semi")
        .select("listing_id", *_LISTING_TAG_COLUMNS)
    )
    # A left join keeps listings without photos: their single row has a null image_id (ignored by the core).
    groups = active.join(tags, "listing_id", "left")
    results = staging.write(
        "listing_results",
        groups.groupBy("listing_id").applyInPandas(
            listing_result_fn(taxonomy, rules, run_id, computed_at), LISTING_RESULT_SCHEMA
        ),
    )
    summary.listings_updated = results.count()
    merge_changed(spark, db, LISTING_COMPLETENESS, results, run_id)
    merge_changed(spark, db, HERO_IMAGES, results, run_id)
    if removed.count():
        summary.listings_removed = delete_keys(spark, db, LISTING_COMPLETENESS, removed, run_id)
        delete_keys(spark, db, HERO_IMAGES, removed, run_id)


def _angle_counts(staged_tags: DataFrame) -> dict[str, int]:
    rows = staged_tags.filter(F.col("decode_status") == "ok").groupBy("angle").count().collect()
    return {str(r["angle"]): int(r["count"]) for r in rows if r["angle"] is not None}


def _previous_angle_counts(spark: SparkSession, db: str, watermark: W.Watermark | None) -> dict[str, int] | None:
    if watermark is None:
        return None
    row = (
        spark.table(qualified(db, SCORING_RUNS))
        .filter(F.col("run_id") == watermark.run_id)
        .select("angle_counts")
        .first()
    )
    if row is None or not row["angle_counts"]:
        return None
    return {str(k): int(v) for k, v in row["angle_counts"].items()}


def _score_stats(spark: SparkSession, staged_tags: DataFrame, db: str, affected: DataFrame) -> dict[str, float]:
    """Distribution figures of this run's outputs (MLflow metrics and the summary)."""
    ok = staged_tags.filter(F.col("decode_status") == "ok")
    tag_row = ok.agg(
        F.avg("angle_score").alias("angle_score_mean"),
        F.avg(F.col("banner_flag").cast("double")).alias("banner_share"),
        F.avg(F.col("plate_flag").cast("double")).alias("plate_share"),
        F.avg("sharpness").alias("sharpness_mean"),
    ).first()
    comp_row = (
        spark.table(qualified(db, LISTING_COMPLETENESS))
        .join(affected, "listing_id", "left_semi")
        .agg(
            F.avg("completeness_score").alias("completeness_mean"),
            F.percentile_approx("completeness_score", 0.1).alias("completeness_p10"),
            F.percentile_approx("completeness_score", 0.5).alias("completeness_p50"),
            F.percentile_approx("completeness_score", 0.9).alias("completeness_p90"),
        )
        .first()
    )
    stats: dict[str, float] = {}
    for row in (tag_row, comp_row):
        if row is not None:
            stats.update({k: float(v) for k, v in row.asDict().items() if v is not None})
    return stats


def write_ledger(spark: SparkSession, db: str, summary: RunSummary) -> None:
    """Write the run's ``scoring_runs`` row (the watermark when ``succeeded``)."""
    # Every ledger column is a summary field of the same name.
    row = tuple(getattr(summary, f.name) for f in SCORING_RUNS.schema.fields)
    df = spark.createDataFrame([row], SCORING_RUNS.schema)
    # A run id is new by construction: an append is enough, and one commit.
    with tables.commit_metadata(spark, summary.run_id):
        df.write.format("delta").mode("append").saveAsTable(qualified(db, SCORING_RUNS))


# ---------------------------------------------------------------------------------------- mlflow
def contact_sheet(
    spark: SparkSession,
    db: str,
    affected: DataFrame,
    input_version: int,
    max_pixels: int,
    limit: int,
    thumb: int = 160,
    remote: Mapping[str, Mapping[str, Any]] | None = None,
    roots: PhotoRoots | None = None,
    max_declared_pixels: int | None = None,
    max_bytes: int | None = None,
) -> bytes | None:
    """A PNG grid of the hero picks of up to ``limit`` recomputed listings, captioned; None if none.

    Photo uris are read only inside ``roots`` (a :class:`fleetvision.decode.PhotoRoots`; None: none),
    and only up to ``max_bytes`` (``scoring.max_image_bytes``), as the scoring job reads them.
    """
    from PIL import Image, ImageDraw

    from fleetvision import decode

    if limit < 1:
        return None
    heroes = (
        spark.table(qualified(db, HERO_IMAGES))
        .join(affected, "listing_id", "left_semi")
        .filter(F.col("hero_image_id").isNotNull())
        .orderBy("listing_id")
        .limit(limit)
        .select("listing_id", F.col("hero_image_id").alias("image_id"), "hero_reason")
    )
    images = W.read_version(spark, db, LISTING_IMAGES.name, input_version).select("image_id", "uri", "content")
    rows = heroes.join(images, "image_id").orderBy("listing_id").collect()
    if not rows:
        return None
    cols = min(4, len(rows))
    caption = 28
    sheet = Image.new("RGB", (cols * thumb, math.ceil(len(rows) / cols) * (thumb + caption)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, r in enumerate(rows):
        data = decode.photo_bytes(r["content"], r["uri"], max_bytes=max_bytes, remote=remote, roots=roots)
        jpeg = decode.make_thumbnail(data, thumb, max_pixels, max_declared_pixels=max_declared_pixels)
        x, y = (i % cols) * thumb, (i // cols) * (thumb + caption)
        if jpeg is not None:
            with Image.open(io.BytesIO(jpeg)) as im:
                sheet.paste(im.convert("RGB"), (x + (thumb - im.width) // 2, y + (thumb - im.height) // 2))
        draw.text((x + 2, y + thumb + 1), str(r["listing_id"])[:26], fill="black")
        draw.text((x + 2, y + thumb + 13), str(r["hero_reason"] or "")[:26], fill="grey")
    out = io.BytesIO()
    sheet.save(out, format="PNG")
    return out.getvalue()


def log_to_mlflow(
    spark: SparkSession, config: Config, summary: RunSummary, affected: DataFrame, input_version: int
) -> str | None:
    """Record the run in MLflow (params, metrics, summary JSON, contact sheet); None if MLflow failed.

    A tracking-server outage must not lose a night's scoring: the failure is logged and noted in the
    summary, and the run goes on to its ledger row.
    """
    try:
        import mlflow

        from fleetvision.tracking import configure_mlflow

        configure_mlflow(config)
        with mlflow.start_run(run_name=f"score-{summary.run_id}") as active:
            summary.mlflow_run_id = active.info.run_id
            mlflow.set_tags(
                {"fleetvision.job": "score", "fleetvision.run_id": summary.run_id, "status": summary.status}
            )
            params: dict[str, Any] = {
                "mode": summary.mode,
                "input_table_version": summary.input_table_version,
                "from_version": summary.from_version,
                "listings_table_version": summary.listings_table_version,
                "model_set_id": summary.model_set_id,
                "arrow_max_records_per_batch": config.spark.arrow_max_records_per_batch,
                "model_batch_size": config.scoring.batch_size,
                "input_size": config.models.input_size,
            }
            params.update({f"model_version.{k}": v for k, v in summary.model_versions.items()})
            mlflow.log_params(params)
            metrics: dict[str, float] = {
                **summary.counts(),
                "throughput_images_per_s": summary.throughput,
                "dq_passed": float(bool(summary.dq_passed)),
            }
            metrics.update({f"failed.{k}": v for k, v in summary.failed_by_code.items()})
            metrics.update({f"stage_seconds.{k}": v for k, v in summary.stage_seconds.items()})
            infer_s = summary.stage_seconds.get("infer", 0.0)
            if summary.photos_inferred and infer_s > 0:
                metrics["inference_photos_per_s"] = summary.photos_inferred / infer_s
            metrics.update({f"score.{k}": v for k, v in summary.score_stats.items()})
            mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "summary.json"
                path.write_text(json.dumps(summary.to_dict(), indent=2, sort_keys=True, default=str))
                mlflow.log_artifact(str(path))
                (Path(tmp) / "dq_report.json").write_text(summary.dq_report or "{}")
                mlflow.log_artifact(str(Path(tmp) / "dq_report.json"))
                png = contact_sheet(
                    spark,
                    config.tables.database,
                    affected,
                    input_version,
                    config.scoring.max_image_pixels,
                    config.scoring.report_hero_samples,
                    remote=config.paths.remote_options,
                    roots=PhotoRoots(config.paths.photo_root_locations()),
                    max_declared_pixels=config.scoring.max_declared_pixels,
                    max_bytes=config.scoring.max_image_bytes,
                )
                if png is not None:
                    (Path(tmp) / "hero_contact_sheet.png").write_bytes(png)
                    mlflow.log_artifact(str(Path(tmp) / "hero_contact_sheet.png"))
            return summary.mlflow_run_id
    except Exception as e:  # MLflow is a record, not a dependency of the outputs
        logger.warning("MLflow logging failed for run %s: %s", summary.run_id, e, exc_info=True)
        note = f"MLflow logging failed: {type(e).__name__}: {e}"[:300]
        summary.message = f"{summary.message}; {note}" if summary.message else note
        return None
