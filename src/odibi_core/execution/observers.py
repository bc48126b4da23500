"""Observers of an execution: the executor's callbacks, each turned into one kind of effect.

``TrackerObserver`` keeps the tracker's step records, ``ReleaseObserver`` frees data no
step needs any more, and ``EventObserver`` emits the EventBus events. Each is given the
frozen ``Execution`` and what it writes to, never the orchestrator; ``Observers`` calls
them in order. Every event payload carries ``pipeline_name``, ``run_id``, ``execution_id``
and ``timestamp`` besides the keys of its event (see DESIGN.md, "Event payloads").
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

from odibi_core.core import faults
from odibi_core.core.dag import DAG
from odibi_core.core.errors import QualityError
from odibi_core.core.step import NodeState, Step
from odibi_core.events.bus import EventBus
from odibi_core.execution.context import Execution
from odibi_core.execution.executor import ExecutionObserver, StepOutcome
from odibi_core.execution.messages import RunMessages
from odibi_core.execution.result import RunResult
from odibi_core.execution.store import DataStore, ReaderCount
from odibi_core.tracking.tracker import Tracker

log = logging.getLogger(__name__)


class Observers:
    """Fans each callback out to several observers, in the order given."""

    def __init__(self, observers: Sequence[ExecutionObserver]):
        self.observers = list(observers)

    def state_changed(self, step: Step, state: NodeState) -> None:
        log.debug("step %s -> %s", step.name, state.value)
        for observer in self.observers:
            observer.state_changed(step, state)

    def step_started(self, step: Step, attempt: int) -> None:
        for observer in self.observers:
            observer.step_started(step, attempt)

    def step_succeeded(
        self, step: Step, outcome: StepOutcome, attempts: int, duration_ms: int
    ) -> None:
        for observer in self.observers:
            observer.step_succeeded(step, outcome, attempts, duration_ms)

    def step_failed(
        self, step: Step, error: BaseException, attempt: int, will_retry: bool, duration_ms: int
    ) -> None:
        for observer in self.observers:
            observer.step_failed(step, error, attempt, will_retry, duration_ms)

    def step_skipped(self, step: Step, reason: str) -> None:
        for observer in self.observers:
            observer.step_skipped(step, reason)


class _Quiet:
    """Callbacks an observer does not need."""

    def state_changed(self, step: Step, state: NodeState) -> None:
        return None

    def step_started(self, step: Step, attempt: int) -> None:
        return None

    def step_succeeded(
        self, step: Step, outcome: StepOutcome, attempts: int, duration_ms: int
    ) -> None:
        return None

    def step_failed(
        self, step: Step, error: BaseException, attempt: int, will_retry: bool, duration_ms: int
    ) -> None:
        return None

    def step_skipped(self, step: Step, reason: str) -> None:
        return None


class TrackerObserver(_Quiet):
    """Opens, fails and skips the tracker's step records (the tracking layer finishes them),
    and keeps what a succeeded step's expectations counted."""

    def __init__(self, tracker: Tracker, messages: RunMessages):
        self.tracker = tracker
        self.messages = messages

    def step_started(self, step: Step, attempt: int) -> None:
        self.tracker.start_step(step)

    def step_succeeded(
        self, step: Step, outcome: StepOutcome, attempts: int, duration_ms: int
    ) -> None:
        quality = outcome.details.get("quality")
        if quality:  # the same rule results the node_complete event carries
            self.tracker.record_quality(step.name, quality)

    def step_failed(
        self, step: Step, error: BaseException, attempt: int, will_retry: bool, duration_ms: int
    ) -> None:
        message = self.messages.error_text(error, step.name)
        self.tracker.attempt_failed(step.name, message)
        if not will_retry:
            self.tracker.fail_step(step, message)
            quality = quality_of_failure(error)
            if quality:  # a broken fail rule: what every rule of the step counted
                self.tracker.record_quality(step.name, quality)

    def step_skipped(self, step: Step, reason: str) -> None:
        self.tracker.skip_step(step, reason)


class ReleaseObserver(_Quiet):
    """Tells the store when the last reader of a key has ended, in whatever state."""

    def __init__(self, store: DataStore, readers: ReaderCount):
        self.store = store
        self.readers = readers

    def _finished(self, step: Step) -> None:
        for key in self.readers.finished(step.input_keys):
            self.store.release(key)

    def step_succeeded(
        self, step: Step, outcome: StepOutcome, attempts: int, duration_ms: int
    ) -> None:
        self._finished(step)

    def step_failed(
        self, step: Step, error: BaseException, attempt: int, will_retry: bool, duration_ms: int
    ) -> None:
        if not will_retry:
            self._finished(step)

    def step_skipped(self, step: Step, reason: str) -> None:
        self._finished(step)


class EventObserver(_Quiet):
    """Emits ``node_*`` events as steps run, and ``pipeline_*`` events around the run."""

    def __init__(
        self,
        bus: EventBus,
        execution: Execution,
        messages: RunMessages,
        dag: DAG,
        settled_rows: Callable[[str], int | None] = lambda name: None,
    ):
        self.bus = bus
        self.execution = execution
        self.messages = messages
        self.dag = dag
        self.settled_rows = settled_rows
        self._lock = threading.Lock()
        self._step_rows: dict[str, dict[str, Any]] = {}

    def _emit(self, event: str, payload: dict[str, Any]) -> None:
        base = {
            "pipeline_name": self.execution.pipeline_name,
            "run_id": self.execution.run_id,
            "execution_id": self.execution.execution_id,
            "timestamp": datetime.now(timezone.utc).isoformat(),
        }
        self.bus.emit(event, {**base, **self.messages.mask(payload)})

    def pipeline_started(self, start: datetime) -> None:
        self._emit(
            "pipeline_start",
            {
                "start_time": start.isoformat(),
                "total_steps": len(self.dag),
                "steps": [{"step_name": s.name, "layer": s.layer} for s in self.dag.steps],
                "parameters": dict(self.messages.recorded_parameters),
            },
        )

    def pipeline_finished(self, result: RunResult) -> None:
        common = {
            "duration_ms": result.duration_ms,
            "nodes_executed": result.nodes_executed,
            "success_count": result.success_count,
            "steps": self._final_step_rows(result),
        }
        if result.success:
            self._emit("pipeline_complete", {**common, "status": "SUCCESS"})
            return
        self._emit(
            "pipeline_error",
            {
                **common,
                "status": "FAILED",
                "error_message": result.error,
                "failed_step": result.failed_nodes[0],
                "failed_steps": list(result.failed_nodes),
                "skipped_steps": list(result.skipped_nodes),
            },
        )

    def _final_step_rows(self, result: RunResult) -> list[dict[str, Any]]:
        rows = []
        for name in self.dag.topological_order():
            empty = {"step_name": name, "duration_ms": 0, "row_count": None}
            row = dict(self._step_rows.get(name, empty))
            row["status"] = result.node_states[name].value
            settled = self.settled_rows(name)  # deferred Spark counts, settled by now
            if settled is not None:
                row["row_count"] = settled
            rows.append(row)
        return rows

    def step_started(self, step: Step, attempt: int) -> None:
        self._emit(
            "node_start",
            {
                "step_name": step.name,
                "layer": step.layer,
                "attempt": attempt,
                "start_time": datetime.now(timezone.utc).isoformat(),
            },
        )
        faults.reached("node_start")

    def step_succeeded(
        self, step: Step, outcome: StepOutcome, attempts: int, duration_ms: int
    ) -> None:
        row = {
            "step_name": step.name,
            "layer": step.layer,
            "duration_ms": duration_ms,
            "row_count": outcome.row_count,
            "status": outcome.status.value,
            "attempts": attempts,
            **outcome.details,
        }
        self._keep_row(step.name, duration_ms, outcome.row_count, outcome.status.value)
        self._emit("node_complete", row)
        faults.reached("node_complete")

    def step_failed(
        self, step: Step, error: BaseException, attempt: int, will_retry: bool, duration_ms: int
    ) -> None:
        # The full traceback, user code included, for --debug (one line without it).
        log.debug("step '%s' failed on attempt %d", step.name, attempt, exc_info=error)
        if not will_retry:
            self._keep_row(step.name, duration_ms, None, "FAILED")
        payload = {
            "step_name": step.name,
            "layer": step.layer,
            "error_message": self.messages.error_text(error, step.name),
            "error_type": type(error.__cause__ or error).__name__,
            "retry_count": attempt,
            "will_retry": will_retry,
            "duration_ms": duration_ms,
        }
        quality = quality_of_failure(error)
        self._emit("node_error", {**payload, "quality": quality} if quality else payload)

    def _keep_row(self, name: str, duration_ms: int, row_count: int | None, status: str) -> None:
        row = {
            "step_name": name,
            "duration_ms": duration_ms,
            "row_count": row_count,
            "status": status,
        }
        with self._lock:
            self._step_rows[name] = row


def quality_of_failure(error: BaseException) -> list[dict[str, Any]]:
    """The rule results a step's quality error carries (a ``fail`` rule or a table rule
    broke), as the dicts ``node_complete`` carries; empty for any other error."""
    results = getattr(error, "results", None)
    if not isinstance(error, QualityError) or not results:
        return []
    return [result.to_dict() for result in results]
