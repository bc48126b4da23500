"""The TPC-H benchmark's query files and its answer check (no JVM, no data)."""

from __future__ import annotations

import datetime
import decimal

import pandas as pd
import pytest
import sqlglot
from bench import tpch


def test_the_22_queries_parse_as_spark_sql_and_read_only_tpch_tables() -> None:
    # load_queries parses each file with sqlglot's spark dialect to find its tables.
    queries = tpch.load_queries()
    assert [q.name for q in queries] == [f"q{n:02d}" for n in range(1, 23)]
    assert queries[0].tables == ("lineitem",)  # q01
    assert queries[14].tables == ("lineitem", "supplier")  # q15: its CTE is no table
    assert set().union(*(q.tables for q in queries)) == set(tpch.TABLES)


def test_a_query_spark_cannot_parse_fails_loading(tmp_path) -> None:
    for n in range(1, 23):
        (tmp_path / f"q{n:02d}.sql").write_text("select 1 from lineitem")
    (tmp_path / "q07.sql").write_text("select from where lineitem")
    with pytest.raises(sqlglot.errors.ParseError):
        tpch.load_queries(tmp_path)


def _answer() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "n_name": ["FRANCE", "GERMANY", "BRAZIL"],
            "revenue": [decimal.Decimal("1234.5678"), decimal.Decimal("99.01"), None],
            "o_date": [datetime.date(1995, 1, 1), datetime.date(1996, 2, 3), None],
            "n": [3, 1, 2],
        }
    )


def test_a_reordered_right_answer_is_accepted() -> None:
    native = _answer()
    mine = native.iloc[[2, 0, 1]].reset_index(drop=True)
    mine["revenue"] = [None, 1234.5678 * (1 + 1e-9), 99.01]  # floats where decimals were
    mine["o_date"] = pd.to_datetime(mine["o_date"])  # timestamps where dates were
    assert tpch.difference(mine, native) is None


def test_a_changed_value_is_rejected_and_named() -> None:
    native = _answer()
    mine = native.copy()
    mine.loc[1, "revenue"] = decimal.Decimal("99.02")
    assert tpch.difference(mine, native) == ("sorted row 2, column revenue: 99.02 instead of 99.01")


def test_a_missing_row_or_renamed_column_is_rejected() -> None:
    native = _answer()
    assert tpch.difference(native.head(2), native) == "2 rows instead of 3"
    renamed = native.rename(columns={"n": "count"})
    assert "columns" in tpch.difference(renamed, native)
