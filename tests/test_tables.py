"""Table contracts: creation with properties, validation errors that name columns, idempotent MERGE."""

from __future__ import annotations

import datetime as dt
import functools

import pytest
from pyspark.sql import types as T

from fleetvision import delta_writes, tables
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
    delta_writes.merge_upsert(spark, database, LISTING_IMAGES, updates, run_id="run-a")
    first = sorted(spark.table(f"{database}.listing_images").collect())
    delta_writes.merge_upsert(spark, database, LISTING_IMAGES, updates, run_id="run-b")
    assert sorted(spark.table(f"{database}.listing_images").collect()) == first
    assert len(first) == 4
    history = spark.sql(f"DESCRIBE HISTORY {database}.listing_images").collect()
    metadata = {r.userMetadata for r in history if r.operation == "MERGE"}
    assert metadata == {"fleetvision run_id=run-a", "fleetvision run_id=run-b"}
    # the session setting does not leak past the block
    assert spark.conf.get(delta_writes.commit_metadata.KEY, None) is None
    assert delta_writes.table_version(spark, database, LISTING_IMAGES) == 2


def test_conform_orders_and_fills_missing_columns(spark) -> None:
    df = spark.createDataFrame([("l1", "SUV")], "listing_id string, body_type string")
    out = tables.conform(df, LISTINGS)
    assert out.columns == [f.name for f in LISTINGS.schema.fields]
    assert out.first().asDict()["make"] is None


def test_the_key_condition_is_built_in_one_place_for_every_key_column() -> None:
    assert delta_writes.key_condition(tables.PREDICTION_CACHE) == (
        "t.`content_hash` = s.`content_hash` AND t.`model_set_id` = s.`model_set_id`"
    )
    assert delta_writes.key_condition(LISTINGS, "a", "b") == "a.`listing_id` = b.`listing_id`"


def test_changed_condition_skips_the_key_and_the_run_columns_and_compares_maps_by_entries() -> None:
    cond = delta_writes.changed_condition(tables.IMAGE_TAGS)
    assert cond is not None
    for skipped in ("image_id", "run_id", "scored_at"):
        assert f"`{skipped}`" not in cond
    assert "NOT (t.`angle` <=> s.`angle`)" in cond
    assert "NOT (array_sort(map_entries(t.`model_versions`)) <=> array_sort(map_entries(s.`model_versions`)))" in cond


def test_a_merge_without_any_clause_is_refused(spark, database) -> None:
    df = spark.createDataFrame(_listing_images_rows(1), LISTING_IMAGES.schema)
    with pytest.raises(ValueError, match="listing_images needs at least one of delete, update, insert"):
        delta_writes.merge_by_key(spark, database, LISTING_IMAGES, df, update=False, insert=False)


def _uris(spark, database) -> dict[str, str]:
    return {r["image_id"]: r["uri"] for r in spark.table(f"{database}.listing_images").collect()}


def _last_merge_metrics(spark, database) -> dict[str, str]:
    return spark.sql(f"DESCRIBE HISTORY {database}.listing_images LIMIT 1").first()["operationMetrics"]


def test_the_merge_variants_insert_new_update_changed_apply_actions_and_upsert_and_delete(spark, database) -> None:
    tables.ensure_table(spark, database, LISTING_IMAGES)
    base = _listing_images_rows(3)
    moved = [(r[0], r[1], r[2], r[3].replace("/x/", "/y/"), r[4], r[5]) for r in base]
    frame = lambda rows: spark.createDataFrame(rows, LISTING_IMAGES.schema)  # noqa: E731
    delta_writes.insert_new(spark, database, LISTING_IMAGES, frame(base[:2]), run_id="r1")
    # insert_new adds unknown keys only: img-0's new uri is ignored, img-2 is added
    delta_writes.insert_new(spark, database, LISTING_IMAGES, frame([moved[0], base[2]]), run_id="r2")
    assert _uris(spark, database) == {"img-0": "file:///x/0.jpg", "img-1": "file:///x/1.jpg", "img-2": "file:///x/2.jpg"}

    # changed_only rewrites a matched row only when it differs outside the key and the run columns
    changed = functools.partial(delta_writes.upsert_and_delete, deleted_keys=None, changed_only=True)
    assert changed(spark, database, LISTING_IMAGES, frame(base), run_id="r3") == 0
    assert int(_last_merge_metrics(spark, database)["numTargetRowsUpdated"]) == 0
    changed(spark, database, LISTING_IMAGES, frame([moved[1], *base[::2]]), run_id="r4")
    assert int(_last_merge_metrics(spark, database)["numTargetRowsUpdated"]) == 1
    assert _uris(spark, database)["img-1"] == "file:///y/1.jpg"

    # merge_actions: delete img-0, update img-2, insert img-5; an insert of a known key leaves it alone
    ts = base[0][5]
    actions = spark.createDataFrame(
        [(*base[0], "delete"), (*moved[2], "update"), ("img-5", "lst-1", 5, "file:///x/5.jpg", None, ts, "insert"),
         (*base[1], "insert")],
        T.StructType([*LISTING_IMAGES.schema.fields, T.StructField("_op", T.StringType())]),
    )
    delta_writes.merge_actions(spark, database, LISTING_IMAGES, actions, run_id="r5")
    assert _uris(spark, database) == {"img-1": "file:///y/1.jpg", "img-2": "file:///y/2.jpg", "img-5": "file:///x/5.jpg"}
    assert "_op" not in spark.table(f"{database}.listing_images").columns

    # upsert_and_delete: img-5 rewritten, img-6 added, img-1 deleted (a repeated and an unknown key are fine),
    # in one commit
    keys = spark.createDataFrame([("img-1",), ("img-1",), ("img-9",)], "image_id string")
    upserts = frame(
        [("img-5", "lst-1", 5, "file:///z/5.jpg", None, ts), ("img-6", "lst-1", 6, "file:///z/6.jpg", None, ts)]
    )
    version = spark.sql(f"DESCRIBE HISTORY {database}.listing_images LIMIT 1").first()["version"]
    assert delta_writes.upsert_and_delete(spark, database, LISTING_IMAGES, upserts, keys, run_id="r6") == 1
    assert _uris(spark, database) == {"img-2": "file:///y/2.jpg", "img-5": "file:///z/5.jpg", "img-6": "file:///z/6.jpg"}
    assert spark.sql(f"DESCRIBE HISTORY {database}.listing_images LIMIT 1").first()["version"] == version + 1
    metrics = _last_merge_metrics(spark, database)
    assert (metrics["numTargetRowsDeleted"], metrics["numTargetRowsUpdated"], metrics["numTargetRowsInserted"]) == (
        "1", "1", "1"
    )
    history = spark.sql(f"DESCRIBE HISTORY {database}.listing_images").collect()
    merged = {r.userMetadata for r in history if r.operation == "MERGE"}
    assert {f"fleetvision run_id=r{i}" for i in (1, 2, 4, 5, 6)} <= merged <= {
        f"fleetvision run_id=r{i}" for i in range(1, 7)
    }


def test_write_scratch_writes_the_parquet_codec_asked_for(spark, tmp_path) -> None:
    import pyarrow.parquet as pq

    df = spark.createDataFrame([(i, bytes([i % 256]) * 1000) for i in range(50)], "id int, data binary")
    codecs = {}
    for codec in (None, "uncompressed"):
        path = tmp_path / f"scratch_{codec}"
        reader = delta_writes.write_scratch(spark, df, str(path), compression=codec)
        assert sorted(r["id"] for r in reader.select("id").collect()) == list(range(50))
        files = sorted(path.glob("*.parquet"))
        codecs[codec] = {pq.ParquetFile(f).metadata.row_group(0).column(1).compression for f in files}
    assert codecs == {None: {"SNAPPY"}, "uncompressed": {"UNCOMPRESSED"}}  # the staged photo bytes: uncompressed
