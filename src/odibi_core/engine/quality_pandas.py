"""A step's quality rules on the pandas engine: one DuckDB query for all of them.

The rules are Spark SQL; they are put into one Spark SQL query, which ``to_duckdb``
translates with Spark's semantics kept, and DuckDB computes every rule's flag per row (and,
for each ``unique`` rule, whether a row repeats an earlier key) in a single pass. Counts,
failing rows and what is kept follow from the flags in memory, without another query; the
rows stay an Arrow table, as the engine holds them between steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from sqlglot import exp

from odibi_core.core.errors import EngineError
from odibi_core.core.expectations import Expectation, TableExpectation
from odibi_core.engine.pandas_engine import sql_types
from odibi_core.engine.schema import json_safe_rows
from odibi_core.engine.sql import to_duckdb

_TABLE = "odibi_checked"
_POSITION = "odibi_row_position"


def rule_flag_sql(rule: str) -> exp.Expression:
    """``NOT coalesce((rule), false)``: true where a row breaks the rule (false or null)."""
    condition = exp.maybe_parse(rule, dialect="spark")
    return exp.not_(exp.func("coalesce", exp.paren(condition), exp.false()))


@dataclass(frozen=True)
class PandasFlags:
    """Per row, whether it breaks each row rule; per unique rule, whether its key repeats."""

    table: pa.Table
    broken: dict[str, np.ndarray]  # rule name -> bool per row
    repeated: dict[str, np.ndarray]  # unique rule name -> bool per row (beyond the first)

    @property
    def rows(self) -> int:
        return self.table.num_rows

    def kept_rows(self, removing: Sequence[str]) -> int:
        return int(self.rows - self.rows_breaking(removing).sum())

    def failed(self, name: str) -> int:
        flags = self.broken.get(name)
        return int((flags if flags is not None else self.repeated[name]).sum())

    def rows_breaking(self, names: Sequence[str]) -> np.ndarray:
        mask = np.zeros(self.rows, dtype=bool)
        for name in names:
            mask |= self.broken[name]
        return mask

    def sample(self, name: str, n: int) -> list[dict[str, Any]]:
        rows = self.table.filter(pa.array(self.rows_breaking([name]))).slice(0, n)
        return json_safe_rows(rows.to_pylist())

    def without(self, names: Sequence[str]) -> pa.Table:
        return self.table.filter(pa.array(~self.rows_breaking(names)))

    def breaking(self, names: Sequence[str], column: str) -> pa.Table:
        """The rows that break any of ``names``, with ``column`` listing the names each
        breaks."""
        mask = self.rows_breaking(names)
        which = [[n for n in names if self.broken[n][i]] for i in np.flatnonzero(mask)]
        rows = self.table.filter(pa.array(mask))
        return rows.append_column(column, pa.array(which, type=pa.list_(pa.string())))


def flag_rows(
    frame: Any,
    rules: Sequence[Expectation],
    table_rules: Sequence[TableExpectation],
    *,
    removing: Sequence[Expectation] = (),
    engine: Any,
    step: str,
) -> PandasFlags:
    """Evaluate every rule over ``frame`` in one DuckDB query.

    ``unique`` rules look at the rows kept, those breaking none of ``removing``.
    """
    rows = engine.to_arrow(frame, step=step)
    table = rows.append_column(_POSITION, pa.array(np.arange(len(rows), dtype=np.int64)))
    columns = [exp.column(_POSITION)]
    columns += [rule_flag_sql(r.rule).as_(f"q{i}") for i, r in enumerate(rules)]
    uniques = [t for t in table_rules if t.kind == "unique"]
    kept = exp.not_(exp.or_(exp.false(), *[rule_flag_sql(r.rule) for r in removing]))
    columns += [_repeats_sql(t.value, kept).as_(f"u{i}") for i, t in enumerate(uniques)]
    query = exp.select(*columns).from_(_TABLE).order_by(_POSITION).sql(dialect="spark")
    types = {_TABLE: sql_types(table.schema)}
    flags = _run_duckdb(to_duckdb(query, step=step, column_types=types), table, step, engine)
    return PandasFlags(
        table=rows,
        broken={r.name: _bools(flags, f"q{i}") for i, r in enumerate(rules)},
        repeated={t.name: _bools(flags, f"u{i}") for i, t in enumerate(uniques)},
    )


def _repeats_sql(keys: Sequence[str], kept: exp.Expression) -> exp.Expression:
    """True on each kept row after the first kept row of its key (nulls are one key, as
    in GROUP BY)."""
    window = exp.Window(
        this=exp.func("row_number"),
        partition_by=[exp.paren(kept.copy()), *[exp.column(k, quoted=True) for k in keys]],
        order=exp.Order(expressions=[exp.Ordered(this=exp.column(_POSITION))]),
    )
    return exp.and_(kept.copy(), exp.GT(this=window, expression=exp.Literal.number(1)))


def _bools(flags: pa.Table, column: str) -> np.ndarray:
    return flags.column(column).to_numpy(zero_copy_only=False).astype(bool)


def _run_duckdb(duckdb_sql: str, table: pa.Table, step: str, engine: Any) -> pa.Table:
    import duckdb

    try:
        with engine.duckdb({_TABLE: table}) as connection:
            return connection.sql(duckdb_sql).to_arrow_table()
    except duckdb.Error as exc:
        raise EngineError(
            f"step '{step}': the quality rules could not be evaluated: {exc}\n"
            f"DuckDB SQL (translated from the rules' Spark SQL): {duckdb_sql}"
        ) from exc
