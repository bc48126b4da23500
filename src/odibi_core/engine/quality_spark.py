"""A step's quality rules over a Spark DataFrame, counted without a pass of their own.

- ``warn`` and ``drop`` rules alone are counted by one ``DataFrame.observe`` (the row
  count and one sum per rule) on the output; the action that writes or hands it off anyway
  fills it, and ``ObservedCount`` reads it (on classic and Connect sessions alike).
- When a rule must be decided before the step commits (``fail``, ``quarantine``, and every
  table rule), one aggregation computes all of the step's counts together: ``count(*)``,
  one sum per row rule and one ``count(DISTINCT struct(keys))`` per ``unique`` rule.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any

from odibi_core.core.expectations import Expectation, TableExpectation
from odibi_core.engine.connect import is_connect
from odibi_core.engine.observed import ObservedCount

BROKEN_RULES_COLUMN = "_odibi_broken_rules"


def _flag(rule: str) -> Any:
    """True where a row breaks ``rule`` (it is false or null)."""
    from pyspark.sql import functions as F

    return F.expr(f"NOT coalesce(({rule}), false)")


def _broken_count(rule: str) -> Any:
    from pyspark.sql import functions as F

    return F.sum(F.when(_flag(rule), 1).otherwise(0))


class ObservedRules:
    """The per-rule counts an observation on the output collects, read once it fired."""

    def __init__(self, observation: Any, count: ObservedCount, names: Sequence[str]):
        self._observation = observation
        self._count = count
        self.names = tuple(names)

    def fired(self) -> bool:
        return self._count.fired()

    def get(self, timeout: float) -> tuple[int | None, dict[str, int | None], str | None]:
        """(rows, failed per rule, why they are unknown) once the action has finished."""
        rows = self._count.get(timeout)
        if rows is None:
            return None, dict.fromkeys(self.names), self._count.reason
        try:
            metrics = self._observation.get
        except Exception as exc:  # noqa: BLE001 - the count was read; the sums were not
            return rows, dict.fromkeys(self.names), f"the rule counts could not be read: {exc}"
        sums = {n: metrics.get(f"q{i}") for i, n in enumerate(self.names)}
        if any(value is None for value in sums.values()) and rows:
            reason = "the action that read the output passed on its row count only"
            return rows, dict.fromkeys(self.names), reason
        return rows, {n: int(v or 0) for n, v in sums.items()}, None


def observe_rules(frame: Any, rules: Sequence[Expectation], name: str) -> tuple[Any, ObservedRules]:
    """``frame`` with the row count and one sum per rule observed on the next action."""
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    plain = re.sub(r"\W", "_", name)
    observation_name = f"{plain}_rules_{uuid.uuid4().hex[:12]}"  # one per execution
    observation = Observation(observation_name)
    metrics = [_broken_count(r.rule).alias(f"q{i}") for i, r in enumerate(rules)]
    observed = frame.observe(observation, F.count(F.lit(1)).alias("rows"), *metrics)
    count = ObservedCount(observation, observation_name, connect=is_connect(frame))
    return observed, ObservedRules(observation, count, [r.name for r in rules])


def aggregate_rules(
    frame: Any,
    rules: Sequence[Expectation],
    table_rules: Sequence[TableExpectation],
    removing: Sequence[Expectation],
) -> tuple[int, int, dict[str, int]]:
    """One pass: the row count, the rows kept (breaking none of ``removing``), each row
    rule's failing rows, and each ``unique`` rule's repeated keys among the kept rows.

    Without a ``unique`` rule the pass is one job: an observation on a ``noop`` write, which
    reads the output once and shuffles nothing. A ``unique`` rule needs the keys shuffled,
    so the counts come from one aggregation (whose shuffle stages adaptive execution may
    run as jobs of their own).
    """
    from pyspark.sql import functions as F

    kept = ~_any_broken(removing)
    uniques = [t for t in table_rules if t.kind == "unique"]
    columns = [F.count(F.lit(1)).alias("rows"), F.sum(F.when(kept, 1).otherwise(0)).alias("kept")]
    columns += [_broken_count(r.rule).alias(f"q{i}") for i, r in enumerate(rules)]
    for i, rule in enumerate(uniques):
        key = F.struct(*[F.col(f"`{k}`") for k in rule.value])  # type: ignore[union-attr]
        columns.append(F.count_distinct(F.when(kept, key)).alias(f"u{i}"))
    row = _observed_pass(frame, columns) if not uniques else _aggregated(frame, columns)
    rows, kept_rows = int(row["rows"]), int(row["kept"] or 0)
    failed = {r.name: int(row[f"q{i}"] or 0) for i, r in enumerate(rules)}
    failed |= {t.name: kept_rows - int(row[f"u{i}"]) for i, t in enumerate(uniques)}
    return rows, kept_rows, failed


def _aggregated(frame: Any, columns: list[Any]) -> dict[str, Any]:
    return frame.agg(*columns).toArrow().to_pylist()[0]


def _observed_pass(frame: Any, columns: list[Any]) -> dict[str, Any]:
    from pyspark.sql import Observation

    observation = Observation(f"odibi_quality_pass_{uuid.uuid4().hex}")
    frame.observe(observation, *columns).write.format("noop").mode("overwrite").save()
    return dict(observation.get)  # the write has returned: the metrics are in


def _any_broken(rules: Sequence[Expectation]) -> Any:
    from pyspark.sql import functions as F

    broken = F.lit(False)
    for rule in rules:
        broken = broken | _flag(rule.rule)
    return broken


def without_rows_breaking(frame: Any, rules: Sequence[Expectation]) -> Any:
    """``frame`` without the rows that break any of ``rules``."""
    return frame.filter(~_any_broken(rules)) if rules else frame


def rows_breaking(frame: Any, rules: Sequence[Expectation]) -> Any:
    """The rows that break any of ``rules``, with the names of those they break."""
    from pyspark.sql import functions as F

    names = F.array_compact(F.array(*[F.when(_flag(r.rule), F.lit(r.name)) for r in rules]))
    return frame.withColumn(BROKEN_RULES_COLUMN, names).filter(F.size(BROKEN_RULES_COLUMN) > 0)


def failing_sample(frame: Any, rule: Expectation, n: int, engine: Any) -> list[dict[str, Any]]:
    """Up to ``n`` rows that break ``rule`` (an action, run only when the step fails)."""
    return engine.sample(frame.filter(_flag(rule.rule)), n)
