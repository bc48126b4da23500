"""An in-memory DuckDB connection that sees only the tables it is given, in UTC.

The pandas engine runs its SQL steps and quality rules in one; a merge of rows held in this
process checks its keys in one. Nothing else is visible to the SQL: no Python variable is
looked up by name, and nothing a previous user of a reused connection saw is left in it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any


@contextmanager
def isolated_duckdb(tables: Mapping[str, Any], *, threads: int | None = None) -> Iterator[Any]:
    """A connection that sees ``tables`` (name -> Arrow table) and nothing else, in UTC,
    with at most ``threads`` threads when given.

    Opening an in-memory database costs more than a small query (about 20 ms against a few),
    so connections are kept for reuse: one goes back to the pool only when, the tables
    unregistered, it holds no view or table at all; one a statement failed on is closed.
    """
    connection = _take(threads)
    try:
        for name, table in tables.items():
            connection.register(name, table)
        yield connection
    except BaseException:
        connection.close()
        raise
    _give_back(connection, threads, tables)


_POOL_SIZE = 4
_idle: dict[int | None, list[Any]] = {}
_idle_lock = threading.Lock()


def _take(threads: int | None) -> Any:
    with _idle_lock:
        idle = _idle.get(threads)
        if idle:
            return idle.pop()
    import duckdb

    connection = duckdb.connect(":memory:")
    connection.execute("SET python_enable_replacements = false")
    connection.execute("SET TimeZone = 'UTC'")
    if threads:
        connection.execute(f"SET threads = {int(threads)}")
    return connection


def _give_back(connection: Any, threads: int | None, tables: Mapping[str, Any]) -> None:
    try:
        for name in tables:
            connection.unregister(name)
        left = connection.execute(
            "SELECT count(*) FROM (SELECT view_name FROM duckdb_views() WHERE NOT internal "
            "UNION ALL SELECT table_name FROM duckdb_tables())"
        ).fetchall()[0][0]  # fetchall: a result left half-read would block the next user
    except Exception:  # noqa: BLE001 - a connection in doubt is closed, never reused
        left = None
    with _idle_lock:
        idle = _idle.setdefault(threads, [])
        if left == 0 and len(idle) < _POOL_SIZE:
            idle.append(connection)
            return
    connection.close()


def quote_identifier(name: str) -> str:
    """``name`` as a DuckDB identifier: in double quotes, any inside doubled."""
    return '"' + name.replace('"', '""') + '"'
