"""A run's staging area: Delta tables for its intermediate results, under the database's location.

Every stage's result is staged at ``<database location>/_fv_staging/<run_id>/<name>`` before it is
merged, so each MERGE reads a fixed, deterministic source and a Spark task retry can never add a row
twice (only the files of a successful task attempt are committed). A run removes its folder when it
ends well; a killed run's folder stays until it is removed by hand (docs/runbook.md).
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from fleetvision import delta_writes, hadoop_fs

STAGING_DIR = "_fv_staging"


class Staging:
    """Delta tables for one run's intermediate results, under the database's location."""

    def __init__(self, spark: SparkSession, database: str, run_id: str) -> None:
        location = spark.catalog.getDatabase(database).locationUri.rstrip("/")
        self.spark = spark
        self.root = f"{location}/{STAGING_DIR}/{run_id}"
        self.parent = f"{location}/{STAGING_DIR}"

    def write(self, name: str, df: DataFrame, *, compression: str | None = None) -> DataFrame:
        """Materialise ``df`` as a Delta table and return a reader of it (``compression``: see
        :func:`fleetvision.delta_writes.write_scratch`)."""
        return delta_writes.write_scratch(self.spark, df, f"{self.root}/{name}", compression=compression)

    def remove(self, *, everything: bool = False) -> None:
        """Delete this run's staging tables (or every run's, with ``everything``)."""
        hadoop_fs.delete(self.spark, self.parent if everything else self.root)
