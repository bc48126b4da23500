"""Data quality expectations: rules a step's output must meet, and what their checks found.

A step lists row rules under ``expectations`` (a Spark SQL boolean expression and what to
do with the rows that break it) and table rules under ``table_expectations`` (row count
bounds and unique keys, which always fail the step). Both are parsed here, once, at the
edge; the execution layer enforces them and reports each as a ``QualityResult``.

Pure: no pandas or pyspark import.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from odibi_core.core.errors import did_you_mean

Action = Literal["warn", "drop", "fail", "quarantine"]
ACTIONS: tuple[str, ...] = get_args(Action)
TableKind = Literal["min_rows", "max_rows", "unique"]
TABLE_KINDS: tuple[str, ...] = get_args(TableKind)
_RULE_KEYS = ("rule", "on_violation")


@dataclass(frozen=True)
class Expectation:
    """A row rule: rows where ``rule`` is not true (false or null) break it."""

    name: str
    rule: str  # a Spark SQL boolean expression over the step's output columns
    on_violation: Action = "warn"

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "rule": self.rule, "on_violation": self.on_violation}


@dataclass(frozen=True)
class TableExpectation:
    """A table rule: ``min_rows``/``max_rows`` bound the row count, ``unique`` names keys."""

    name: str
    kind: TableKind
    value: int | tuple[str, ...]

    @property
    def rule(self) -> str:
        """The rule as text, e.g. ``min_rows 1`` or ``unique (order_id, line)``."""
        if self.kind == "unique":
            return f"unique ({', '.join(self.value)})"  # type: ignore[arg-type]
        return f"{self.kind} {self.value}"

    def to_dict(self) -> dict[str, Any]:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"name": self.name, "kind": self.kind, "value": value}


@dataclass(frozen=True)
class QualityResult:
    """What one rule's check found in one step execution.

    ``passed``/``failed`` count rows (for ``unique``: ``failed`` is the number of rows
    beyond the first of each key; for row-count bounds: 1 when the bound is broken). They
    are None where the action that counted did not read the whole output; ``reason``
    then says why.
    """

    name: str
    rule: str
    on_violation: str
    passed: int | None
    failed: int | None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "name": self.name,
            "rule": self.rule,
            "on_violation": self.on_violation,
            "passed": self.passed,
            "failed": self.failed,
        }
        if self.reason is not None and (self.passed is None or self.failed is None):
            row["reason"] = self.reason
        return row


def parse_expectations(raw: Any) -> tuple[tuple[Expectation, ...], list[str]]:
    """Row rules from ``{name: {rule: ..., on_violation: ...}}``, and every problem found."""
    if _typed(raw, Expectation):
        return tuple(raw), []
    if not isinstance(raw, Mapping):
        example = "expectations: {valid_amount: {rule: 'amount >= 0', on_violation: drop}}"
        return (), [f"'expectations' must be a mapping of rule name to rule, e.g. {example}"]
    rules, problems = [], []
    for name, spec in raw.items():
        rule = _parse_rule(name, spec, f"expectation '{name}'", problems)
        if rule is not None:
            rules.append(rule)
    return tuple(rules), problems


def _parse_rule(name: Any, spec: Any, where: str, problems: list[str]) -> Expectation | None:
    if isinstance(spec, str):  # the short form: name: "amount >= 0" (warn)
        spec = {"rule": spec}
    if not isinstance(name, str) or not name or not isinstance(spec, Mapping):
        problems.append(
            f"{where}: a rule is 'name: {{rule: <Spark SQL condition>, on_violation: "
            f"{'|'.join(ACTIONS)}}}', got {spec!r}"
        )
        return None
    before = len(problems)
    for key in spec:
        if key not in _RULE_KEYS:
            problems.append(
                f"{where}: unknown key '{key}'{did_you_mean(str(key), _RULE_KEYS)}; "
                f"a rule takes {', '.join(_RULE_KEYS)}"
            )
    rule = spec.get("rule")
    if not isinstance(rule, str) or not rule.strip():
        problems.append(f"{where}: 'rule' must be a Spark SQL condition such as 'amount >= 0'")
    elif (why := rule_columns(rule)[1]) is not None:
        problems.append(f"{where}: rule {rule!r} is no row condition: {why}")
    action = spec.get("on_violation", "warn")
    if action not in ACTIONS:
        problems.append(
            f"{where}: on_violation {action!r} is not one of {', '.join(ACTIONS)}"
            f"{did_you_mean(str(action), ACTIONS)}"
        )
    if len(problems) > before:
        return None
    return Expectation(name=name, rule=rule.strip(), on_violation=action)


def parse_table_expectations(raw: Any) -> tuple[tuple[TableExpectation, ...], list[str]]:
    """Table rules from ``{name: {min_rows: 1}}`` / ``{name: {unique: [cols]}}``."""
    if _typed(raw, TableExpectation):
        return tuple(raw), []
    if not isinstance(raw, Mapping):
        example = "table_expectations: {not_empty: {min_rows: 1}}"
        return (), [f"'table_expectations' must be a mapping of rule name to rule, e.g. {example}"]
    rules, problems = [], []
    for name, spec in raw.items():
        rule = _parse_table_rule(name, spec, f"table expectation '{name}'", problems)
        if rule is not None:
            rules.append(rule)
    return tuple(rules), problems


def _parse_table_rule(
    name: Any, spec: Any, where: str, problems: list[str]
) -> TableExpectation | None:
    allowed = ", ".join(TABLE_KINDS)
    if not isinstance(name, str) or not name or not isinstance(spec, Mapping) or len(spec) != 1:
        problems.append(
            f"{where}: a table rule is one of {allowed}, e.g. 'not_empty: {{min_rows: 1}}' "
            f"or 'one_per_id: {{unique: [id]}}', got {spec!r}"
        )
        return None
    ((kind, value),) = spec.items()
    if kind not in TABLE_KINDS:
        problems.append(
            f"{where}: unknown key '{kind}'{did_you_mean(str(kind), TABLE_KINDS)}; "
            f"a table rule is one of {allowed}"
        )
        return None
    if kind == "unique":
        return _unique_rule(name, value, where, problems)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        problems.append(f"{where}: {kind} must be a whole number of 0 or more, got {value!r}")
        return None
    return TableExpectation(name=name, kind=kind, value=value)


def _unique_rule(name: str, value: Any, where: str, problems: list[str]) -> TableExpectation | None:
    columns = [value] if isinstance(value, str) else value
    if (
        not isinstance(columns, Sequence)
        or not columns
        or not all(isinstance(c, str) and c for c in columns)
    ):
        problems.append(f"{where}: unique must list column names, e.g. unique: [order_id]")
        return None
    return TableExpectation(name=name, kind="unique", value=tuple(columns))


def _typed(raw: Any, cls: type) -> bool:
    """True for a list or tuple of rules already built in Python."""
    return (
        isinstance(raw, Sequence)
        and not isinstance(raw, str)
        and all(isinstance(item, cls) for item in raw)
    )


def expectation_problems(step: Any) -> list[str]:
    """Problems of a step's ``expectations`` and ``table_expectations`` as given."""
    problems = []
    if step.expectations:
        problems.extend(parse_expectations(step.expectations)[1])
    if step.table_expectations:
        problems.extend(parse_table_expectations(step.table_expectations)[1])
    names = [rule.name for rule in _rules_of(step)]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(
            f"rule name '{name}' is used twice; give each of the step's rules its own name"
        )
    return problems


def _rules_of(step: Any) -> list[Expectation | TableExpectation]:
    rows = step.expectations if isinstance(step.expectations, tuple) else ()
    tables = step.table_expectations if isinstance(step.table_expectations, tuple) else ()
    return [*rows, *tables]


def rule_columns(rule: str) -> tuple[frozenset[str], str | None]:
    """The columns a rule names, and why it is no row condition (None when it is one).

    A rule is one Spark SQL expression over a row: no statement, subquery, aggregate or
    window, since it is evaluated per row, inside an observation on Spark.
    """
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        tree = sqlglot.parse_one(rule, read="spark")
    except SqlglotError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return frozenset(), f"it does not parse as Spark SQL: {first}"
    if not isinstance(tree, exp.Condition):
        return frozenset(), "it must be a condition such as 'amount >= 0', not a statement"
    for kind, what in (
        (exp.Query, "a subquery"),
        (exp.AggFunc, "an aggregate"),
        (exp.Window, "a window function"),
    ):
        if tree.find(kind) is not None:
            return frozenset(), f"it holds {what}; a rule is a condition on one row"
    # ``a.b`` is field b of struct column a: the output must have a.
    return frozenset(c.parts[0].name for c in tree.find_all(exp.Column)), None
