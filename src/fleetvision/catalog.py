"""The warehouse catalog: table names found from the warehouse's folders, so any number of processes share it.

With ``spark.metastore: warehouse`` (the embedded default) no metastore database exists at all. Each
Spark session keeps its catalog in memory and, when it starts, registers every Delta table it finds
under the warehouse at the path a metastore would give it::

    <warehouse>/<database>.db/<table>/_delta_log

So ``fleetvision.image_tags`` means the same table in every process: a nightly run, an analyst's
``pyspark`` shell (through :func:`fleetvision.spark.build_spark`) and a script that wrote the inputs can
all be open at once, and Delta's optimistic concurrency keeps concurrent commits to one table correct.
A table that another process creates after this session started is registered the first time this
session asks for it (:func:`register_table`, called by ``tables.ensure_table``).

What it cannot do: databases kept outside the warehouse (``CREATE DATABASE ... LOCATION``) are not
found by other processes, and views and grants are not persisted. Clusters use their own metastore
(``spark.metastore: cluster``); ``derby`` keeps the old single-process Hive metastore under the
warehouse.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pyspark.sql import SparkSession

from fleetvision import hadoop_fs

logger = logging.getLogger(__name__)

DELTA_LOG = "_delta_log"
DATABASE_SUFFIX = ".db"


@dataclass(frozen=True)
class WarehouseTable:
    """A Delta table found under the warehouse."""

    database: str
    table: str
    location: str

    @property
    def name(self) -> str:
        return f"`{self.database}`.`{self.table}`"


def warehouse_tables(spark: SparkSession, warehouse: str) -> list[WarehouseTable]:
    """Every ``<database>.db/<table>`` folder under ``warehouse`` that holds a Delta log, sorted.

    Works on any filesystem Hadoop reads (local, ``s3a://``, ``abfss://``, ``hdfs://``).
    """
    found: list[WarehouseTable] = []
    for db_dir in hadoop_fs.list_folders(spark, warehouse):
        if not db_dir.name.endswith(DATABASE_SUFFIX) or len(db_dir.name) == len(DATABASE_SUFFIX):
            continue
        database = db_dir.name[: -len(DATABASE_SUFFIX)]
        for table_dir in hadoop_fs.list_folders(spark, db_dir.location):
            if hadoop_fs.exists(spark, hadoop_fs.join(spark, table_dir.location, DELTA_LOG)):
                found.append(WarehouseTable(database, table_dir.name, table_dir.location))
    return sorted(found, key=lambda t: (t.database, t.table))


def _register(spark: SparkSession, table: WarehouseTable) -> bool:
    spark.sql(f"CREATE DATABASE IF NOT EXISTS `{table.database}`")
    if spark.catalog.tableExists(f"{table.database}.{table.table}"):
        return False
    location = table.location.replace("'", "\\'")
    spark.sql(f"CREATE TABLE IF NOT EXISTS {table.name} USING delta LOCATION '{location}'")
    return True


def register_warehouse_tables(spark: SparkSession, warehouse: str) -> list[WarehouseTable]:
    """Register every Delta table under ``warehouse`` in this session's catalog; return those registered.

    Idempotent: tables the session already knows are left alone.
    """
    registered = [t for t in warehouse_tables(spark, warehouse) if _register(spark, t)]
    if registered:
        logger.info("catalog: %d table(s) registered from %s", len(registered), warehouse)
    return registered


def session_warehouse(spark: SparkSession) -> str:
    """The session's warehouse (``spark.sql.warehouse.dir``)."""
    return str(spark.conf.get("spark.sql.warehouse.dir"))


def register_table(spark: SparkSession, warehouse: str | None, database: str, table: str) -> bool:
    """Register ``database.table`` if its folder under ``warehouse`` (None: the session's) holds a Delta
    table made by another process since this session started; True when it did.
    """
    location = hadoop_fs.join(spark, warehouse or session_warehouse(spark), database + DATABASE_SUFFIX, table)
    if not hadoop_fs.exists(spark, hadoop_fs.join(spark, location, DELTA_LOG)):
        return False
    return _register(spark, WarehouseTable(database, table, location))
