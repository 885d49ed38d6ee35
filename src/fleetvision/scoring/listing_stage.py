"""The listing-level stage of a scoring run: recompute completeness and hero rows of the affected listings.

Spark only groups and merges here (the two MERGEs side by side): each listing's tags go through the pure core
(:func:`fleetvision.scoring.completeness.completeness_frame`, :func:`fleetvision.scoring.hero.hero_frame`)
in one ``applyInPandas``. Completeness and hero rows exist only for active listings: an affected
listing that is no longer active loses them.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fleetvision import tables
from fleetvision.scoring import work as W
from fleetvision.tables import HERO_IMAGES, IMAGE_TAGS, LISTING_COMPLETENESS, LISTINGS, qualified

if TYPE_CHECKING:
    from fleetvision.scoring import ScoringRules
    from fleetvision.scoring.staging import Staging
    from fleetvision.taxonomy import Taxonomy

GroupFn = Callable[[pd.DataFrame], pd.DataFrame]

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
    results = staging.write(
        "listing_results",
        groups.groupBy("listing_id").applyInPandas(
            listing_result_fn(taxonomy, rules, run_id, computed_at), LISTING_RESULT_SCHEMA
        ),
    )
    updated = results.count()
    # one commit per table: the changed rows in, the rows of listings no longer active out. The two
    # MERGEs touch different tables and are mostly driver-side work (planning, the Delta log, the commit),
    # so they run side by side; the commit metadata is set once around both (it is a session setting).
    with tables.commit_metadata(spark, run_id), ThreadPoolExecutor(2, thread_name_prefix="fv-listings") as pool:
        merges = [
            pool.submit(tables.upsert_and_delete, spark, database, spec, results, removed, run_id=run_id,
                        changed_only=True)
            for spec in (LISTING_COMPLETENESS, HERO_IMAGES)
        ]
        removed_count = merges[0].result()
        merges[1].result()
    return ListingCounts(updated, removed_count)
