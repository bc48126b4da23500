"""The quality layer: a step's expectations, enforced on what the step hands on or writes.

It sits inside the tracking layer, so the tracker's after snapshot sees the rows a ``drop``
or ``quarantine`` rule left. The rules apply to a transform's or an ingest's output, and
to the data a store or publish step writes: those are checked before the node runs, so
nothing is committed when a rule fails.

- ``fail`` (and every table rule): the step fails, never retried, with the rule, its
  failing count and up to 5 failing rows (redacted as the run redacts samples).
- ``quarantine``: the rows go to the pipeline's quarantine table (exactly once per step
  and run) and leave the output.
- ``drop``: the rows leave the output; ``warn``: they stay. Both are counted.

On pandas every rule costs one DuckDB query together. On Spark ``warn``/``drop`` ride on
the action that runs anyway (an observation, settled after the run's actions, like the
tracker's counts); a step with any other rule runs one aggregation for all of its rules.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from typing import Any

from odibi_core.core.errors import QualityError, StepExecutionError
from odibi_core.core.expectations import Expectation, QualityResult, rule_columns
from odibi_core.core.snapshot import Redactor
from odibi_core.core.step import Step
from odibi_core.execution.runners import Runs, StepCall, StepRun

log = logging.getLogger(__name__)

FAILING_ROWS_SHOWN = 5
_REMOVING = ("drop", "quarantine")
_DEFERRED_REASON = "counted by the action that reads the output after the step; not settled yet"


@dataclass(frozen=True)
class Checked:
    """What the rules left of a frame, and what they found (counts may be deferred)."""

    frame: Any
    results: tuple[QualityResult, ...]
    pending: Any = None  # ObservedRules whose counts a later action fills


class QualityLayer:
    """Enforces each step's ``expectations`` and ``table_expectations``."""

    def __init__(self, inner: Runs, *, quarantine: Any, redactor: Redactor | None = None):
        self.inner = inner
        self.quarantine = quarantine  # a QuarantineTable, used only when rows are quarantined
        self.redactor = redactor or Redactor()
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[Step, Any]] = {}

    def __call__(self, call: StepCall) -> StepRun:
        step = call.step
        if not (step.expectations or step.table_expectations):
            return self.inner(call)
        if step.layer in ("store", "publish"):
            return self._checked_write(call)
        run = self.inner(call)
        logical = _checked_output(step, run.outputs)
        checked = self.check(call, run.outputs[logical])
        run.outputs[logical] = checked.frame
        if checked.pending is not None:
            with self._lock:
                self._pending[step.name] = (step, checked.pending)
        run.quality = checked.results
        return run

    def _checked_write(self, call: StepCall) -> StepRun:
        """A store or publish writes its input: the rules decide what, before the commit."""
        logical = next(iter(call.step.inputs))
        checked = self.check(call, call.inputs[logical])
        run = self.inner(replace(call, inputs={**call.inputs, logical: checked.frame}))
        if checked.pending is not None:  # the write was the action that filled it
            run.quality = _settled(call.step, checked.pending, 5.0)
        else:
            run.quality = checked.results
        return run

    def check(self, call: StepCall, frame: Any) -> Checked:
        step, engine = call.step, call.engine
        _raise_on_missing_columns(step, engine.schema(frame))
        if engine.name == "spark":
            return self._check_spark(call, frame)
        counts = PandasCounts.of(frame, step, engine)
        self.enforce(step, counts)
        return Checked(counts.kept_frame(), results_of(step, counts))

    def _check_spark(self, call: StepCall, frame: Any) -> Checked:
        from odibi_core.engine import quality_spark as rules

        step, removing = call.step, _removing(call.step)
        frame = call.engine.adopt(frame)
        if not _decided_before_commit(step):  # warn and drop only: ride on the next action
            name = f"odibi_{step.name}_quality"
            observed, pending = rules.observe_rules(frame, step.expectations, name)
            kept = rules.without_rows_breaking(observed, removing)
            return Checked(kept, _unknown(step, _DEFERRED_REASON), pending)
        counts = SparkCounts.of(frame, step, call.engine)
        self.enforce(step, counts)
        return Checked(rules.without_rows_breaking(frame, removing), results_of(step, counts))

    def settle(self, tracker: Any = None, timeout: float = 5.0) -> dict[str, list[dict]]:
        """The deferred Spark counts, per step, once the run's actions have run.

        A count is left empty, with the reason, where the tracker found that the action
        over the step's output did not read all of it.
        """
        with self._lock:
            pending, self._pending = self._pending, {}
        settled = {}
        for name, (step, observed) in pending.items():
            unread = _partial_read_reason(tracker, name) or _unfired_reason(observed)
            results = _unknown(step, unread) if unread else _settled(step, observed, timeout)
            settled[name] = [r.to_dict() for r in results]
        return settled

    def enforce(self, step: Step, counts: Any) -> None:
        """Fail on a broken ``fail`` rule or table rule; quarantine what must be."""
        results = results_of(step, counts)
        for rule, result in zip(_rules(step), results):
            if getattr(rule, "on_violation", "fail") == "fail" and result.failed:
                sample = counts.sample(rule, FAILING_ROWS_SHOWN) if _is_row_rule(rule) else []
                message = self._failure(rule, result, counts, sample)
                raise QualityError(step.name, message, results)
        quarantined = [r for r in step.expectations if r.on_violation == "quarantine"]
        if any(counts.failed.get(r.name) for r in quarantined):
            version = self.quarantine.append(counts.breaking(quarantined), step=step.name)
            log.info("step '%s': quarantined rows appended (version %s)", step.name, version)

    def _failure(self, rule: Any, result: QualityResult, counts: Any, sample: list) -> str:
        rows = self.redactor.apply(sample)
        # Names bare and values as repr: the run's scrubbing masks quoted text it does not
        # know as the pipeline's own, and the redacted columns are masked already.
        shown = "".join(
            "\n  " + ", ".join(f"{key}={value!r}" for key, value in row.items()) for row in rows
        )
        if _is_row_rule(rule):
            kind, what = "expectation", f"{result.failed} of {counts.rows} rows break it"
            fix = "or set its on_violation to warn, drop or quarantine"
        else:
            kind, fix = "table expectation", "or change the rule"
            what = (
                f"{result.failed} of the {counts.kept} rows kept repeat a key"
                if rule.kind == "unique"
                else f"the step's output has {counts.kept} rows"
            )
        first = f"; the first {len(rows)}:" if rows else ""
        return (
            f"{kind} '{rule.name}' ({rule.rule}) failed: {what}{first}{shown}\n"
            f"fix the data upstream, {fix}"
        )


class PandasCounts:
    """A pandas frame's rule flags from one DuckDB query, seen as counts."""

    def __init__(self, flags: Any, step: Step):
        self.flags = flags
        self._removing = [r.name for r in _removing(step)]
        self.rows = flags.rows
        self.kept = flags.kept_rows(self._removing)
        self.failed = {name: flags.failed(name) for name in (*flags.broken, *flags.repeated)}

    @classmethod
    def of(cls, frame: Any, step: Step, engine: Any) -> PandasCounts:
        from odibi_core.engine.quality_pandas import flag_rows

        flags = flag_rows(
            frame,
            step.expectations,
            step.table_expectations,
            removing=_removing(step),
            engine=engine,
            step=step.name,
        )
        return cls(flags, step)

    def sample(self, rule: Expectation, n: int) -> list[dict[str, Any]]:
        return self.flags.sample(rule.name, n)

    def breaking(self, rules: list[Expectation]) -> Any:
        from odibi_core.engine.quality_spark import BROKEN_RULES_COLUMN

        return self.flags.breaking([r.name for r in rules], BROKEN_RULES_COLUMN)

    def kept_frame(self) -> Any:
        return self.flags.without(self._removing)


class SparkCounts:
    """A Spark frame's counts from one aggregation over it."""

    def __init__(self, frame: Any, engine: Any, rows: int, kept: int, failed: dict[str, int]):
        self.frame, self.engine = frame, engine
        self.rows, self.kept, self.failed = rows, kept, failed

    @classmethod
    def of(cls, frame: Any, step: Step, engine: Any) -> SparkCounts:
        from odibi_core.engine.quality_spark import aggregate_rules

        rules = (step.expectations, step.table_expectations, _removing(step))
        return cls(frame, engine, *aggregate_rules(frame, *rules))

    def sample(self, rule: Expectation, n: int) -> list[dict[str, Any]]:
        from odibi_core.engine.quality_spark import failing_sample

        return failing_sample(self.frame, rule, n, self.engine)

    def breaking(self, rules: list[Expectation]) -> Any:
        from odibi_core.engine.quality_spark import rows_breaking

        return rows_breaking(self.frame, rules)


@dataclass(frozen=True)
class _Observed:
    rows: int
    kept: int
    failed: dict[str, int]


def results_of(step: Step, counts: Any) -> tuple[QualityResult, ...]:
    """Each rule's result. Row rules count all of the output's rows; table rules the rows
    the step hands on (those no ``drop`` or ``quarantine`` rule removed)."""
    results = []
    for rule in _rules(step):
        if _is_row_rule(rule):
            failed = counts.failed[rule.name]
            passed = counts.rows - failed
        elif rule.kind == "unique":
            failed = counts.failed[rule.name]
            passed = counts.kept - failed
        else:
            low = rule.kind == "min_rows"
            broken = counts.kept < rule.value if low else counts.kept > rule.value
            passed, failed = int(not broken), int(broken)
        action = getattr(rule, "on_violation", "fail")
        results.append(QualityResult(rule.name, rule.rule, action, passed, failed))
    return tuple(results)


def _rules(step: Step) -> list[Any]:
    return [*step.expectations, *step.table_expectations]


def _is_row_rule(rule: Any) -> bool:
    return isinstance(rule, Expectation)


def _removing(step: Step) -> list[Expectation]:
    return [r for r in step.expectations if r.on_violation in _REMOVING]


def _decided_before_commit(step: Step) -> bool:
    """Rules that must be known before the step commits: fail, quarantine, table rules."""
    strict = [r for r in step.expectations if r.on_violation in ("fail", "quarantine")]
    return bool(strict or step.table_expectations)


def _unknown(step: Step, reason: str) -> tuple[QualityResult, ...]:
    return tuple(
        QualityResult(r.name, r.rule, getattr(r, "on_violation", "fail"), None, None, reason)
        for r in _rules(step)
    )


def _unfired_reason(observed: Any) -> str | None:
    try:
        fired = observed.fired()
    except Exception as exc:  # noqa: BLE001 - a missing count must not fail the run
        return f"the observation could not be read: {exc}"
    return None if fired else "no action ran over this output, so its rules were never counted"


def _settled(step: Step, observed: Any, timeout: float) -> tuple[QualityResult, ...]:
    """Results from an observation: only warn and drop rules are observed."""
    rows, failed, reason = observed.get(timeout)
    if reason is not None or rows is None:
        return _unknown(step, reason or "no action read the output")
    return results_of(step, _Observed(rows, rows, failed))


def _partial_read_reason(tracker: Any, step_name: str) -> str | None:
    record = tracker.get(step_name) if tracker is not None else None
    after = getattr(record, "after_snapshot", None)
    if after is None or after.row_count is not None or after.count_source != "unavailable":
        return None
    return after.count_reason or "the action over the output did not read all of it"


def _checked_output(step: Step, outputs: dict[str, Any]) -> str:
    """The output the rules check: ``data`` when the step has one, else its only output."""
    if "data" in outputs or len(outputs) == 1:
        return "data" if "data" in outputs else next(iter(outputs))
    raise StepExecutionError(
        step.name,
        f"its quality rules check the output 'data' or the step's only output, but it has "
        f"{', '.join(outputs) or 'none'}; name the output to check 'data'",
    )


def _raise_on_missing_columns(step: Step, schema: list[str]) -> None:
    """A rule naming a column the output lacks fails the step with a clear message."""
    names = sorted(entry.split(":", 1)[0].strip() for entry in schema)
    have = {name.lower() for name in names}
    for rule in _rules(step):
        if _is_row_rule(rule):
            kind, named = "expectation", sorted(rule_columns(rule.rule)[0])
        else:
            kind, named = "table expectation", list(rule.value) if rule.kind == "unique" else []
        missing = [column for column in named if column.lower() not in have]
        if missing:
            raise StepExecutionError(
                step.name,
                f"{kind} '{rule.name}' ({rule.rule}) names {', '.join(missing)}, which the "
                f"output lacks (it has {', '.join(names)}); fix the rule or the step's output",
            )
