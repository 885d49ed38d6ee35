"""Table contracts: creation with properties, validation errors that name columns, idempotent MERGE."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import types as T

from fleetvision import tables
from fleetvision.tables import LISTING_IMAGES, LISTINGS, TableContractError

pytestmark = pytest.mark.spark


def _listing_images_rows(n: int = 3) -> list[tuple]:
    ts = dt.datetime(2026, 1, 1)
    return [(f"img-{i}", f"lst-{i % 2}", i, f"file:///x/{i}.jpg", None, ts) for i in range(n)]


def test_ensure_tables_creates_every_table_with_cdf_where_consumers_need_it(spark, database) -> None:
    tables.ensure_tables(spark, database)
    names = {r.tableName for r in spark.sql(f"SHOW TABLES IN {database}").collect()}
    assert names == {t.name for t in tables.ALL_TABLES}
    for spec in tables.ALL_TABLES:
        props = {r.key: r.value for r in spark.sql(f"SHOW TBLPROPERTIES {database}.{spec.name}").collect()}
        expected = "true" if spec in (tables.LISTING_IMAGES, tables.LISTING_COMPLETENESS) else None
        assert props.get(tables.CDF_PROPERTY) == expected, spec.name
        tables.validate_schema(spark.table(f"{database}.{spec.name}").schema, spec)
    # a second call is a no-op that re-validates
    tables.ensure_tables(spark, database)


def test_input_table_with_a_missing_column_is_named(spark, database) -> None:
    schema = T.StructType([f for f in LISTING_IMAGES.schema.fields if f.name != "position"])
    df = spark.createDataFrame([(r[0], r[1], r[3], r[4], r[5]) for r in _listing_images_rows()], schema)
    df.write.format("delta").saveAsTable(f"{database}.listing_images")
    with pytest.raises(TableContractError, match=r"missing column\(s\): position"):
        tables.validate_input_table(spark, database, LISTING_IMAGES)


def test_input_table_with_a_wrong_type_is_named(spark, database) -> None:
    fields = [
        T.StructField("year", T.StringType()) if f.name == "year" else f for f in LISTINGS.schema.fields
    ]
    df = spark.createDataFrame([("l1", "Mazda", "3", "2019", "hatch", "private", "s1", "active", None)],
                               T.StructType(fields))
    df.write.format("delta").saveAsTable(f"{database}.listings")
    with pytest.raises(TableContractError, match=r"mistyped column\(s\): year is string, expected int"):
        tables.validate_input_table(spark, database, LISTINGS)


def test_missing_input_table_is_named(spark, database) -> None:
    with pytest.raises(TableContractError, match=rf"input table {database}.listings does not exist"):
        tables.validate_input_table(spark, database, LISTINGS)


def test_merge_upsert_is_idempotent_and_tags_commits_with_the_run_id(spark, database) -> None:
    tables.ensure_table(spark, database, LISTING_IMAGES)
    updates = spark.createDataFrame(_listing_images_rows(4), LISTING_IMAGES.schema)
    tables.merge_upsert(spark, database, LISTING_IMAGES, updates, run_id="run-a")
    first = sorted(spark.table(f"{database}.listing_images").collect())
    tables.merge_upsert(spark, database, LISTING_IMAGES, updates, run_id="run-b")
    assert sorted(spark.table(f"{database}.listing_images").collect()) == first
    assert len(first) == 4
    history = spark.sql(f"DESCRIBE HISTORY {database}.listing_images").collect()
    metadata = {r.userMetadata for r in history if r.operation == "MERGE"}
    assert metadata == {"fleetvision run_id=run-a", "fleetvision run_id=run-b"}
    # the session setting does not leak past the block
    assert spark.conf.get(tables.commit_metadata.KEY, None) is None
    assert tables.table_version(spark, database, LISTING_IMAGES) == 2


def test_conform_orders_and_fills_missing_columns(spark) -> None:
    df = spark.createDataFrame([("l1", "SUV")], "listing_id string, body_type string")
    out = tables.conform(df, LISTINGS)
    assert out.columns == [f.name for f in LISTINGS.schema.fields]
    assert out.first().asDict()["make"] is None
