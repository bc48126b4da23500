"""A local state table is read by this process from its log and files: the same rows, in
the same order, as Spark's read, and no Spark session is needed for it."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from odibi_core.state.location import StateTableRef
from odibi_core.state.table import DeltaStateTable

pytestmark = pytest.mark.spark

COLUMNS = (
    ("pipeline", "string"),
    ("key", "string"),
    ("created", "timestamp"),
    ("hits", "long"),
    ("share", "double"),
    ("fresh", "boolean"),
)
ROWS = [
    {"pipeline": "p", "key": "b", "created": datetime(2026, 1, 2, 3, 4, 5, 678901, timezone.utc),
     "hits": 2, "share": 0.5, "fresh": True},
    {"pipeline": "p", "key": "a", "created": None, "hits": None, "share": None, "fresh": None},
    {"pipeline": "q", "key": "c", "created": datetime(1969, 12, 31, 23, 0, tzinfo=timezone.utc),
     "hits": 7, "share": -1.25, "fresh": False},
    {"pipeline": "p", "key": "d", "created": datetime(2026, 1, 1, tzinfo=timezone.utc),
     "hits": 2, "share": 2.0, "fresh": False},
]  # fmt: skip


class _SparkOnly(DeltaStateTable):
    """The same table read only through Spark: what every read did before."""

    def _read_here(self, *args, **kwargs):
        return None


def _no_spark():
    raise AssertionError("a local state table was read through Spark")


def _ref(path) -> StateTableRef:
    return StateTableRef(name="odibi_state.odibi_cache", path=path)


def test_local_reads_equal_spark_reads_without_a_session(spark, tmp_path):
    path = tmp_path / "odibi_cache"
    writer = DeltaStateTable(_ref(path), COLUMNS, spark_provider=lambda: spark)
    writer.append(ROWS[:2], txn_app_id="t", txn_version=0)
    writer.append(ROWS[2:], txn_app_id="t", txn_version=1)

    local = DeltaStateTable(_ref(path), COLUMNS, spark_provider=_no_spark)
    through_spark = _SparkOnly(_ref(path), COLUMNS, spark_provider=lambda: spark)
    queries = [
        {},
        {"where": {"pipeline": "p"}, "order_by": ["key"]},
        {"where": {"hits": None}},
        {"order_by": ["hits", "key"], "descending": True},
        {"order_by": ["created"]},
        {"where": {"pipeline": "p"}, "order_by": ["created"], "descending": True, "limit": 2},
    ]
    for query in queries:
        expected = through_spark.read(**query)
        if "order_by" not in query:  # Spark's order without one is arbitrary
            expected.sort(key=lambda row: row["key"])
        got = local.read(**query)
        if "order_by" not in query:
            got.sort(key=lambda row: row["key"])
        assert got == expected, query
    assert sorted(local.read(), key=lambda row: row["key"]) == sorted(ROWS, key=lambda r: r["key"])
    created = local.read({"key": "b"})[0]["created"]
    assert created == ROWS[0]["created"] and created.tzinfo == timezone.utc


def test_a_table_of_an_earlier_layout_reads_here_with_its_later_columns_null(spark, tmp_path):
    path = tmp_path / "odibi_cache"
    spark.sql(f"CREATE TABLE delta.`{path}` (pipeline string, key string) USING DELTA")
    spark.sql(f"INSERT INTO delta.`{path}` VALUES ('p', 'a')")

    local = DeltaStateTable(_ref(path), COLUMNS, spark_provider=_no_spark).read()
    assert local == _SparkOnly(_ref(path), COLUMNS, spark_provider=lambda: spark).read()
    for where, count in (({"hits": None}, 1), ({"hits": 1}, 0), ({"key": "a", "fresh": None}, 1)):
        got = DeltaStateTable(_ref(path), COLUMNS, spark_provider=_no_spark).read(where)
        assert got == _SparkOnly(_ref(path), COLUMNS, spark_provider=lambda: spark).read(where)
        assert len(got) == count, where
    assert local == [{"pipeline": "p", "key": "a", "created": None, "hits": None,
                      "share": None, "fresh": None}]  # fmt: skip
