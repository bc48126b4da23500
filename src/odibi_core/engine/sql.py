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
- ``CAST`` of a fractional number to an integer type truncates (Spark) instead of
  rounding (DuckDB); text casts to an integer type only from a whole number (``'1.5'``
  raises CAST_INVALID_INPUT); a timestamp cast to a string has no ``+00`` suffix.
- ``substr(s, 0, n)`` starts at the first character and a negative length gives ``''``.
- ``to_utc_timestamp``/``from_utc_timestamp`` read and shift wall-clock time as Spark does.
- ``LIKE`` takes ``\\`` as its escape character, as Spark does by default.
- ``ln``/``log`` of zero or a negative number is NULL, not ``-inf`` or NaN.
- ``unix_timestamp`` returns BIGINT whole seconds, for strings and timestamps alike.
- Datetime patterns (``date_format``, ``to_timestamp``, ...) map Spark's letters to
  DuckDB's; a pattern with letters DuckDB cannot format the same way is refused with a
  message suggesting ``engine: spark``.

Where types matter (the casts, ``unix_timestamp``) the columns' types come from the
inputs' schemas (``column_types``), through sqlglot's type annotation.

Query hints (``/*+ BROADCAST(t) */``) are dropped for DuckDB.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, SqlglotError
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.qualify import qualify
from sqlglot.tokens import TokenType

from odibi_core.core.errors import EngineError

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


def to_duckdb(
    spark_sql: str,
    *,
    step: str | None = None,
    column_types: Mapping[str, Mapping[str, str]] | None = None,
) -> str:
    """Translate one Spark SQL statement to DuckDB SQL with Spark's semantics.

    ``column_types`` maps each input table to ``{column: SQL type}`` (e.g. ``DOUBLE``);
    without it only literals' types are known, and a cast of a column is left as written.

    Raises ``EngineError`` (not retryable) when the text does not parse as Spark SQL or
    uses something DuckDB cannot express.
    """
    tree = parse_query(spark_sql, step=step)
    # Hints steer Spark's planner and mean nothing to DuckDB.
    for hint in list(tree.find_all(exp.Hint)):
        hint.pop()
    _keep_spark_semantics(tree, step=step, column_types=column_types or {})
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


def _keep_spark_semantics(
    tree: exp.Expression,
    *,
    step: str | None = None,
    column_types: Mapping[str, Mapping[str, str]] | None = None,
) -> None:
    """Rewrite ``tree`` in place so DuckDB computes what Spark would."""
    # sqlglot reads Spark's CAST as a null-on-failure cast (Spark's legacy, non-ANSI mode);
    # under ANSI, Spark 4's default, a bad CAST raises. Only TRY_CAST returns null.
    for node in list(tree.find_all(exp.TryCast)):
        if not node.args.get("safe"):
            node.replace(
                exp.Cast(this=node.this, to=node.args["to"], format=node.args.get("format"))
            )
    _check_datetime_patterns(tree, step)
    typed = _operand_types(tree, column_types or {})
    _keep_spark_casts(tree, typed)
    _keep_spark_unix_timestamp(tree, typed)
    _keep_spark_substr(tree)
    _keep_spark_time_zones(tree)
    _keep_spark_like_escape(tree)
    _keep_spark_logarithms(tree)
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


# --------------------------------------------------------------------------- operand types

_INTEGRAL = {exp.DataType.Type.TINYINT, exp.DataType.Type.SMALLINT, exp.DataType.Type.INT}
_INTEGRAL |= {exp.DataType.Type.BIGINT}
_TIMESTAMPS = {
    exp.DataType.Type.TIMESTAMP,
    exp.DataType.Type.TIMESTAMPTZ,
    exp.DataType.Type.TIMESTAMPLTZ,
    exp.DataType.Type.TIMESTAMPNTZ,
}
_OPERAND_KEY = "odibi_operand"


def _typed_nodes(tree: exp.Expression) -> list[exp.Expression]:
    """Nodes whose rewrite depends on their operand's type."""
    casts = [
        node
        for node in tree.find_all(exp.Cast, exp.TryCast)
        if node.to.this in _INTEGRAL or node.to.is_type(*exp.DataType.TEXT_TYPES)
    ]
    return casts + list(tree.find_all(exp.StrToUnix))


def _operand_types(
    tree: exp.Expression, column_types: Mapping[str, Mapping[str, str]]
) -> dict[int, exp.DataType]:
    """``id(node) -> type of node.this`` for the nodes of ``_typed_nodes``, where known.

    sqlglot's qualifier and type annotation run on a copy, so the query DuckDB gets is
    the user's, not the optimizer's version of it.
    """
    nodes = _typed_nodes(tree)
    if not nodes:
        return {}
    for position, node in enumerate(nodes):
        node.meta[_OPERAND_KEY] = position
    copy = tree.copy()
    for node in nodes:
        node.meta.pop(_OPERAND_KEY, None)
    schema = {table: dict(columns) for table, columns in column_types.items()}
    # Should qualifying fail, literals are still typed below; columns stay unknown.
    with contextlib.suppress(Exception):  # best effort: the query itself is not changed
        copy = qualify(copy, schema=schema, dialect="spark", validate_qualify_columns=False)
    try:
        annotate_types(copy, schema=schema, dialect="spark")
    except Exception:  # best effort: without types, casts are left as written
        return {}
    found: dict[int, exp.DataType] = {}
    for node in copy.walk():
        position = node.meta.get(_OPERAND_KEY) if node._meta else None  # noqa: SLF001
        if position is not None and node.this is not None and node.this.type is not None:
            found[id(nodes[position])] = node.this.type
    return found


def _keep_spark_casts(tree: exp.Expression, typed: Mapping[int, exp.DataType]) -> None:
    """Spark truncates a fractional number cast to an integer type; DuckDB rounds.

    A timestamp cast to a string reads ``2024-01-05 08:30:00`` in Spark; DuckDB's
    TIMESTAMPTZ would add ``+00``, so it is cast to a plain TIMESTAMP first (UTC).
    """
    for node in list(tree.find_all(exp.Cast, exp.TryCast)):
        operand = typed.get(id(node))
        if operand is None:
            continue
        if node.to.this in _INTEGRAL and operand.is_type(*exp.DataType.REAL_TYPES):
            node.set("this", exp.Anonymous(this="TRUNC", expressions=[node.this]))
        elif node.to.this in _INTEGRAL and operand.is_type(*exp.DataType.TEXT_TYPES):
            node.set("this", _spark_integer_text(node.this, node.to, safe=node.args.get("safe")))
        elif node.to.is_type(*exp.DataType.TEXT_TYPES) and operand.this in _TIMESTAMPS:
            node.set("this", exp.Cast(this=node.this, to=exp.DataType.build("TIMESTAMP")))


def _spark_integer_text(
    text: exp.Expression, to: exp.DataType, *, safe: bool | None
) -> exp.Expression:
    """Only whole numbers (``' 7 '``, ``'+3'``) cast to an integer type in Spark.

    DuckDB also reads ``'1.5'`` (as 2), ``'1.0'`` and ``'1e2'``; Spark's CAST raises
    CAST_INVALID_INPUT for them and TRY_CAST gives NULL.
    """
    whole = exp.Anonymous(
        this="regexp_full_match",
        expressions=[text.copy(), exp.Literal.string(r"\s*[+-]?[0-9]+\s*")],
    )
    if safe:
        invalid: exp.Expression = exp.Null()
    else:
        target = to.sql(dialect="spark").upper()
        invalid = exp.Anonymous(
            this="error",
            expressions=[
                exp.func(
                    "concat",
                    exp.Literal.string("[CAST_INVALID_INPUT] The value '"),
                    text.copy(),
                    exp.Literal.string(
                        f'\' of the type "STRING" cannot be cast to "{target}" because '
                        "it is malformed. Correct the value as per the syntax, or change its "
                        "target type. Use `try_cast` to tolerate malformed input and return "
                        "NULL instead."
                    ),
                )
            ],
        )
    return exp.Case(ifs=[exp.If(this=exp.Not(this=whole), true=invalid)], default=text)


def _keep_spark_unix_timestamp(tree: exp.Expression, typed: Mapping[int, exp.DataType]) -> None:
    """``unix_timestamp`` gives BIGINT whole seconds (truncated toward zero, as Spark's
    integer division does), of a timestamp, a date or a string."""
    for node in list(tree.find_all(exp.StrToUnix)):
        operand = typed.get(id(node))
        value = node.this
        if isinstance(value, exp.CurrentTimestamp) or (
            operand is not None and (operand.this in _TIMESTAMPS or operand.this == _DATE)
        ):
            seconds: exp.Expression = exp.Anonymous(
                this="EPOCH",
                expressions=[exp.Cast(this=value, to=exp.DataType.build("TIMESTAMPTZ"))],
            )
            node.replace(_whole_seconds(seconds))
            continue
        if node.args.get("format") is None:
            node.set("format", exp.Literal.string("%Y-%m-%d %H:%M:%S"))
        _wrap(node, _whole_seconds)


_DATE = exp.DataType.Type.DATE


def _whole_seconds(seconds: exp.Expression) -> exp.Expression:
    truncated = exp.Anonymous(this="TRUNC", expressions=[seconds])
    return exp.Cast(this=truncated, to=exp.DataType.build("BIGINT"))


# --------------------------------------------------------------------------- functions


def _keep_spark_substr(tree: exp.Expression) -> None:
    """Spark reads position 0 as 1, and a negative length as 0 (DuckDB counts backwards)."""
    for node in list(tree.find_all(exp.Substring)):
        start = node.args.get("start")
        if start is not None:
            node.set("start", _if_then(start, exp.EQ, 0, exp.Literal.number(1)))
        length = node.args.get("length")
        if length is not None:
            node.set("length", _if_then(length, exp.LT, 0, exp.Literal.number(0)))


def _if_then(
    value: exp.Expression, comparison: type[exp.Binary], bound: int, then: exp.Expression
) -> exp.Expression:
    """``CASE WHEN value <comparison> bound THEN then ELSE value END``, folded for literals."""
    if isinstance(value, exp.Literal) and value.is_int:
        number = int(value.this)
        holds = number == bound if comparison is exp.EQ else number < bound
        return then if holds else value
    if isinstance(value, exp.Neg) and isinstance(value.this, exp.Literal):
        return then if comparison is exp.LT else value
    test = comparison(this=value.copy(), expression=exp.Literal.number(bound))
    return exp.Case(ifs=[exp.If(this=test, true=then)], default=value)


def _keep_spark_time_zones(tree: exp.Expression) -> None:
    """``to_utc_timestamp(ts, tz)`` reads ts as wall-clock time in tz and gives the instant;
    ``from_utc_timestamp(ts, tz)`` gives tz's wall-clock time at instant ts. Both are shown
    in UTC (the session time zone of both engines)."""
    for node in list(tree.find_all(exp.FromTimeZone)):
        wall_clock = exp.Cast(
            this=exp.Cast(this=node.this, to=exp.DataType.build("TIMESTAMPTZ")),
            to=exp.DataType.build("TIMESTAMP"),
        )
        node.replace(_timezone(node.args["zone"], wall_clock))
    for node in list(tree.find_all(exp.AtTimeZone)):
        instant = exp.Cast(this=node.this, to=exp.DataType.build("TIMESTAMPTZ"))
        node.replace(_timezone(exp.Literal.string("UTC"), _timezone(node.args["zone"], instant)))


def _timezone(zone: exp.Expression, value: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this="timezone", expressions=[zone, value])


def _keep_spark_like_escape(tree: exp.Expression) -> None:
    """Spark's LIKE treats ``\\`` as the escape character unless ESCAPE names another."""
    for node in list(tree.find_all(exp.Like, exp.ILike)):
        pattern = node.expression
        if isinstance(node.parent, exp.Escape) or isinstance(pattern, exp.Any | exp.All):
            continue
        if isinstance(pattern, exp.Literal) and "\\" not in pattern.this:
            continue
        _wrap(node, lambda inner: exp.Escape(this=inner, expression=exp.Literal.string("\\")))


def _keep_spark_logarithms(tree: exp.Expression) -> None:
    """Spark's ``ln``/``log`` of zero or a negative number is NULL (DuckDB: -inf, NaN)."""
    for node in list(tree.find_all(exp.Ln, exp.Log)):
        operands = [node.this] if isinstance(node, exp.Ln) else [node.this, node.expression]
        outside = [
            exp.LTE(this=operand.copy(), expression=exp.Literal.number(0))
            for operand in operands
            if operand is not None
        ]
        condition = outside[0] if len(outside) == 1 else exp.or_(*outside)
        _wrap(
            node,
            lambda inner, condition=condition: exp.Case(
                ifs=[exp.If(this=condition, true=exp.Null())], default=inner
            ),
        )


# --------------------------------------------------------------------------- datetime patterns

# sqlglot maps Spark's pattern letters to strftime codes when it parses; "strict" marks a
# zero-padded code. What is left over are letters it could not map.
_PATTERN_FUNCTIONS: dict[type[exp.Expression], str] = {
    exp.TimeToStr: "date_format",
    exp.UnixToStr: "from_unixtime",
    exp.StrToTime: "to_timestamp",
    exp.StrToUnix: "unix_timestamp",
    exp.StrToDate: "to_date",
    exp.TsOrDsToDate: "to_date",
}
_STRFTIME_CODE = re.compile(r"%-?[A-Za-z](?:strict)?")
_ZONE_CODE = re.compile(r"%[Zz]")


def _check_datetime_patterns(tree: exp.Expression, step: str | None) -> None:
    """Map Spark's ``SSS`` (milliseconds) and refuse what DuckDB would format differently."""
    for node in list(tree.find_all(*_PATTERN_FUNCTIONS)):
        pattern = node.args.get("format")
        if pattern is None:
            continue
        function = _PATTERN_FUNCTIONS[type(node)]
        if not (isinstance(pattern, exp.Literal) and pattern.is_string):
            raise _refused(step, function, "its pattern is not a plain string literal")
        text = pattern.this.replace("SSSSSS", "%f").replace("SSS", "%g")
        rest = _STRFTIME_CODE.sub("", text)
        leftover = sorted({char for char in rest if char.isalpha() or char == "'"})
        if leftover:
            raise _refused(
                step,
                function,
                f"its pattern uses {', '.join(map(repr, leftover))}, which the pandas engine "
                "cannot format as Spark does (quoted text and these letters are not mapped)",
            )
        if isinstance(node, exp.TimeToStr | exp.UnixToStr) and _ZONE_CODE.search(text):
            raise _refused(step, function, "its pattern prints a time zone (z or Z)")
        pattern.set("this", text)


def _refused(step: str | None, function: str, why: str) -> EngineError:
    return EngineError(
        f"{_where(step)}{function} cannot run on the pandas engine: {why}; "
        "run the step with engine: spark"
    )


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
