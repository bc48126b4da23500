"""Run events: executor callbacks become tracker records and EventBus events.

Every payload carries ``pipeline_name``, ``run_id``, ``execution_id`` and ``timestamp``
besides the keys of its event (see DESIGN.md, "Event payloads").
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from odibi_core import faults
from odibi_core.data_map import DataMap
from odibi_core.executor import StepOutcome
from odibi_core.result import RunResult
from odibi_core.step import NodeState, Step
from odibi_core.tracker import Tracker

if TYPE_CHECKING:
    from odibi_core.orchestrator import Orchestrator

log = logging.getLogger(__name__)


class RunEvents:
    """The ``ExecutionObserver`` of one execution."""

    def __init__(self, orchestrator: Orchestrator, tracker: Tracker | None, data_map: DataMap):
        self.o = orchestrator
        self.bus = orchestrator.event_bus
        self.tracker = tracker
        self.data_map = data_map
        self._lock = threading.Lock()
        self._step_rows: dict[str, dict[str, Any]] = {}

    def _emit(self, event: str, payload: dict[str, Any]) -> None:
        base = {
            "pipeline_name": self.o.pipeline_name,
            "run_id": self.o.run_id,
            "execution_id": self.o.execution_id,
            "timestamp": datetime.now(timezone.utc).isoformat(),
        }
        self.bus.emit(event, {**base, **self.o.secrets.mask_in(payload)})

    def pipeline_started(self, start: datetime) -> None:
        self._emit(
            "pipeline_start",
            {
                "start_time": start.isoformat(),
                "total_steps": len(self.o.dag),
                "steps": [{"step_name": s.name, "layer": s.layer} for s in self.o.dag.steps],
                "parameters": dict(self.o.recorded_parameters),
            },
        )

    def pipeline_finished(self, result: RunResult) -> None:
        steps = []
        for name in self.o.dag.topological_order():
            row = dict(
                self._step_rows.get(name, {"step_name": name, "duration_ms": 0, "row_count": None})
            )
            row["status"] = result.node_states[name].value
            record = self.tracker.get(name) if self.tracker else None
            if record is not None and record.after_snapshot.row_count is not None:
                row["row_count"] = record.after_snapshot.row_count  # settled deferred counts
            steps.append(row)
        common = {
            "duration_ms": result.duration_ms,
            "nodes_executed": result.nodes_executed,
            "success_count": result.success_count,
            "steps": steps,
        }
        if result.success:
            self._emit("pipeline_complete", {**common, "status": "SUCCESS"})
        else:
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

    # ExecutionObserver ------------------------------------------------------------

    def state_changed(self, step: Step, state: NodeState) -> None:
        log.debug("step %s -> %s", step.name, state.value)

    def step_started(self, step: Step, attempt: int) -> None:
        if self.tracker:
            self.tracker.start_step(step)
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
        self.data_map.reader_finished(step.input_keys)
        row = {
            "step_name": step.name,
            "layer": step.layer,
            "duration_ms": duration_ms,
            "row_count": outcome.row_count,
            "status": outcome.status.value,
            "attempts": attempts,
            **outcome.details,
        }
        with self._lock:
            self._step_rows[step.name] = {
                k: row[k] for k in ("step_name", "duration_ms", "row_count", "status")
            }
        self._emit("node_complete", row)
        faults.reached("node_complete")

    def step_failed(
        self, step: Step, error: BaseException, attempt: int, will_retry: bool, duration_ms: int
    ) -> None:
        message = self.o.error_text(error, step.name)
        # The full traceback, user code included, for --debug (one line without it).
        log.debug("step '%s' failed on attempt %d", step.name, attempt, exc_info=error)
        if self.tracker:
            self.tracker.attempt_failed(step.name, message)
            if not will_retry:
                self.tracker.fail_step(step, message)
        if not will_retry:
            self.data_map.reader_finished(step.input_keys)
            with self._lock:
                self._step_rows[step.name] = {
                    "step_name": step.name,
                    "duration_ms": duration_ms,
                    "row_count": None,
                    "status": "FAILED",
                }
        self._emit(
            "node_error",
            {
                "step_name": step.name,
                "layer": step.layer,
                "error_message": message,
                "error_type": type(error.__cause__ or error).__name__,
                "retry_count": attempt,
                "will_retry": will_retry,
                "duration_ms": duration_ms,
            },
        )

    def step_skipped(self, step: Step, reason: str) -> None:
        self.data_map.reader_finished(step.input_keys)
        if self.tracker:
            self.tracker.skip_step(step, reason)
