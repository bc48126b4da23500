"""Which columns stay redacted as data flows through the steps.

``tracker.redact_columns`` names columns by pattern. A SQL step can hide a redacted value
under another name (``SELECT email AS contact``, ``upper(email) AS shout``), so each SQL
step's projections are followed with sqlglot: an output column whose expression reads a
redacted column is redacted too. A function step gives no lineage, so its outputs inherit
every derived name its inputs carry. The result is a set of derived column names per data
key, in DAG order. Pure: sqlglot only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from odibi_core.core.step import Step


def derived_redacted_columns(sql: str, redacted: Callable[[str], bool]) -> set[str]:
    """Lower-cased names of the columns ``sql`` computes from columns ``redacted`` accepts.

    Every projection of every SELECT in the query (CTEs and subqueries included) is
    followed until nothing new is found, so an alias of an alias is caught. Unparseable
    SQL yields nothing: the engine reports it, and name patterns still apply.
    """
    try:
        statements = [s for s in sqlglot.parse(sql, read="spark") if s is not None]
    except SqlglotError:
        return set()
    projections = [
        projection
        for statement in statements
        for select in statement.find_all(exp.Select)
        for projection in select.expressions
    ]
    found: set[str] = set()
    changed = True
    while changed:
        changed = False
        for projection in projections:
            name = projection.alias_or_name.lower()
            if not name or name == "*" or name in found:
                continue
            if any(redacted(c) or c in found for c in _value_columns(projection)):
                found.add(name)
                changed = True
    return found


def _value_columns(projection: exp.Expression) -> set[str]:
    """Columns whose values reach the projection's result (a ``count(x)`` carries none)."""
    names = set()
    for column in projection.find_all(exp.Column):
        if isinstance(column.this, exp.Star):
            continue
        if column.find_ancestor(exp.Count) is not None:
            continue
        names.add(column.name.lower())
    return names


@lru_cache(maxsize=256)  # a pipeline run again in one process parses its SQL once
def sql_identifiers(sql: str) -> frozenset[str]:
    """Column names and aliases a query mentions: names, never values."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="spark") if s is not None]
    except SqlglotError:
        return frozenset()
    names: set[str] = set()
    for statement in statements:
        names.update(c.name for c in statement.find_all(exp.Column) if c.name)
        names.update(a.alias for a in statement.find_all(exp.Alias) if a.alias)
    return frozenset(names)


def redaction_by_key(
    steps: Iterable[Step], is_redacted: Callable[[str], bool]
) -> dict[str, frozenset[str]]:
    """Derived redacted column names for each data key; ``steps`` in DAG order."""
    by_key: dict[str, frozenset[str]] = {}
    for step in steps:
        inherited: set[str] = set().union(*(by_key.get(k, frozenset()) for k in step.input_keys))
        derived = set(inherited)
        if step.kind == "sql" and isinstance(step.value, str):
            derived |= derived_redacted_columns(
                step.value, lambda c, known=frozenset(inherited): is_redacted(c) or c in known
            )
        for key in step.output_keys:
            by_key[key] = frozenset(derived)
    return by_key


def all_derived(by_key: Mapping[str, frozenset[str]]) -> frozenset[str]:
    return frozenset().union(*by_key.values()) if by_key else frozenset()
