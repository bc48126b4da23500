"""What each lifecycle event carries: the payload a hook receives, one ``TypedDict`` each.

A hook is called with one positional argument, the event's payload::

    from odibi_core.events.payloads import NodeComplete

    def alert_on_empty(event: NodeComplete) -> None:
        if event["row_count"] == 0:
            notify(f"{event['step_name']} wrote no rows in run {event['run_id']}")

    bus.register_hook("node_complete", alert_on_empty)

Every payload has the ``RunEvent`` keys (which run, and when the event fired) besides
its own. Keys of a ``total=False`` part may be missing; a key may be added in a later
version, never removed or renamed, so a hook should read only the keys it needs. Values
are JSON-safe (text, numbers, booleans, None, lists and dicts of them), with the run's
secret values masked. States (``status``) are the words of ``NodeState``: ``SUCCESS``,
``FAILED``, ``CACHED``, ``SKIPPED``, ...

``PAYLOADS`` maps each event name (``event_bus.events``) to its payload type.
"""

from __future__ import annotations

from typing import Literal, TypedDict

from odibi_core.events.bus import events

__all__ = [
    "PAYLOADS",
    "FinalStep",
    "NodeComplete",
    "NodeError",
    "NodeStart",
    "PipelineComplete",
    "PipelineError",
    "PipelineStart",
    "PlannedStep",
    "QualityCheck",
    "RunEvent",
]


class RunEvent(TypedDict):
    """The keys of every payload."""

    pipeline_name: str
    run_id: str  # the same across retried executions of one run
    execution_id: str  # this execution of the run: run id and attempt
    timestamp: str  # when the event fired: ISO 8601, UTC


class PlannedStep(TypedDict):
    """A step as ``pipeline_start`` lists it, in topological order."""

    step_name: str
    layer: str


class PipelineStart(RunEvent):
    """``pipeline_start``: the run begins."""

    start_time: str  # ISO 8601, UTC
    total_steps: int
    steps: list[PlannedStep]
    parameters: dict[str, object]  # the run's parameters, secret-looking ones as ***


class FinalStep(TypedDict):
    """A step as the closing event lists it, in topological order."""

    step_name: str
    status: str  # a NodeState word; SKIPPED for a step that never started
    duration_ms: int
    row_count: int | None  # None when not counted (or a Spark count never settled)


class PipelineComplete(RunEvent):
    """``pipeline_complete``: every selected step succeeded (or was cached)."""

    status: Literal["SUCCESS"]
    duration_ms: int
    nodes_executed: int
    success_count: int
    steps: list[FinalStep]


class PipelineError(RunEvent):
    """``pipeline_error``: the run failed; the rest as in ``pipeline_complete``."""

    status: Literal["FAILED"]
    duration_ms: int
    nodes_executed: int
    success_count: int
    steps: list[FinalStep]
    error_message: str
    failed_step: str  # the first step that failed
    failed_steps: list[str]
    skipped_steps: list[str]  # not run because a step they depend on failed


class NodeStart(RunEvent):
    """``node_start``: an attempt of a step begins (again on each retry)."""

    step_name: str
    layer: str
    attempt: int  # 1 on the first attempt
    start_time: str  # ISO 8601, UTC


class _NodeCompleteKeys(RunEvent):
    step_name: str
    layer: str
    status: str  # SUCCESS, or CACHED
    duration_ms: int
    row_count: int | None  # None while a Spark count is deferred to a later action
    attempts: int


class _QualityCheckKeys(TypedDict):
    name: str  # the rule's name in the step's expectations or table_expectations
    rule: str  # its SQL expression, or the table rule, e.g. "min_rows 1", "unique (id)"
    on_violation: str  # warn, drop, fail or quarantine
    # Rows that met it. None, with the reason, when the counting action did not read every
    # row; and in node_complete for a Spark step with only warn and drop rules, whose counts
    # ride on the next action (the lineage, audit and odibi_quality get them settled).
    passed: int | None
    # Rows that broke it; for unique, rows beyond the first of each key; for min_rows and
    # max_rows, 1 when the bound is broken.
    failed: int | None


class QualityCheck(_QualityCheckKeys, total=False):
    """One expectation of a step, as ``node_complete`` and the lineage carry it."""

    reason: str  # why passed and failed are None, when they are


class NodeComplete(_NodeCompleteKeys, total=False):
    """``node_complete``: a step succeeded. The keys below may be missing."""

    engine: str  # "pandas" or "spark"
    engine_reason: str | None  # why that engine, for engine: auto
    count_source: str  # where row_count comes from: a snapshot.CountSource word
    count_reason: str | None  # why the count is what it is, when it is not exact
    schema: list[str]  # ["column: arrow_type", ...]
    outputs: dict[str, str]  # output name -> data key
    quality: list[QualityCheck]  # one per expectation, in order; absent when it has none


class _NodeErrorKeys(RunEvent):
    step_name: str
    layer: str
    error_message: str  # redacted as the run's tracker settings say
    error_type: str  # the exception's class name, e.g. "AnalysisException"
    retry_count: int  # the attempt that failed, from 1
    will_retry: bool  # False: the step has failed for good
    duration_ms: int


class NodeError(_NodeErrorKeys, total=False):
    """``node_error``: an attempt of a step failed. The key below may be missing."""

    quality: list[QualityCheck]  # when a fail rule or a table rule failed the step: every rule


PAYLOADS: dict[str, type] = {
    events.PIPELINE_START: PipelineStart,
    events.PIPELINE_COMPLETE: PipelineComplete,
    events.PIPELINE_ERROR: PipelineError,
    events.NODE_START: NodeStart,
    events.NODE_COMPLETE: NodeComplete,
    events.NODE_ERROR: NodeError,
}
