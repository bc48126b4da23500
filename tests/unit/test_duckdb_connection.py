"""The isolated DuckDB connection: reused for speed, but never with anything a previous
user registered or created still in it."""

import duckdb
import pyarrow as pa
import pytest

from odibi_core.engine import duckdb_connection
from odibi_core.engine.duckdb_connection import isolated_duckdb


@pytest.fixture(autouse=True)
def empty_pool(monkeypatch):
    monkeypatch.setattr(duckdb_connection, "_idle", {})


def _visible(connection):
    rows = connection.execute(
        "SELECT view_name FROM duckdb_views() WHERE NOT internal "
        "UNION ALL SELECT table_name FROM duckdb_tables()"
    ).fetchall()
    return sorted(name for (name,) in rows)


def test_a_reused_connection_sees_only_its_own_tables_in_utc():
    with isolated_duckdb({"first": pa.table({"a": [1]})}) as connection:
        assert _visible(connection) == ["first"]
        used = connection
    with isolated_duckdb({"second": pa.table({"b": [2]})}) as connection:
        assert connection is used  # taken from the pool, not opened again
        assert _visible(connection) == ["second"]
        with pytest.raises(duckdb.CatalogException):
            connection.execute("SELECT * FROM first").fetchall()
        assert connection.execute("SELECT current_setting('TimeZone')").fetchall() == [("UTC",)]


def test_a_connection_left_holding_a_view_or_a_failure_is_closed_not_reused():
    with isolated_duckdb({}) as connection:
        connection.execute("CREATE VIEW kept AS SELECT 1 AS x")
        left_with_view = connection
    with pytest.raises(duckdb.Error), isolated_duckdb({}) as connection:
        failed = connection
        connection.execute("SELECT * FROM nowhere")
    for closed in (left_with_view, failed):
        with pytest.raises(duckdb.ConnectionException):
            closed.execute("SELECT 1")
    with isolated_duckdb({}) as connection:
        assert connection not in (left_with_view, failed)
        assert _visible(connection) == []


def test_a_thread_limit_gets_connections_of_its_own():
    with isolated_duckdb({}, threads=1) as limited:
        assert limited.execute("SELECT current_setting('threads')").fetchall() == [(1,)]
    with isolated_duckdb({}) as unlimited:
        assert unlimited is not limited
    with isolated_duckdb({}, threads=1) as again:
        assert again is limited
