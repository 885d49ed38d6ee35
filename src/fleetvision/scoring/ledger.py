"""The run ledger, ``scoring_runs``: one row per finished run, written last; a ``succeeded`` row is the watermark."""

from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from fleetvision import delta_writes
from fleetvision.scoring.summary import RunSummary
from fleetvision.tables import SCORING_RUNS, qualified


def write_ledger(spark: SparkSession, database: str, summary: RunSummary) -> None:
    """Write the run's ``scoring_runs`` row (the watermark when ``succeeded``)."""
    # Every ledger column is a summary field of the same name.
    row = tuple(getattr(summary, f.name) for f in SCORING_RUNS.schema.fields)
    # A run id is new by construction: an append is enough, and one commit.
    rows = spark.createDataFrame([row], SCORING_RUNS.schema)
    delta_writes.append_rows(spark, database, SCORING_RUNS, rows, summary.run_id)


def ledger_angle_counts(spark: SparkSession, database: str, run_id: str) -> dict[str, int] | None:
    """The ``angle_counts`` the ledger holds for ``run_id``; None when it has none (or no such row)."""
    row = (
        spark.table(qualified(database, SCORING_RUNS))
        .filter(F.col("run_id") == run_id)
        .select("angle_counts")
        .first()
    )
    if row is None or not row["angle_counts"]:
        return None
    return {str(k): int(v) for k, v in row["angle_counts"].items()}
