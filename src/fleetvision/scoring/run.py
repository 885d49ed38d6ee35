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

This module is the orchestration only: each stage is a function that returns what it made, and the
run's :class:`~fleetvision.scoring.summary.RunSummary` is built once from those values. The stages live
in :mod:`.image_stages` (hash, infer, cache, tags), :mod:`.listing_stage` (completeness and hero rows) and
:mod:`.dq_stage` (checks); the staging area in :mod:`.staging`, the stage clock in :mod:`.stopwatch`, the
fault injection in :mod:`.faults`, the ledger row in :mod:`.ledger` and the MLflow record in
:mod:`.mlflow_record`. Every Delta write goes through :mod:`fleetvision.tables`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pyspark.sql import SparkSession

from fleetvision import tables
from fleetvision.scoring import ScoringRules, image_stages
from fleetvision.scoring import work as W
from fleetvision.scoring.dq_stage import check_run
from fleetvision.scoring.faults import FAIL_POINTS, InjectedFailureError, fail_point
from fleetvision.scoring.image_stages import model_versions
from fleetvision.scoring.lease import HeldLease, acquire_lease
from fleetvision.scoring.ledger import write_ledger
from fleetvision.scoring.listing_stage import (
    LISTING_RESULT_SCHEMA,
    listing_result_fn,
    listing_results_fn,
    recompute_listings,
)
from fleetvision.scoring.mlflow_record import MlflowRecord, log_to_mlflow
from fleetvision.scoring.one_pass import use_one_pass
from fleetvision.scoring.staging import Staging
from fleetvision.scoring.stopwatch import Stopwatch
from fleetvision.scoring.summary import (
    STATUS_FAILED_DQ,
    STATUS_SUCCEEDED,
    RunSummary,
    new_run_id,
)
from fleetvision.scoring.tags import prediction_cache_key
from fleetvision.scoring.udf import ModelLoader, UdfSettings
from fleetvision.spark import job_placement
from fleetvision.tables import (
    HERO_IMAGES,
    IMAGE_TAGS,
    LISTING_COMPLETENESS,
    LISTING_IMAGES,
    LISTINGS,
    PREDICTION_CACHE,
    SCORING_RUNS,
)
from fleetvision.taxonomy import Taxonomy, load_taxonomy

if TYPE_CHECKING:
    from fleetvision.config import Config

logger = logging.getLogger(__name__)

__all__ = [
    "FAIL_POINTS",
    "LISTING_RESULT_SCHEMA",
    "STATUS_FAILED_DQ",
    "STATUS_SUCCEEDED",
    "InjectedFailureError",
    "RunOptions",
    "RunSummary",
    "listing_result_fn",
    "listing_results_fn",
    "model_versions",
    "new_run_id",
    "run_scoring",
]


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
    clock = Stopwatch(lease)
    with clock.stage("resolve_models"):
        model_set = options.model_set
        if model_set is None:
            from fleetvision.models.resolve import resolve_model_set

            model_set = resolve_model_set(config)
        model_set_id = str(model_set.model_set_id)
        versions = model_versions(model_set)
    logger.info("scoring run %s (%s) with model set %s", run_id, options.mode, model_set_id)

    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(config.spark.arrow_max_records_per_batch))
    staging = Staging(spark, db, run_id)
    settings = UdfSettings.from_config(config, environ)
    partitioning = image_stages.Partitioning(
        config.spark.arrow_max_records_per_batch, spark.sparkContext.defaultParallelism
    )

    # 1. select the work, and pin what the run will change before anything is merged.
    with clock.stage("select"):
        watermark = W.last_watermark(spark, db)
        selection = W.select_work(spark, db, options.mode, watermark)  # type: ignore[arg-type]
        # Both read pinned table versions: the same ids however often they are evaluated.
        deleted = selection.deleted_image_ids
        affected = selection.affected_listing_ids.distinct()
        # An upper bound for partitioning; the exact count comes from the staged hashes.
        images_estimate = selection.images.count()

    # cached tags are market names, with the mirror image's answers and the plate-position flank cue applied
    cache_key = prediction_cache_key(
        model_set_id, rules.driver_side, rules.flank_cue, rules.flank_symmetry, rules.plate_symmetry
    )
    one_pass = use_one_pass(config.scoring.one_pass, lambda: image_stages.cache_has_model_set(spark, db, cache_key))
    if one_pass:
        # 2+3. nothing in the cache for this model set: read, hash and score each photo in one pass.
        with clock.stage("infer"):
            hashed, predicted = image_stages.hash_and_infer_photos(
                staging,
                selection.images,
                model_set,
                settings,
                taxonomy,
                rules,
                options.loader,
                partitioning.partitions(images_estimate),
            )
            images_in, photos_read, photos_inferred = image_stages.one_pass_counts(hashed)
            logger.info("one pass (the cache holds nothing for %s): %d photos read, hashed and scored, %d distinct",
                        cache_key, photos_read, photos_inferred)
    else:
        # 2. hash every selected photo's bytes on the executors.
        with clock.stage("hash"):
            hashed = image_stages.hash_photos(
                staging, selection.images, settings, partitioning.partitions(images_estimate)
            )
            images_in = hashed.count()

        # 3. infer one photo per content hash the cache lacks; every model on the same decoded batch.
        with clock.stage("infer"):
            # up to BROADCAST_IDS_MAX photos the chosen ids are broadcast: the bytes are never shuffled
            small = images_in <= W.BROADCAST_IDS_MAX
            todo = image_stages.photos_to_infer(spark, db, hashed, cache_key, broadcast_ids=small)
            photos_inferred = todo.count()
            predicted = image_stages.infer_photos(
                staging,
                todo,
                photos_inferred,
                model_set,
                settings,
                taxonomy,
                rules,
                options.loader,
                None if small else partitioning.partitions(photos_inferred),
            )

    versions_col = image_stages.versions_column(versions)
    # 4. MERGE the new predictions into the cache, then the tags of every selected photo.
    with clock.stage("merge_tags"):
        if predicted is not None:
            image_stages.merge_predictions(spark, db, predicted, cache_key, versions_col, started_at, run_id)
        fail_point("after_cache_merge", environ)
        staged_tags = image_stages.stage_tags(
            spark, db, staging, hashed, predicted, cache_key, model_set_id, versions_col, started_at, run_id
        )
        counts = image_stages.count_tags(staged_tags, images_in, model_set_id)
        images_deleted = image_stages.merge_tags(spark, db, staged_tags, deleted, run_id)
        fail_point("after_tags_merge", environ)

    # 5. recompute the affected listings with the pure completeness and hero functions.
    with clock.stage("listings"):
        listings = recompute_listings(
            spark, db, affected, selection.listings_version, taxonomy, rules, run_id, started_at, staging
        )
        fail_point("after_listings_merge", environ)

    # 6. data-quality checks, against the previous successful run.
    with clock.stage("checks"):
        quality = check_run(spark, db, staged_tags, affected, images_in, counts, watermark, rules)
    dq_passed = bool(quality.result.passed)
    stage_seconds = clock.stage_seconds

    # 7. MLflow, then the ledger row, last.
    summary = RunSummary(
        run_id=run_id,
        mode=selection.mode,
        status=STATUS_SUCCEEDED if dq_passed else STATUS_FAILED_DQ,
        started_at=started_at,
        finished_at=datetime.now(UTC).replace(tzinfo=None),
        input_table_version=selection.input_version,
        from_version=selection.from_version,
        listings_table_version=selection.listings_version,
        model_set_id=model_set_id,
        model_versions=versions,
        images_in=images_in,
        images_scored=counts.images_scored,
        images_cached=counts.images_cached,
        images_failed=counts.images_failed,
        images_deleted=images_deleted,
        photos_inferred=photos_inferred,
        failed_by_code=counts.failed_by_code,
        listings_updated=listings.listings_updated,
        listings_removed=listings.listings_removed,
        stage_seconds=stage_seconds,
        score_stats=quality.score_stats,
        angle_counts=quality.angle_counts,
        dq_passed=dq_passed,
        dq_breached=list(quality.result.breached),
        dq_report=quality.result.to_json(stage_seconds=stage_seconds),
        message=_run_message(dq_passed, selection.anomalies.note()),
        placement=job_placement(spark),
    )
    if options.log_to_mlflow:
        summary = _with_mlflow_record(summary, log_to_mlflow(spark, config, summary, affected, selection.input_version))
    fail_point("before_ledger", environ)
    lease.renew(force=True)  # only the lease's holder moves the watermark
    write_ledger(spark, db, summary)
    staging.remove()
    logger.info("scoring run %s finished: %s", run_id, summary.status)
    return summary


def _run_message(dq_passed: bool, input_note: str | None) -> str | None:
    """The run's message: a data-quality breach first, then the input rows it resolved (work.py's rules)."""
    parts = [] if dq_passed else ["data-quality checks breached; the watermark was not moved"]
    if input_note:
        parts.append(input_note)
    return "; ".join(parts) or None


def _with_mlflow_record(summary: RunSummary, record: MlflowRecord) -> RunSummary:
    """``summary`` with its MLflow run id, and the note of an MLflow failure appended to its message."""
    message = summary.message
    if record.note:
        message = f"{message}; {record.note}" if message else record.note
    return replace(summary, mlflow_run_id=record.run_id, message=message)
