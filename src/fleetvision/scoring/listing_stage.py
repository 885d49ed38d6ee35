"""The listing-level stage of a scoring run: recompute completeness and hero rows of the affected listings.

Spark only groups and merges here (the two MERGEs side by side): each listing's tags go through the pure core
(:func:`fleetvision.scoring.completeness.completeness`, :func:`fleetvision.scoring.hero.hero_row`, on photos
prepared once by :func:`fleetvision.scoring.listing_photos.listing_photos`) in one ``mapInPandas`` over rows
sorted by listing (:func:`listing_results_fn`). Completeness and hero rows exist only for active listings: an
affected listing that is no longer active loses them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fleetvision import delta_writes
from fleetvision.scoring import work as W
from fleetvision.tables import HERO_IMAGES, IMAGE_TAGS, LISTING_COMPLETENESS, LISTINGS, qualified

if TYPE_CHECKING:
    from fleetvision.scoring import ScoringRules
    from fleetvision.scoring.staging import Staging
    from fleetvision.taxonomy import Taxonomy

GroupFn = Callable[[pd.DataFrame], pd.DataFrame]
BatchFn = Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]

_HERO_ONLY = tuple(f for f in HERO_IMAGES.schema.fields if f.name not in {x.name for x in LISTING_COMPLETENESS.schema})
LISTING_RESULT_SCHEMA = T.StructType(
    [T.StructField(f.name, f.dataType, True) for f in (*LISTING_COMPLETENESS.schema.fields, *_HERO_ONLY)]
)
"""One row per recomputed listing: its ``listing_completeness`` columns and its ``hero_images`` columns."""


def _listing_row_fn(
    taxonomy: Taxonomy, rules: ScoringRules, run_id: str, computed_at: datetime
) -> Callable[[pd.DataFrame], dict[str, Any]]:
    """One listing's rows in, its completeness and hero columns out as one dict."""
    from fleetvision.scoring.completeness import completeness
    from fleetvision.scoring.hero import hero_row
    from fleetvision.scoring.listing_photos import listing_photos

    def listing_row(pdf: pd.DataFrame) -> dict[str, Any]:
        first = pdf.iloc[0]
        listing = {
            "listing_id": first["listing_id"],
            "body_type": first["listing_body_type"],
            "seller_type": first["listing_seller_type"],
        }
        photos = listing_photos(pdf, rules)  # prepared once for both
        row = completeness(listing, pdf, taxonomy, rules, run_id=run_id, computed_at=computed_at, photos=photos)
        hero = hero_row(pdf, taxonomy, rules, listing_id=str(first["listing_id"]), run_id=run_id,
                        computed_at=computed_at, photos=photos)
        row.update({f.name: hero[f.name] for f in _HERO_ONLY})
        return row

    return listing_row


def listing_result_fn(taxonomy: Taxonomy, rules: ScoringRules, run_id: str, computed_at: datetime) -> GroupFn:
    """The ``applyInPandas`` function: one listing's tags in, its completeness and hero row out.

    The closure holds only the taxonomy, the rules, the run id and the run's timestamp. Each group's
    rows carry the listing's declared ``listing_body_type`` and ``listing_seller_type``; a listing with
    no photos arrives as one row with a null ``image_id`` (the core ignores such rows).
    """
    from fleetvision.scoring.completeness import typed_frame

    listing_row = _listing_row_fn(taxonomy, rules, run_id, computed_at)
    columns = [f.name for f in LISTING_RESULT_SCHEMA.fields]

    def listing_result(pdf: pd.DataFrame) -> pd.DataFrame:
        return typed_frame([listing_row(pdf)], columns)

    return listing_result


def listing_results_fn(taxonomy: Taxonomy, rules: ScoringRules, run_id: str, computed_at: datetime) -> BatchFn:
    """The ``mapInPandas`` function over rows clustered by listing: one result row per listing.

    The rows of a partition must arrive sorted by ``listing_id`` (the stage sorts each partition), so
    that a listing's rows are together; an Arrow batch may end inside a listing, whose rows are then
    carried over to the next batch. Each listing goes through the same function as :func:`listing_result_fn`;
    the difference is the cost around it: ``applyInPandas`` converts every listing's rows to pandas and its
    result back to Arrow on their own (~5 ms a listing here), this converts one batch at a time
    (``benchmarks/bench_listing_stage.py``).

    Raises:
        ValueError: The rows are not sorted by ``listing_id`` (a listing could be split in two rows).
    """
    from fleetvision.scoring.completeness import typed_frame

    listing_row = _listing_row_fn(taxonomy, rules, run_id, computed_at)
    columns = [f.name for f in LISTING_RESULT_SCHEMA.fields]

    def listing_results(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        carried: pd.DataFrame | None = None
        previous: str | None = None

        def checked_row(rows: pd.DataFrame) -> dict[str, Any]:
            # Python compares strings by code point, as Spark sorts them (by their UTF-8 bytes)
            nonlocal previous
            listing_id = str(rows["listing_id"].iloc[0])
            if previous is not None and not listing_id > previous:
                raise ValueError(f"listing rows are not sorted by listing_id: {listing_id!r} came after {previous!r}")
            previous = listing_id
            return listing_row(rows)

        for batch in batches:
            pdf = batch if carried is None else pd.concat([carried, batch], ignore_index=True)
            if pdf.empty:
                continue
            ids = pdf["listing_id"].to_numpy(dtype=object)
            starts = [0, *(np.flatnonzero(ids[1:] != ids[:-1]) + 1).tolist()]
            rows = [checked_row(pdf.iloc[start:end]) for start, end in pairwise(starts)]
            carried = pdf.iloc[starts[-1]:]  # the last listing may go on in the next batch
            if rows:
                yield typed_frame(rows, columns)
        if carried is not None and not carried.empty:
            yield typed_frame([checked_row(carried)], columns)

    return listing_results


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


@dataclass(frozen=True)
class ListingCounts:
    """What the listing stage changed: listings recomputed (rows merged) and listings whose rows were removed."""

    listings_updated: int
    listings_removed: int


def recompute_listings(
    spark: SparkSession,
    database: str,
    affected: DataFrame,
    listings_version: int,
    taxonomy: Taxonomy,
    rules: ScoringRules,
    run_id: str,
    computed_at: datetime,
    staging: Staging,
) -> ListingCounts:
    """Recompute completeness and hero rows of the affected active listings; drop the inactive ones."""
    listings = W.read_version(spark, database, LISTINGS.name, listings_version).select(
        "listing_id",
        "status",
        F.col("seller_type").alias("listing_seller_type"),
        F.col("body_type").alias("listing_body_type"),
    )
    active = affected.join(listings.filter(W.is_active(F.col("status"))).drop("status"), "listing_id")
    removed = affected.join(active.select("listing_id"), "listing_id", "left_anti")
    tags = (
        spark.table(qualified(database, IMAGE_TAGS))
        .join(active.select("listing_id"), "listing_id", "left_semi")
        .select("listing_id", *_LISTING_TAG_COLUMNS)
    )
    # A left join keeps listings without photos: their single row has a null image_id (ignored by the core).
    groups = active.join(tags, "listing_id", "left")
    # each listing's rows together in one partition, then one pandas call per Arrow batch (not per listing)
    clustered = groups.repartition("listing_id").sortWithinPartitions("listing_id")
    results = staging.write(
        "listing_results",
        clustered.mapInPandas(listing_results_fn(taxonomy, rules, run_id, computed_at), LISTING_RESULT_SCHEMA),
    )
    updated = results.count()
    # one commit per table: the changed rows in, the rows of listings no longer active out. The two
    # MERGEs touch different tables and are mostly driver-side work (planning, the Delta log, the commit),
    # so they run side by side; the commit metadata is set once around both (it is a session setting).
    with delta_writes.commit_metadata(spark, run_id), ThreadPoolExecutor(2, thread_name_prefix="fv-listings") as pool:
        merges = [
            pool.submit(delta_writes.upsert_and_delete, spark, database, spec, results, removed, run_id=run_id,
                        changed_only=True)
            for spec in (LISTING_COMPLETENESS, HERO_IMAGES)
        ]
        removed_count = merges[0].result()
        merges[1].result()
    return ListingCounts(updated, removed_count)
