"""A plain local Delta table read without Spark gives what Spark's read gives (types,
values, versions, columns added later); anything else is left to Spark."""

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from odibi_core.engine.base import ReadSpec
from odibi_core.engine.delta_snapshot import read_local_delta
from odibi_core.engine.pandas_engine import PandasEngineContext
from odibi_core.engine.schema import normalize_arrow_table

pytestmark = pytest.mark.spark

_SCHEMA = (
    "l BIGINT, i INT, s SMALLINT, b TINYINT, d DOUBLE, f FLOAT, ok BOOLEAN, name STRING, "
    "raw BINARY, day DATE, at TIMESTAMP, ntz TIMESTAMP_NTZ, amount DECIMAL(10,2)"
)
_ROWS = [
    (
        1,
        2,
        3,
        4,
        1.5,
        2.5,
        True,
        "é",
        b"\x00\x01",
        dt.date(2024, 2, 29),
        dt.datetime(2024, 3, 1, 12, 30, 15, 123456, tzinfo=dt.timezone.utc),
        dt.datetime(2024, 3, 1, 8, 0, 0, 1),
        Decimal("12.34"),
    ),
    (None,) * 13,
]


def _spark_read(spark, path, version=None):
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", str(version))
    return normalize_arrow_table(reader.load(str(path)).toArrow())


def _sorted(table):
    return table.sort_by([(table.column_names[0], "ascending")]).to_pylist()


def test_every_flat_type_reads_as_spark_reads_it(spark, tmp_path):
    path = tmp_path / "types"
    spark.createDataFrame(_ROWS, _SCHEMA).write.format("delta").save(str(path))
    ours, theirs = read_local_delta(str(path)), _spark_read(spark, path)
    assert ours is not None
    assert ours.schema.equals(theirs.schema)
    assert _sorted(ours) == _sorted(theirs)


def test_each_version_as_spark_time_travel_gives_it(spark, tmp_path):
    path = str(tmp_path / "versions")
    spark.range(3).write.format("delta").save(path)
    spark.range(10, 12).write.format("delta").mode("append").save(path)
    spark.range(20, 21).write.format("delta").mode("overwrite").save(path)
    spark.range(30, 32).selectExpr("id", "id * 2 AS twice").write.format("delta").mode(
        "append"
    ).option("mergeSchema", "true").save(path)
    for version in (0, 1, 2, 3, None):
        ours = read_local_delta(path, version)
        assert ours is not None, version
        theirs = _spark_read(spark, path, version)
        assert ours.schema.equals(theirs.schema), version
        assert _sorted(ours) == _sorted(theirs), version
    assert [r["twice"] for r in _sorted(read_local_delta(path))] == [None, 60, 62]
    assert read_local_delta(path, 7) is None  # no such version: Spark says so


def test_tables_this_reader_does_not_understand_are_left_to_spark(spark, tmp_path):
    frame = spark.range(4).selectExpr("id", "id % 2 AS part", "named_struct('x', id) AS nested")
    frame.select("id", "part").write.format("delta").partitionBy("part").save(
        str(tmp_path / "partitioned")
    )
    frame.write.format("delta").save(str(tmp_path / "nested"))
    spark.sql(
        f"CREATE TABLE delta.`{tmp_path / 'mapped'}` (id BIGINT) USING delta "
        "TBLPROPERTIES ('delta.columnMapping.mode' = 'name')"
    )
    vectors = str(tmp_path / "vectors")
    spark.sql(
        f"CREATE TABLE delta.`{vectors}` (id BIGINT) USING delta "
        "TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')"
    )
    spark.range(10).write.format("delta").mode("append").save(vectors)
    spark.sql(f"DELETE FROM delta.`{vectors}` WHERE id = 3")
    for name in ("partitioned", "nested", "mapped", "vectors"):
        assert read_local_delta(str(tmp_path / name)) is None, name
    assert read_local_delta("s3://bucket/table") is None
    assert read_local_delta(str(tmp_path / "missing")) is None


def test_the_pandas_engine_reads_a_local_table_without_spark(spark, tmp_path):
    path = str(tmp_path / "plain")
    spark.createDataFrame(_ROWS, _SCHEMA).write.format("delta").save(path)
    engine = PandasEngineContext(spark_engine=None)  # any use of Spark would raise
    frame = engine.read(ReadSpec(path, "delta", options={"versionAsOf": "0"}), step="read")
    assert isinstance(frame, pa.Table)
    assert _sorted(frame) == _sorted(_spark_read(spark, path))
    with pytest.raises(Exception, match="Delta needs Spark"):
        engine.read(ReadSpec(path, "delta", options={"timestampAsOf": "2024-01-01"}), step="r")


def test_a_table_with_a_checkpoint_reads_from_it_even_after_its_commits_are_cleaned(
    spark, tmp_path
):
    path = tmp_path / "long"
    spark.sql(
        f"CREATE TABLE delta.`{path}` (id BIGINT, name STRING) USING delta "
        "TBLPROPERTIES ('delta.checkpointInterval' = '3')"
    )
    for n in range(1, 8):  # versions 1-7: checkpoints at 3 and 6
        spark.range(n * 10, n * 10 + 2).selectExpr("id", "cast(id AS string) AS name").write.format(
            "delta"
        ).mode("append").save(str(path))
    spark.sql(f"DELETE FROM delta.`{path}` WHERE id = 20")  # version 8, a file removed
    log = path / "_delta_log"
    assert {p.name[:20] for p in log.glob("*.checkpoint.parquet")} == {f"{3:020d}", f"{6:020d}"}
    for version in (2, 5, 7, None):
        ours = read_local_delta(str(path), version)
        assert ours is not None, version
        assert _sorted(ours) == _sorted(_spark_read(spark, path, version)), version

    for old in range(0, 6):  # log cleanup: the commits the checkpoint at 6 covers are gone
        (log / f"{old:020d}.json").unlink()
    ours = read_local_delta(str(path))
    assert ours is not None
    assert _sorted(ours) == _sorted(_spark_read(spark, path))
    assert 20 not in [row["id"] for row in ours.to_pylist()] and ours.num_rows == 13
    assert read_local_delta(str(path), 7) is not None  # checkpoint 6 and commit 7
    assert read_local_delta(str(path), 4) is None  # its commits are gone: Spark says so
