"""The image-level stages of a scoring run: hash the selected photos, infer what the cache lacks, tag them.

Each stage is a function of its inputs that returns what it made (a staged DataFrame, a count, a
:class:`TagCounts`); :func:`fleetvision.scoring.run.run_scoring` calls them in order. The order makes
reruns idempotent: new predictions are MERGEd into ``prediction_cache`` (by content hash and model set)
before the tags of every selected photo are built from the cache and MERGEd into ``image_tags`` (by
image_id), so a run killed in between finds its predictions in the cache the next time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from fleetvision import delta_writes
from fleetvision.scoring import work as W
from fleetvision.scoring.one_pass import HASH_COLUMNS, make_one_pass_udf
from fleetvision.scoring.udf import PREDICTION_SCHEMA, ModelLoader, UdfSettings, make_hash_udf, make_scoring_udf
from fleetvision.tables import IMAGE_TAGS, PREDICTION_CACHE, qualified

if TYPE_CHECKING:
    from fleetvision.scoring import ScoringRules
    from fleetvision.scoring.staging import Staging
    from fleetvision.taxonomy import Taxonomy


@dataclass(frozen=True)
class Partitioning:
    """How many partitions a stage's rows get: about ``per_partition`` rows each, at least ``parallelism``."""

    per_partition: int
    parallelism: int

    def partitions(self, rows: int) -> int:
        """The partition count for ``rows`` rows (1 to 4096)."""
        return max(1, min(max(self.parallelism, math.ceil(rows / max(self.per_partition, 1))), 4096))


@dataclass(frozen=True)
class TagCounts:
    """What became of the selected photos: every one is in exactly one of scored, cached or failed.

    Attributes:
        images_scored: Photos whose predictions this run inferred (every photo sharing their bytes included).
        images_cached: Photos answered by predictions an earlier run left in the prediction cache.
        images_failed: Photos with an error code.
        failed_by_code: ``error_code -> photos``, sorted by code.
    """

    images_scored: int
    images_cached: int
    images_failed: int
    failed_by_code: dict[str, int]


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


def versions_column(versions: Mapping[str, str]) -> Column:
    """The ``model_versions`` map column (``task -> version``, sorted by task)."""
    return F.create_map(*[F.lit(x) for kv in sorted(versions.items()) for x in kv])


def hash_photos(staging: Staging, images: DataFrame, settings: UdfSettings, partitions: int) -> DataFrame:
    """Read and hash every selected photo's bytes on the executors, once.

    Returns:
        The staged ``image_id, listing_id, position`` and :data:`fleetvision.scoring.udf.HASH_SCHEMA`
        columns (``content_hash`` null when unreadable), the bytes among them: inference decodes the
        staged bytes, never the uri again. Later stages that read only the other columns do not read
        the bytes (Parquet reads the columns asked for).
    """
    hash_udf = make_hash_udf(settings.max_bytes, settings.remote_options, settings.photo_roots)
    # Uncompressed: snappy gains nothing on JPEG/PNG/WebP bytes (3.3 against 3.4 GB for the 10k peers
    # photos) and costs time on both sides: writing the staged hashes 14.3 -> 13.6 s, reading them back
    # 4.8 -> 3.2 s (docs/runbook.md, *Where a run's fixed cost goes*).
    return staging.write(
        "hashes",
        images.repartition(partitions)
        .select("image_id", "listing_id", "position", hash_udf("uri", "content").alias("h"))
        .select("image_id", "listing_id", "position", "h.*"),
        compression="uncompressed",
    )


def photos_to_infer(spark: SparkSession, database: str, hashed: DataFrame, cache_key: str, *, broadcast_ids: bool
                    ) -> DataFrame:
    """One photo per content hash that the (pinned) prediction cache lacks for ``cache_key``, with its bytes
    (``broadcast_ids``: see :func:`fleetvision.scoring.work.photos_to_infer`)."""
    cache_table = W.pinned(spark, database, PREDICTION_CACHE.name)
    return W.photos_to_infer(hashed, cache_table, cache_key, broadcast_ids=broadcast_ids)


def infer_photos(
    staging: Staging,
    todo: DataFrame,
    n_photos: int,
    model_set: Any,
    settings: UdfSettings,
    taxonomy: Taxonomy,
    rules: ScoringRules,
    loader: ModelLoader | None,
    partitions: int | None,
) -> DataFrame | None:
    """Run every model on the photos of ``todo`` (one per content hash), on one decoded batch.

    Args:
        partitions: Spread ``todo`` over this many partitions first; None keeps its partitioning (its
            bytes are not shuffled: the staged hashes' files already hold about a batch's rows each).

    Returns:
        The staged ``content_hash`` + :data:`fleetvision.scoring.udf.PREDICTION_SCHEMA` rows; None when
        ``n_photos`` is 0 (nothing to infer).
    """
    if not n_photos:
        return None
    score_udf = make_scoring_udf(model_set, settings, taxonomy, rules, loader)
    spread = todo if partitions is None else todo.repartition(partitions)
    return staging.write(
        "predictions",
        spread.select("content_hash", score_udf("uri", "content").alias("p"))
        .select("content_hash", "p.*"),
    )


def cache_has_model_set(spark: SparkSession, database: str, cache_key: str) -> bool:
    """Whether the (pinned) prediction cache holds any prediction for ``cache_key``."""
    cache_table = W.pinned(spark, database, PREDICTION_CACHE.name)
    return bool(W.cache_rows(cache_table, cache_key).limit(1).count())


def hash_and_infer_photos(
    staging: Staging,
    images: DataFrame,
    model_set: Any,
    settings: UdfSettings,
    taxonomy: Taxonomy,
    rules: ScoringRules,
    loader: ModelLoader | None,
    partitions: int,
) -> tuple[DataFrame, DataFrame]:
    """Read, hash and score every selected photo in one pass (:mod:`fleetvision.scoring.one_pass`).

    For a run whose prediction cache holds nothing for its model set: the bytes are read once, hashed and
    decoded in the same worker, and never staged.

    Returns:
        ``(hashed, predicted)``: the staged ``image_id, listing_id, position`` and hash columns of every
        selected photo (as :func:`hash_photos` stages them, without the bytes), and one prediction row
        per content hash (``content_hash`` + :data:`PREDICTION_SCHEMA`, the lowest ``image_id``'s).
    """
    score_udf = make_one_pass_udf(model_set, settings, taxonomy, rules, loader)
    scored = staging.write(
        "scored",
        images.repartition(partitions)
        .select("image_id", "listing_id", "position", score_udf("uri", "content").alias("p"))
        .select("image_id", "listing_id", "position", "p.*"),
    )
    hashed = scored.select("image_id", "listing_id", "position", *HASH_COLUMNS)
    predicted = W.one_per_hash(scored).select("content_hash", *[f.name for f in PREDICTION_SCHEMA.fields])
    return hashed, predicted


def one_pass_counts(hashed: DataFrame) -> tuple[int, int, int]:
    """``(photos, photos read and scored, distinct content hashes)`` of a one-pass run's staged hashes."""
    row = hashed.agg(
        F.count(F.lit(1)).alias("n"), F.count("content_hash").alias("read"), F.countDistinct("content_hash").alias("d")
    ).first()
    return (int(row["n"]), int(row["read"]), int(row["d"])) if row is not None else (0, 0, 0)


def merge_predictions(
    spark: SparkSession,
    database: str,
    predicted: DataFrame,
    cache_key: str,
    versions: Column,
    created_at: datetime,
    run_id: str,
) -> None:
    """Insert the new predictions into ``prediction_cache`` (a hash the cache already holds is left alone)."""
    rows = (
        predicted.withColumn("model_set_id", F.lit(cache_key))
        .withColumn("model_versions", versions)
        .withColumn("created_at", F.lit(created_at))
        .withColumn("run_id", F.lit(run_id))
    )
    delta_writes.insert_new(spark, database, PREDICTION_CACHE, rows, run_id)


def stage_tags(
    spark: SparkSession,
    database: str,
    staging: Staging,
    hashed: DataFrame,
    predicted: DataFrame | None,
    cache_key: str,
    model_set_id: str,
    versions: Column,
    scored_at: datetime,
    run_id: str,
) -> DataFrame:
    """Stage the ``image_tags`` rows of the selected photos, from the prediction cache as merged now."""
    cache_now = W.cache_rows(spark.table(qualified(database, PREDICTION_CACHE)), cache_key)
    return staging.write("tags", tag_rows(hashed, cache_now, predicted, model_set_id, versions, scored_at, run_id))


def tag_rows(
    hashed: DataFrame,
    cache: DataFrame,
    predicted: DataFrame | None,
    model_set_id: str,
    versions: Column,
    scored_at: datetime,
    run_id: str,
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
        F.lit(model_set_id).alias("model_set_id"),
        versions.alias("model_versions"),
        F.lit(scored_at).alias("scored_at"),
        F.lit(run_id).alias("run_id"),
        F.coalesce(F.col("_inferred"), F.lit(False)).alias("_inferred"),
    )


def count_tags(staged_tags: DataFrame, images_in: int, model_set_id: str) -> TagCounts:
    """The image counts; every selected photo must have a decode status (else the run is broken).

    Raises:
        RuntimeError: A photo has no prediction in the cache, or the tag rows do not add up to ``images_in``.
    """
    counts = staged_tags.groupBy("decode_status", "error_code", "_inferred").count().collect()
    missing = sum(r["count"] for r in counts if r["decode_status"] is None)
    if missing:
        raise RuntimeError(
            f"{missing} photo(s) have a content hash but no prediction in prediction_cache for model set "
            f"{model_set_id}: the cache MERGE did not land"
        )
    scored = sum(r["count"] for r in counts if r["decode_status"] == "ok" and r["_inferred"])
    cached = sum(r["count"] for r in counts if r["decode_status"] == "ok" and not r["_inferred"])
    failed: dict[str, int] = {}
    for r in counts:
        if r["decode_status"] != "ok":
            failed[r["error_code"] or "unknown"] = failed.get(r["error_code"] or "unknown", 0) + r["count"]
    result = TagCounts(scored, cached, sum(failed.values()), dict(sorted(failed.items())))
    tagged = result.images_scored + result.images_cached + result.images_failed
    if tagged != images_in:
        raise RuntimeError(f"{images_in} photos selected but {tagged} tag rows staged")
    return result


def merge_tags(spark: SparkSession, database: str, staged_tags: DataFrame, deleted: DataFrame, run_id: str) -> int:
    """MERGE the staged tags into ``image_tags`` and remove the tags of deleted images, in one commit.

    Returns:
        The number of tag rows removed.
    """
    return delta_writes.upsert_and_delete(spark, database, IMAGE_TAGS, staged_tags, deleted, run_id=run_id)
