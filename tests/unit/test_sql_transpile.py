"""Spark SQL text: translation to DuckDB and rewriting of logical input names (no JVM)."""

from __future__ import annotations

import pytest

from odibi_core.core.errors import EngineError
from odibi_core.engine.sql import DIVIDE_BY_ZERO_MESSAGE, rewrite_table_names, to_duckdb

GUARD = f"ERROR('{DIVIDE_BY_ZERO_MESSAGE}')"


def guarded(dividend: str, divisor: str) -> str:
    return f"CASE WHEN {divisor} = 0 AND NOT {dividend} IS NULL THEN {GUARD} ELSE {divisor} END"


def test_division_raises_on_zero_like_spark_ansi():
    assert to_duckdb("SELECT a / b FROM t") == f"SELECT a / {guarded('a', 'b')} FROM t"


def test_integer_division_and_modulo_are_guarded_too():
    assert to_duckdb("SELECT a div b, a % b FROM t") == (
        f"SELECT a // {guarded('a', 'b')}, a % {guarded('a', 'b')} FROM t"
    )


def test_try_divide_returns_null_on_zero():
    assert to_duckdb("SELECT try_divide(a, b) FROM t") == (
        "SELECT CASE WHEN b <> 0 THEN a / b ELSE NULL END FROM t"
    )


def test_nested_divisions_guard_the_inner_divisor_inside_the_outer_guard():
    inner = f"b / {guarded('b', 'c')}"
    assert to_duckdb("SELECT a / (b / c) FROM t") == (
        f"SELECT a / {guarded('a', f'({inner})')} FROM t"
    )


def test_spark_int_functions_are_cast_to_int():
    assert to_duckdb("SELECT year(d), length(s), datediff(d2, d) FROM t") == (
        "SELECT CAST(YEAR(CAST(d AS DATE)) AS INT), CAST(LENGTH(s) AS INT), "
        "CAST(DATE_DIFF('DAY', CAST(d AS DATE), CAST(d2 AS DATE)) AS INT) FROM t"
    )


def test_ranking_windows_are_cast_to_int_and_nulls_sort_first_like_spark():
    assert to_duckdb("SELECT row_number() OVER (ORDER BY x) AS rn FROM t") == (
        "SELECT CAST(ROW_NUMBER() OVER (ORDER BY x NULLS FIRST) AS INT) AS rn FROM t"
    )


def test_date_add_returns_a_date_and_dayofweek_counts_sunday_as_one():
    assert to_duckdb("SELECT date_add(d, 3), dayofweek(d) FROM t") == (
        "SELECT CAST(CAST(d AS DATE) + INTERVAL 3 DAY AS DATE), "
        "CAST(DAYOFWEEK(CAST(d AS DATE)) + 1 AS INT) FROM t"
    )


def test_hints_are_dropped_for_duckdb():
    assert to_duckdb("SELECT /*+ BROADCAST(t) */ a FROM t") == "SELECT a FROM t"


def test_untranslatable_sql_fails_naming_the_step_and_the_way_out():
    with pytest.raises(EngineError) as caught:
        to_duckdb("SELECT array_sort(arr, (l, r) -> 0) FROM t", step="sort_arrays")
    message = str(caught.value)
    assert message.startswith("step 'sort_arrays': this Spark SQL cannot be translated to DuckDB")
    assert "does not support a comparator" in message
    assert "run the step with engine: spark" in message
    assert caught.value.retryable is False


def test_syntax_error_is_not_retryable_and_names_the_step():
    with pytest.raises(EngineError, match="step 'bad': the SQL does not parse as Spark SQL") as e:
        to_duckdb("SELECT FROM WHERE (", step="bad")
    assert e.value.retryable is False


def test_only_one_query_is_accepted():
    with pytest.raises(EngineError, match="expected exactly one SQL statement, found 2"):
        to_duckdb("SELECT 1; SELECT 2", step="two")
    with pytest.raises(EngineError, match="the SQL must be a query .*not a DROP statement"):
        rewrite_table_names("DROP TABLE data", {"data": "v"}, step="drop")


def test_rewrite_points_inputs_at_views_and_keeps_the_name_as_alias():
    rewritten = rewrite_table_names(
        "SELECT data.id, o.total FROM data JOIN orders o ON data.id = o.id",
        {"data": "odibi_data_1", "orders": "odibi_orders_2"},
    )
    assert rewritten == (
        "SELECT data.id, o.total FROM odibi_data_1 AS data JOIN odibi_orders_2 o ON data.id = o.id"
    )


def test_rewrite_matches_names_case_insensitively():
    assert rewrite_table_names("SELECT * FROM Data", {"DATA": "v1"}) == ("SELECT * FROM v1 AS Data")


def test_rewrite_leaves_a_cte_that_shadows_an_input_alone():
    rewritten = rewrite_table_names(
        "WITH data AS (SELECT * FROM data WHERE x > 1) SELECT * FROM data",
        {"data": "v1"},
    )
    assert rewritten == "WITH data AS (SELECT * FROM v1 AS data WHERE x > 1) SELECT * FROM data"


def test_rewrite_respects_cte_order_and_scope():
    rewritten = rewrite_table_names(
        "WITH a AS (SELECT * FROM b), b AS (SELECT 1 AS x) "
        "SELECT * FROM a UNION ALL SELECT * FROM b",
        {"b": "vb"},
    )
    # `b` inside the first CTE is defined later, so it is still the input.
    assert rewritten == (
        "WITH a AS (SELECT * FROM vb AS b), b AS (SELECT 1 AS x) "
        "SELECT * FROM a UNION ALL SELECT * FROM b"
    )


def test_rewrite_replaces_in_subqueries_and_ignores_qualified_names():
    rewritten = rewrite_table_names(
        "SELECT * FROM other.data WHERE id IN (SELECT id FROM data)", {"data": "v1"}
    )
    assert rewritten == "SELECT * FROM other.data WHERE id IN (SELECT id FROM v1 AS data)"


def test_rewrite_keeps_braces_in_literals():
    rewritten = rewrite_table_names("SELECT '{x}' AS s, '{}' AS t FROM data", {"data": "v1"})
    assert rewritten == "SELECT '{x}' AS s, '{}' AS t FROM v1 AS data"


def test_rewrite_changes_only_table_names_and_keeps_everything_else_as_written():
    query = (
        "SELECT /*+ BROADCAST(data) */ payload:customer.id AS cid -- Databricks JSON path\n"
        "FROM   `data`\nWHERE  x <=> 1"
    )
    assert rewrite_table_names(query, {"data": "v1"}) == (
        "SELECT /*+ BROADCAST(data) */ payload:customer.id AS cid -- Databricks JSON path\n"
        "FROM   v1 AS `data`\nWHERE  x <=> 1"
    )


def test_rewrite_puts_the_alias_after_a_tablesample_as_spark_requires():
    assert rewrite_table_names("SELECT * FROM data TABLESAMPLE (50 PERCENT)", {"data": "v1"}) == (
        "SELECT * FROM v1 TABLESAMPLE (50 PERCENT) AS data"
    )


def test_rewrite_returns_the_text_untouched_when_nothing_matches():
    query = "select  a  from   somewhere -- comment"
    assert rewrite_table_names(query, {"data": "v1"}) == query
