"""An in-memory DuckDB connection that sees only the tables it is given, in UTC.

The pandas engine runs its SQL steps and quality rules in one; a merge of rows held in this
process checks its keys in one. Nothing else is visible to the SQL: no Python variable is
looked up by name.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any


@contextmanager
def isolated_duckdb(tables: Mapping[str, Any], *, threads: int | None = None) -> Iterator[Any]:
    """A connection that sees ``tables`` (name -> Arrow table) and nothing else, in UTC,
    with at most ``threads`` threads when given; closed on leaving."""
    import duckdb

    connection = duckdb.connect(":memory:")
    try:
        connection.execute("SET python_enable_replacements = false")
        connection.execute("SET TimeZone = 'UTC'")
        if threads:
            connection.execute(f"SET threads = {int(threads)}")
        for name, table in tables.items():
            connection.register(name, table)
        yield connection
    finally:
        connection.close()


def quote_identifier(name: str) -> str:
    """``name`` as a DuckDB identifier: in double quotes, any inside doubled."""
    return '"' + name.replace('"', '""') + '"'
