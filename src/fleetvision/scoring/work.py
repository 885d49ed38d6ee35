"""Work selection for the scoring job: which photos to tag and which listings to recompute.

* ``full``: every image in ``listing_images`` (at one pinned table version) is tagged; tags of images no
  longer there are removed; every listing is recomputed.
* ``incremental``: the change data feed of ``listing_images`` from the version after the last
  successful run's watermark up to the pinned version. Images inserted or updated are tagged again
  (their latest row, read at the pinned version); images deleted lose their tags. Listings touched by
  any change (before and after images, so a photo moved between listings touches both) and listings
  whose own row changed in ``listings`` since the last run are recomputed.

Both modes then hash every selected photo's bytes on the executors and send to the models only one
photo per content hash that the prediction cache does not already hold for the run's model set.

Listing status: tags are facts about photos, so every image in ``listing_images`` is tagged whatever its
listing's status. Completeness and hero rows exist only for ``active`` listings: a listing that is
sold or withdrawn loses them (ranking and search have no use for them), and gets them back if it is
re-activated.

Rows the input contract does not expect (counted in :class:`InputAnomalies`, logged with their ids):

* Several rows with one ``image_id`` (the key): the row with the latest ``updated_at`` is the image
  (null ``updated_at`` counts as oldest; ties go to the smallest ``listing_id``, ``position``, ``uri``,
  then ``content``, so every run picks the same row); the others are superseded, never read or tagged.
* An image whose ``listing_id`` is not in ``listings``: tagged like any other; its listing has no
  status, so it gets no completeness or hero row until it appears in ``listings`` as active (that
  listing change makes the next incremental run compute it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from fleetvision.delta_writes import table_version
from fleetvision.tables import (
    HERO_IMAGES,
    IMAGE_TAGS,
    LISTING_COMPLETENESS,
    LISTING_IMAGES,
    LISTINGS,
    SCORING_RUNS,
    TABLES_BY_NAME,
    qualified,
)

logger = logging.getLogger(__name__)

Mode = Literal["full", "incremental"]
MODES: tuple[str, ...] = ("full", "incremental")
ACTIVE_STATUS = "active"
WORK_COLUMNS = ("image_id", "listing_id", "position", "uri", "content")
_LISTING_FIELDS = ("status", "seller_type", "body_type")
ANOMALY_SAMPLE = 20
"""How many duplicated image ids and unknown listing ids a run names (the counts are complete)."""


@dataclass(frozen=True)
class Watermark:
    """The last successful run: where the next incremental run starts.

    Attributes:
        run_id: That run's id.
        input_table_version: The ``listing_images`` version it consumed.
        listings_table_version: The ``listings`` version it read (None for ledgers written before it
            was recorded: then every listing counts as changed).
    """

    run_id: str
    input_table_version: int
    listings_table_version: int | None


@dataclass(frozen=True)
class InputAnomalies:
    """Selected ``listing_images`` rows that the input contract does not expect (module docstring: the rules).

    Every input row is accounted for: the selected rows are the images tagged (one each) plus
    ``superseded_rows``; ``orphan_images`` of those images are tagged but belong to no known listing.

    Attributes:
        superseded_rows: Rows not used because another row of the same ``image_id`` is newer.
        duplicate_image_ids: Up to :data:`ANOMALY_SAMPLE` of the image ids that had several rows, sorted.
        orphan_images: Selected images whose ``listing_id`` is not in ``listings``.
        orphan_listing_ids: Up to :data:`ANOMALY_SAMPLE` of those listing ids, sorted.
    """

    superseded_rows: int = 0
    duplicate_image_ids: tuple[str, ...] = ()
    orphan_images: int = 0
    orphan_listing_ids: tuple[str, ...] = ()

    def note(self) -> str | None:
        """One line for the run's message and log, naming the ids; None when there is nothing to say."""
        parts = []
        if self.superseded_rows:
            parts.append(
                f"{self.superseded_rows} duplicate listing_images row(s) superseded by a newer row of the same "
                f"image_id (latest updated_at wins): {', '.join(self.duplicate_image_ids)}"
            )
        if self.orphan_images:
            parts.append(
                f"{self.orphan_images} image(s) of listings missing from listings, tagged without completeness: "
                f"{', '.join(self.orphan_listing_ids)}"
            )
        return "; ".join(parts) or None


@dataclass(frozen=True)
class WorkSelection:
    """What one run does.

    Attributes:
        mode: The mode actually run (``incremental`` without a watermark runs ``full``).
        input_version: The ``listing_images`` version read (pinned for the whole run).
        from_version: First change-feed version read (incremental only).
        listings_version: The ``listings`` version read.
        images: ``WORK_COLUMNS`` of the photos to tag.
        deleted_image_ids: ``image_id`` of tag rows to remove.
        affected_listing_ids: ``listing_id`` of listings to recompute (or to drop if no longer active).
        anomalies: Superseded duplicate rows and images of unknown listings among the selected images.
    """

    mode: Mode
    input_version: int
    from_version: int | None
    listings_version: int
    images: DataFrame
    deleted_image_ids: DataFrame
    affected_listing_ids: DataFrame
    anomalies: InputAnomalies = field(default_factory=InputAnomalies)


def last_watermark(spark: SparkSession, database: str) -> Watermark | None:
    """The newest ``succeeded`` row of ``scoring_runs``, or None when there is none."""
    row = (
        spark.table(qualified(database, SCORING_RUNS))
        .filter(F.col("status") == "succeeded")
        .orderBy(F.col("finished_at").desc(), F.col("input_table_version").desc())
        .select("run_id", "input_table_version", "listings_table_version")
        .first()
    )
    if row is None or row["input_table_version"] is None:
        return None
    lv = row["listings_table_version"]
    return Watermark(row["run_id"], int(row["input_table_version"]), int(lv) if lv is not None else None)


def read_version(spark: SparkSession, database: str, table: str, version: int) -> DataFrame:
    """A Delta table by name as of a version (time travel), so a run reads one consistent snapshot."""
    return spark.sql(f"SELECT * FROM {qualified(database, table)} VERSION AS OF {int(version)}")


def pinned(spark: SparkSession, database: str, table: str) -> DataFrame:
    """A Delta table by name at its current version, pinned (later commits are not seen)."""
    return read_version(spark, database, table, table_version(spark, database, TABLES_BY_NAME[table]))


def _listing_changes(spark: SparkSession, database: str, old_version: int | None, new_version: int) -> DataFrame:
    """``listing_id`` of listings added, removed or changed in status/seller type/body type."""
    now = read_version(spark, database, LISTINGS.name, new_version).select("listing_id", *_LISTING_FIELDS)
    if old_version is None:
        return now.select("listing_id")
    if old_version == new_version:
        return now.select("listing_id").limit(0)
    before = read_version(spark, database, LISTINGS.name, old_version).select("listing_id", *_LISTING_FIELDS)
    # Symmetric difference of the rows: added, removed, or any watched field changed (nulls compare equal).
    return before.exceptAll(now).select("listing_id").union(now.exceptAll(before).select("listing_id")).distinct()


def select_work(spark: SparkSession, database: str, mode: Mode, watermark: Watermark | None) -> WorkSelection:
    """Decide the photos to tag, the tags to remove and the listings to recompute.

    Args:
        spark: The session.
        database: Where the tables are.
        mode: ``full`` or ``incremental``.
        watermark: The last successful run (:func:`last_watermark`); ``incremental`` without one runs
            ``full``.

    Raises:
        ValueError: ``mode`` is unknown, or the watermark is ahead of ``listing_images`` (the table was
            replaced: rerun with ``--mode full``).
    """
    if mode not in MODES:
        raise ValueError(f"scoring mode must be one of {MODES}, got {mode!r}")
    input_version = table_version(spark, database, LISTING_IMAGES)
    listings_version = table_version(spark, database, LISTINGS)
    # With its updated_at: several rows of one image_id are resolved by it (select_images).
    snapshot = read_version(spark, database, LISTING_IMAGES.name, input_version).select(*WORK_COLUMNS, "updated_at")
    listings = read_version(spark, database, LISTINGS.name, listings_version).select("listing_id")
    # Every table is read at a pinned version, so the selection stays the same however often Spark
    # evaluates it, even after this run has merged into the output tables.
    tags = pinned(spark, database, IMAGE_TAGS.name).select("image_id", "listing_id")

    if mode == "incremental" and watermark is None:
        logger.warning("incremental run without a successful previous run: running full")
        mode = "full"
    if mode == "full":
        # Every listing anything knows of: recomputed if active, its rows removed otherwise.
        listing_ids = (
            listings.union(snapshot.select("listing_id"))
            .union(tags.select("listing_id"))
            .union(pinned(spark, database, LISTING_COMPLETENESS.name).select("listing_id"))
            .union(pinned(spark, database, HERO_IMAGES.name).select("listing_id"))
            .distinct()
        )
        images, anomalies = select_images(snapshot, listings)
        return WorkSelection(
            mode="full",
            input_version=input_version,
            from_version=None,
            listings_version=listings_version,
            images=images,
            deleted_image_ids=tags.select("image_id").join(snapshot.select("image_id"), "image_id", "left_anti"),
            affected_listing_ids=listing_ids,
            anomalies=anomalies,
        )

    assert watermark is not None  # narrowed above: incremental with no watermark became full
    if watermark.input_table_version > input_version:
        raise ValueError(
            f"the watermark (listing_images version {watermark.input_table_version}, run {watermark.run_id}) is "
            f"ahead of the table (version {input_version}): the table was replaced; rerun with --mode full"
        )
    from_version = watermark.input_table_version + 1
    listing_changes = _listing_changes(spark, database, watermark.listings_table_version, listings_version)
    if from_version > input_version:
        empty_ids = snapshot.select("image_id").limit(0)
        return WorkSelection(
            mode="incremental",
            input_version=input_version,
            from_version=from_version,
            listings_version=listings_version,
            images=snapshot.select(*WORK_COLUMNS).limit(0),
            deleted_image_ids=empty_ids,
            affected_listing_ids=listing_changes,
        )
    changes = (
        spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", from_version)
        .option("endingVersion", input_version)
        .table(qualified(database, LISTING_IMAGES))
        .select("image_id", "listing_id", "_change_type")
    )
    changed_ids = changes.select("image_id").distinct()
    # The change feed says *that* an image changed; its current row (or absence) says what to do.
    images, anomalies = select_images(snapshot.join(changed_ids, "image_id", "left_semi"), listings)
    deleted = changed_ids.join(snapshot.select("image_id"), "image_id", "left_anti")
    # The listings the changed images were tagged under too: a row appended for an existing image_id
    # (a duplicate that wins) may move it to another listing without an update in the change feed.
    moved_from = tags.join(changed_ids, "image_id", "left_semi").select("listing_id")
    affected = changes.select("listing_id").union(listing_changes).union(moved_from).distinct()
    return WorkSelection(
        mode="incremental",
        input_version=input_version,
        from_version=from_version,
        listings_version=listings_version,
        images=images,
        deleted_image_ids=deleted,
        affected_listing_ids=affected,
        anomalies=anomalies,
    )


def latest_image_rows(rows: DataFrame) -> DataFrame:
    """One row per ``image_id``: the one with the latest ``updated_at`` (the module docstring's rule).

    Null ``updated_at`` counts as oldest; ties go to the smallest ``listing_id``, ``position``, ``uri``,
    then ``content``, so the same row wins however often it is evaluated. Every row is shuffled with its
    bytes by ``image_id``: :func:`select_images` calls it only when there are duplicates.

    Args:
        rows: ``WORK_COLUMNS`` and ``updated_at``.

    Returns:
        ``WORK_COLUMNS``.
    """
    newest_first = Window.partitionBy("image_id").orderBy(
        F.col("updated_at").desc_nulls_last(),
        F.col("listing_id").asc_nulls_last(),
        F.col("position").asc_nulls_last(),
        F.col("uri").asc_nulls_last(),
        F.col("content").asc_nulls_last(),
    )
    ranked = rows.withColumn("_rank", F.row_number().over(newest_first))
    return ranked.filter(F.col("_rank") == 1).select(*WORK_COLUMNS)


def select_images(
    rows: DataFrame, listings: DataFrame, sample: int = ANOMALY_SAMPLE
) -> tuple[DataFrame, InputAnomalies]:
    """The images to tag from the selected ``listing_images`` rows, and what was unexpected in them.

    One small Spark job on the id columns counts both kinds (the bytes are not read); naming the ids
    and resolving duplicates (:func:`latest_image_rows`) cost more only when there are some. Without
    duplicates the rows are used as they are.

    Args:
        rows: The selected rows, ``WORK_COLUMNS`` and ``updated_at`` (several per image_id possible).
        listings: ``listing_id`` of the ``listings`` table at the run's version.
        sample: How many ids to name in the anomalies.

    Returns:
        ``WORK_COLUMNS``, one row per image_id, and the :class:`InputAnomalies` (logged as a warning).
    """
    known = listings.select("listing_id").distinct().withColumn("_known", F.lit(1))
    # A null listing_id never matches, so it counts as unknown too.
    ids = rows.select("image_id", "listing_id").join(known, "listing_id", "left")
    per_image = ids.groupBy("image_id").agg(
        F.count(F.lit(1)).alias("rows"), F.min(F.coalesce(F.col("_known"), F.lit(0))).alias("known")
    )
    totals = per_image.agg(
        F.sum(F.col("rows") - 1).alias("superseded"), F.sum(1 - F.col("known")).alias("unknown")
    ).first()
    superseded = int(totals["superseded"] or 0) if totals else 0
    n_orphans = int(totals["unknown"] or 0) if totals else 0
    duplicate_ids: tuple[str, ...] = ()
    images = rows.select(*WORK_COLUMNS)
    if superseded:
        repeated = per_image.filter(F.col("rows") > 1).select("image_id").orderBy("image_id").limit(sample)
        duplicate_ids = tuple(r["image_id"] for r in repeated.collect())
        images = latest_image_rows(rows)
        # the winning row decides the image's listing
        n_orphans = images.select("listing_id").join(known, "listing_id", "left_anti").count()
    orphan_ids: tuple[str, ...] = ()
    if n_orphans:
        orphans = images.select("listing_id").join(known, "listing_id", "left_anti").distinct()
        orphan_ids = tuple(str(r["listing_id"]) for r in orphans.orderBy("listing_id").limit(sample).collect())
    anomalies = InputAnomalies(superseded, duplicate_ids, n_orphans, orphan_ids)
    if anomalies.note():
        logger.warning("listing_images: %s", anomalies.note())
    return images, anomalies


BROADCAST_IDS_MAX = 500_000
"""Most photos whose ``(content_hash, image_id)`` pairs are broadcast to pick the photos to infer
(~150 bytes a pair in Spark's rows: ~75 MB at the limit, well inside a driver's memory)."""


def photos_to_infer(hashed: DataFrame, cache: DataFrame, model_set_id: str, *, broadcast_ids: bool = False
                    ) -> DataFrame:
    """One photo per content hash that the prediction cache lacks for ``model_set_id``.

    The representatives are chosen from ``(content_hash, image_id)`` pairs alone; the bytes meet them
    only in the final join. With ``broadcast_ids`` that join broadcasts the pairs, so the photos' bytes
    are never shuffled and keep the staged table's partitioning; use it while the selection is at most
    :data:`BROADCAST_IDS_MAX` photos.

    Args:
        hashed: Selected photos with ``image_id``, ``content_hash`` (null when the bytes were unreadable)
            and ``photo_bytes``, the bytes that were hashed.
        cache: The ``prediction_cache`` table.
        model_set_id: The run's model set.
        broadcast_ids: Broadcast the chosen pairs instead of shuffling the bytes to them.

    Returns:
        ``content_hash, image_id, uri, content``: the representative photo (lowest image_id) of each new
        hash; ``content`` is the bytes that were hashed, so ``uri`` is null (the photo is not read again).
    """
    known = cache.filter(F.col("model_set_id") == F.lit(model_set_id)).select("content_hash")
    readable = hashed.filter(F.col("content_hash").isNotNull())
    representatives = (
        readable.select("content_hash", "image_id")
        .join(known, "content_hash", "left_anti")
        .groupBy("content_hash")
        .agg(F.min("image_id").alias("image_id"))
    )
    chosen = F.broadcast(representatives) if broadcast_ids else representatives
    return readable.select("image_id", "photo_bytes").join(chosen, "image_id").select(
        "content_hash", "image_id", F.lit(None).cast("string").alias("uri"), F.col("photo_bytes").alias("content")
    )


def one_per_hash(scored: DataFrame) -> DataFrame:
    """The row of the lowest ``image_id`` of each content hash (rows with a null hash dropped).

    For a one-pass run (:mod:`fleetvision.scoring.one_pass`), which scores every copy of a photo: the
    prediction cache takes one row per hash, the same one whatever the partitioning.
    """
    readable = scored.filter(F.col("content_hash").isNotNull())
    first = readable.groupBy("content_hash").agg(F.min("image_id").alias("image_id"))
    return readable.join(first, ["content_hash", "image_id"])


def is_active(status: Column) -> Column:
    """The condition for a listing that keeps completeness and hero rows."""
    return F.coalesce(status == F.lit(ACTIVE_STATUS), F.lit(False))


def cache_rows(cache: DataFrame, model_set_id: str) -> DataFrame:
    """The prediction cache of one model set."""
    return cache.filter(F.col("model_set_id") == F.lit(model_set_id))
