"""Spark SQL text, parsed with sqlglot: translated to DuckDB, or rewritten for Spark views.

Spark SQL is the one dialect users write. The pandas engine runs it on DuckDB through
``to_duckdb``; the Spark engine runs it as is, after ``rewrite_table_names`` has pointed
each logical input at a temp view private to one execution.

``to_duckdb`` keeps Spark's (ANSI) semantics where DuckDB differs by default:

- ``/``, ``div`` and ``%`` by zero raise ``DIVIDE_BY_ZERO`` on both engines (Spark's ANSI
  behaviour), unless the dividend is NULL, which gives NULL as in Spark;
  ``try_divide(a, b)`` returns NULL on both.
- Functions that return INT in Spark (``year``, ``datediff``, ``length``, ``row_number``,
  ...) are cast to INTEGER, since DuckDB returns BIGINT.
- ``date_add``/``date_sub``/``add_months`` return DATE, not TIMESTAMP.
- ``dayofweek`` counts Sunday as 1, as Spark does.

Query hints (``/*+ BROADCAST(t) */``) are dropped for DuckDB.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, SqlglotError
from sqlglot.tokens import TokenType

from odibi_core.errors import EngineError

DIVIDE_BY_ZERO_MESSAGE = (
    "[DIVIDE_BY_ZERO] Division by zero. Use try_divide to tolerate divisor being 0 "
    "and return NULL instead"
)

# Spark returns INT for these; DuckDB returns BIGINT.
_SPARK_INT_FUNCTIONS: tuple[type[exp.Expression], ...] = (
    exp.Year,
    exp.Month,
    exp.Day,
    exp.DayOfMonth,
    exp.DayOfYear,
    exp.Quarter,
    exp.WeekOfYear,
    exp.Hour,
    exp.Minute,
    exp.Second,
    exp.DateDiff,
    exp.Length,
    exp.StrPosition,
    exp.ArraySize,
)
_SPARK_INT_WINDOW_FUNCTIONS: tuple[type[exp.Expression], ...] = (
    exp.RowNumber,
    exp.Rank,
    exp.DenseRank,
    exp.Ntile,
)
# Spark returns DATE for these; DuckDB's date + interval gives TIMESTAMP.
_SPARK_DATE_FUNCTIONS: tuple[type[exp.Expression], ...] = (
    exp.TsOrDsAdd,
    exp.DateAdd,
    exp.DateSub,
    exp.AddMonths,
)


def to_duckdb(spark_sql: str, *, step: str | None = None) -> str:
    """Translate one Spark SQL statement to DuckDB SQL with Spark's semantics.

    Raises ``EngineError`` (not retryable) when the text does not parse as Spark SQL or
    uses something DuckDB cannot express.
    """
    tree = parse_query(spark_sql, step=step)
    # Hints steer Spark's planner and mean nothing to DuckDB.
    for hint in list(tree.find_all(exp.Hint)):
        hint.pop()
    _keep_spark_semantics(tree)
    try:
        return tree.sql(dialect="duckdb", unsupported_level=ErrorLevel.RAISE)
    except SqlglotError as exc:
        reason = str(exc).rstrip(". ")
        raise EngineError(
            f"{_where(step)}this Spark SQL cannot be translated to DuckDB: {reason}; "
            f"run the step with engine: spark. SQL: {spark_sql}"
        ) from exc


def rewrite_table_names(
    spark_sql: str, mapping: Mapping[str, str], *, step: str | None = None
) -> str:
    """Point unqualified references to logical inputs at the views in ``mapping``.

    Names match case-insensitively. A CTE with the same name as an input shadows it, so
    references that resolve to the CTE are left alone. A replaced table keeps its old
    name as alias, so ``input.col`` still resolves.

    The query is parsed with sqlglot, but only the table names are replaced in the text:
    everything else reaches Spark exactly as written, including syntax that sqlglot
    would not print back faithfully.
    """
    wanted = {name.lower(): view for name, view in mapping.items()}
    # Databricks' dialect is Spark's plus its extensions (e.g. `col:path` JSON access).
    tree = parse_query(spark_sql, step=step, dialect="databricks")
    edits: list[tuple[int, int, str]] = []  # (start, end exclusive, replacement)
    for table in tree.find_all(exp.Table):
        if table.args.get("db") or table.args.get("catalog"):
            continue
        identifier = table.this
        if not isinstance(identifier, exp.Identifier) or table.find_ancestor(exp.Hint):
            continue
        name = identifier.name.lower()
        if name not in wanted or _shadowed_by_cte(table, name):
            continue
        start, end = identifier.meta["start"], identifier.meta["end"] + 1
        edits.append((start, end, wanted[name]))
        if table.args.get("alias") is None:
            alias_at = _end_of_sample(spark_sql, end) if table.args.get("sample") else end
            edits.append((alias_at, alias_at, f" AS {spark_sql[start:end]}"))
    for start, end, replacement in sorted(edits, key=lambda edit: edit[0], reverse=True):
        spark_sql = spark_sql[:start] + replacement + spark_sql[end:]
    return spark_sql


def _end_of_sample(spark_sql: str, position: int) -> int:
    """Where ``TABLESAMPLE (...)`` after ``position`` ends: Spark wants the alias after it."""
    depth = 0
    for token in sqlglot.tokenize(spark_sql[position:], read="spark"):
        if token.token_type == TokenType.L_PAREN:
            depth += 1
        elif token.token_type == TokenType.R_PAREN:
            depth -= 1
            if depth == 0:
                return position + token.end + 1
    return position


def parse_query(
    spark_sql: str, *, step: str | None = None, dialect: str = "spark"
) -> exp.Expression:
    """Parse exactly one Spark SQL query (SELECT, set operation or VALUES).

    Raises ``EngineError`` (not retryable) otherwise: a step's SQL describes its output,
    so statements such as CREATE, INSERT or DROP are refused.
    """
    try:
        statements = [s for s in sqlglot.parse(spark_sql, read=dialect) if s is not None]
    except SqlglotError as exc:
        raise EngineError(
            f"{_where(step)}the SQL does not parse as Spark SQL: {exc}. SQL: {spark_sql}"
        ) from exc
    if len(statements) != 1:
        raise EngineError(
            f"{_where(step)}expected exactly one SQL statement, found {len(statements)}; "
            "split the work into one step per statement"
        )
    tree = statements[0]
    if not isinstance(tree, exp.Query | exp.Values):
        kind = tree.key.upper()
        raise EngineError(
            f"{_where(step)}the SQL must be a query (SELECT ...), not a {kind} statement; "
            "a step's SQL describes its output, and a store step writes it"
        )
    return tree


def _keep_spark_semantics(tree: exp.Expression) -> None:
    """Rewrite ``tree`` in place so DuckDB computes what Spark would."""
    # sqlglot reads Spark's CAST as a null-on-failure cast (Spark's legacy, non-ANSI mode);
    # under ANSI, Spark 4's default, a bad CAST raises. Only TRY_CAST returns null.
    for node in list(tree.find_all(exp.TryCast)):
        if not node.args.get("safe"):
            node.replace(
                exp.Cast(this=node.this, to=node.args["to"], format=node.args.get("format"))
            )
    for node in list(tree.find_all(exp.DayOfWeek)):
        _wrap(
            node,
            lambda inner: exp.Cast(
                this=exp.Add(this=inner, expression=exp.Literal.number(1)),
                to=exp.DataType.build("INT"),
            ),
        )
    for node in list(tree.find_all(*_SPARK_INT_FUNCTIONS)):
        _wrap(node, lambda inner: exp.Cast(this=inner, to=exp.DataType.build("INT")))
    for node in list(tree.find_all(exp.Window)):
        if isinstance(node.this, _SPARK_INT_WINDOW_FUNCTIONS):
            _wrap(node, lambda inner: exp.Cast(this=inner, to=exp.DataType.build("INT")))
    for node in list(tree.find_all(*_SPARK_DATE_FUNCTIONS)):
        _wrap(node, lambda inner: exp.Cast(this=inner, to=exp.DataType.build("DATE")))
    # Innermost first, so an outer divisor's copies carry the inner guards. Guards go
    # last: they copy the divisor, and the copies must already hold the rewrites above.
    divisions = list(tree.find_all(exp.Div, exp.IntDiv, exp.Mod, bfs=False))
    for node in reversed(divisions):
        _raise_on_zero_divisor(node)


def _wrap(node: exp.Expression, build: Callable[[exp.Expression], exp.Expression]) -> None:
    placeholder = exp.Null()
    node.replace(placeholder)
    placeholder.replace(build(node))


def _raise_on_zero_divisor(node: exp.Binary) -> None:
    """``a / b`` becomes ``a / CASE WHEN b = 0 AND a IS NOT NULL THEN error(...) ELSE b END``.

    DuckDB gives infinity or NULL for a zero divisor; Spark under ANSI raises, except
    when the dividend is NULL (then the result is NULL, which DuckDB also gives).
    """
    dividend, divisor = node.this, node.expression
    zero_divisor = exp.EQ(this=divisor.copy(), expression=exp.Literal.number(0))
    dividend_present = exp.Not(this=exp.Is(this=dividend.copy(), expression=exp.Null()))
    guarded = exp.Case(
        ifs=[
            exp.If(
                this=exp.And(this=zero_divisor, expression=dividend_present),
                true=exp.Anonymous(
                    this="error", expressions=[exp.Literal.string(DIVIDE_BY_ZERO_MESSAGE)]
                ),
            )
        ],
        default=divisor.copy(),
    )
    node.set("expression", guarded)
    if isinstance(node, exp.Div):
        # Spark's parser marks `/` as "safe" (NULL on zero, the non-ANSI behaviour).
        node.set("safe", False)


def _shadowed_by_cte(table: exp.Table, name: str) -> bool:
    """True when a CTE named ``name`` is in scope at ``table``."""
    node: exp.Expression = table
    parent = node.parent
    while parent is not None:
        if isinstance(node, exp.CTE) and isinstance(parent, exp.With):
            ctes = parent.expressions
            position = ctes.index(node)
            visible = ctes[: position + 1] if parent.args.get("recursive") else ctes[:position]
            if any(cte.alias_or_name.lower() == name for cte in visible):
                return True
            # The query owning this WITH is passed over: its CTEs were just checked.
            node = parent.parent
            parent = node.parent if node is not None else None
            continue
        with_clause = parent.args.get("with_") or parent.args.get("with")
        if (
            isinstance(with_clause, exp.With)
            and with_clause is not node
            and any(cte.alias_or_name.lower() == name for cte in with_clause.expressions)
        ):
            return True
        node, parent = parent, parent.parent
    return False


def _where(step: str | None) -> str:
    return f"step '{step}': " if step else ""
