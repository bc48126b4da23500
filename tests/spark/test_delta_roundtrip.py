import pytest
from chispa import assert_df_equality

pytestmark = pytest.mark.spark


def test_delta_round_trip_with_time_travel(spark, tmp_path):
    path = str(tmp_path / "people")
    first = spark.createDataFrame([(1, "Alice"), (2, "Bob")], "id long, name string")
    first.write.format("delta").save(path)
    second = spark.createDataFrame([(3, "Carol")], "id long, name string")
    second.write.format("delta").mode("append").save(path)

    current = spark.read.format("delta").load(path)
    assert_df_equality(current, first.unionByName(second), ignore_row_order=True)
    version_zero = spark.read.format("delta").option("versionAsOf", 0).load(path)
    assert_df_equality(version_zero, first, ignore_row_order=True)


def test_session_is_utc_ansi_and_metastore_free(spark):
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert spark.conf.get("spark.sql.ansi.enabled") == "true"
    assert spark.conf.get("spark.sql.catalogImplementation") == "in-memory"
