"""The data-quality stage of a scoring run: gather from Spark what the pure checks need, and run them.

The checks themselves are pure (:func:`fleetvision.scoring.checks.run_checks`); here are the figures
they read (this run's angle counts, the previous successful run's) and the distribution figures of the
run's outputs that the summary and MLflow carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fleetvision.scoring.checks import DQResult, run_checks
from fleetvision.scoring.ledger import ledger_angle_counts
from fleetvision.tables import LISTING_COMPLETENESS, qualified

if TYPE_CHECKING:
    from fleetvision.scoring import ScoringRules
    from fleetvision.scoring.image_stages import TagCounts
    from fleetvision.scoring.work import Watermark


@dataclass(frozen=True)
class QualityOutcome:
    """The checks' verdict and the figures the run reports with it.

    Attributes:
        result: The data-quality checks (``.passed``, ``.breached``, ``.to_json``).
        angle_counts: ``angle -> photos`` among this run's decoded photos.
        score_stats: Distribution figures of the run's outputs (MLflow ``score.*`` metrics).
    """

    result: DQResult
    angle_counts: dict[str, int]
    score_stats: dict[str, float]


def check_run(
    spark: SparkSession,
    database: str,
    staged_tags: DataFrame,
    affected: DataFrame,
    images_in: int,
    counts: TagCounts,
    watermark: Watermark | None,
    rules: ScoringRules,
) -> QualityOutcome:
    """Run the data-quality checks on this run's tags, against the previous successful run."""
    angle_counts = tag_angle_counts(staged_tags)
    previous = ledger_angle_counts(spark, database, watermark.run_id) if watermark is not None else None
    result = run_checks(
        images_in=images_in,
        images_failed=counts.images_failed,
        images_scored=counts.images_scored + counts.images_cached,
        angle_counts=angle_counts,
        previous_angle_counts=previous,
        rules=rules,
    )
    return QualityOutcome(result, angle_counts, score_stats(spark, staged_tags, database, affected))


def tag_angle_counts(staged_tags: DataFrame) -> dict[str, int]:
    """``angle -> photos`` among the decoded photos of ``staged_tags``."""
    rows = staged_tags.filter(F.col("decode_status") == "ok").groupBy("angle").count().collect()
    return {str(r["angle"]): int(r["count"]) for r in rows if r["angle"] is not None}


def score_stats(spark: SparkSession, staged_tags: DataFrame, database: str, affected: DataFrame) -> dict[str, float]:
    """Distribution figures of this run's outputs (MLflow metrics and the summary)."""
    ok = staged_tags.filter(F.col("decode_status") == "ok")
    tag_row = ok.agg(
        F.avg("angle_score").alias("angle_score_mean"),
        F.avg(F.col("banner_flag").cast("double")).alias("banner_share"),
        F.avg(F.col("plate_flag").cast("double")).alias("plate_share"),
        F.avg("sharpness").alias("sharpness_mean"),
    ).first()
    comp_row = (
        spark.table(qualified(database, LISTING_COMPLETENESS))
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
