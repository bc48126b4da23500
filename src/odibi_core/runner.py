"""Runs one attempt of one step: choose its engine, gather its inputs, run its node, snapshot.

The executor decides *when* a step runs; this decides *how*. Everything shared between
parallel steps (data map, tracker, engines) is owned elsewhere and locked there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from odibi_core.config import Settings
from odibi_core.dag import DAG
from odibi_core.data_map import DataMap
from odibi_core.errors import OdibiError
from odibi_core.executor import StepOutcome
from odibi_core.snapshot import Snapshot
from odibi_core.step import NodeState, Step
from odibi_core.step_errors import blame_lazy_step, user_code_error
from odibi_core.tracker import Tracker


@dataclass(frozen=True)
class EngineDecision:
    name: str
    reason: str


class PipelineStepRunner:
    """The ``StepRunner`` the orchestrator hands to the executor."""

    def __init__(
        self,
        *,
        engines: Any,
        data_map: DataMap,
        tracker: Tracker | None,
        default_engine: str,
        settings: Settings,
        base_dir: Path | None,
        warehouse: Path | None,
        pipeline_name: str,
        run_id: str,
        dag: DAG | None = None,
    ):
        self.engines = engines
        self.dag = dag
        self.data_map = data_map
        self.tracker = tracker
        self.default_engine = default_engine
        self.settings = settings
        self.base_dir = base_dir
        self.warehouse = warehouse
        self.pipeline_name = pipeline_name
        self.run_id = run_id
        self._decisions: dict[str, EngineDecision] = {}
        self._lock = threading.Lock()

    def engine_for(self, step: Step) -> EngineDecision:
        """Decide once per step (retries keep the first decision)."""
        with self._lock:
            decided = self._decisions.get(step.name)
        if decided is not None:
            return decided
        from odibi_core.engine.choice import choose_engine

        upstream = self.tracker.known_rows(step.input_keys) if self.tracker else {}
        for key in step.input_keys:
            # Without a tracker, a pandas frame's length is still free; Spark's stays unknown.
            if upstream.get(key) is None and key in self.data_map:
                frame = self.data_map.get(key)
                if self.engines.frame_engine(frame) == "pandas":
                    upstream[key] = len(frame)
        choice = choose_engine(
            step,
            self.default_engine,
            base_dir=self.base_dir,
            upstream_rows=upstream,
            max_rows=self.settings.auto_max_rows,
            max_bytes=self.settings.auto_max_bytes,
            warehouse=self.warehouse,
        )
        decided = EngineDecision(choice.name, choice.reason)
        with self._lock:
            self._decisions[step.name] = decided
        return decided

    def _redacted_columns(self) -> tuple[str, ...]:
        """The run's redacted column patterns and derived columns, for write errors."""
        if self.tracker is None:
            return ()
        redactor = self.tracker.redactor
        return (*redactor.patterns, *sorted(redactor.columns))

    def __call__(self, step: Step, attempt: int, mark_executing: Callable[[], None]) -> StepOutcome:
        from odibi_core.nodes import run_node

        counted_upstream: list = []
        try:
            decision = self.engine_for(step)
            engine = self.engines.get(decision.name)
            if self.tracker:
                self.tracker.set_engine(step.name, decision.name, decision.reason)
            inputs = {
                logical: self.engines.convert(self.data_map.get(key), decision.name)
                for logical, key in step.inputs.items()
            }
            counted_upstream = self._upstream_observations(step, engine)
            watched = self._observations_user_code_may_settle(step, engine)
            mark_executing()
            result = run_node(
                step,
                engine=engine,
                inputs=inputs,
                base_dir=self.base_dir,
                engines=self.engines,
                pipeline=self.pipeline_name,
                run_id=self.run_id,
                redact_columns=self._redacted_columns(),
            )
        except OdibiError as exc:
            self._distrust_counts_of_failed_action(step, counted_upstream)
            raise blame_lazy_step(exc, step, self._steps_upstream(step)) from exc.__cause__
        except (Exception, SystemExit) as exc:  # user code or I/O: name the step and the line
            self._distrust_counts_of_failed_action(step, counted_upstream)
            raise user_code_error(step, exc) from exc
        if watched:
            self.tracker.distrust_fired(
                watched,
                f"function step '{step.name}' ran its own action over this output, "
                "which may have read only part of it",
            )

        output_snapshots: dict[str, Snapshot] = {}
        after: Snapshot | None = None
        for logical, frame in result.outputs.items():
            key = step.outputs[logical]
            frame, snapshot = self._snapshot_output(
                step, logical, frame, engine, file_scan=result.read is not None
            )
            self.data_map.put(key, frame)
            if snapshot is not None:
                output_snapshots[key] = snapshot
                after = after or snapshot
        if result.write is not None and self.tracker:
            written = next(iter(inputs.values()), None)
            written_from = self.tracker.get(step.name).before_snapshot
            after = self.tracker.snapshot_written(written, engine, result.write, written_from)
            self.tracker.record_write(step.name, result.write)
        row_count = after.row_count if after is not None else _free_count(result, inputs, engine)
        count_source = (
            after.count_source
            if after is not None
            else ("exact" if row_count is not None else "unknown")
        )
        if self.tracker:
            self.tracker.finish_step(
                step.name,
                NodeState.SUCCESS,
                after=after or Snapshot.empty(),
                outputs=output_snapshots,
            )
        return StepOutcome(
            status=NodeState.SUCCESS,
            row_count=row_count,
            details={
                "engine": decision.name,
                "engine_reason": decision.reason,
                "count_source": count_source,
                "count_reason": _count_reason(after, result),
                "schema": list(after.schema) if after is not None else [],
                "outputs": dict(step.outputs),
            },
        )

    def _upstream_observations(self, step: Step, engine: Any) -> list:
        """Deferred counts a Spark action of this step may fire: all of its upstream's."""
        if self.tracker is None or self.dag is None or engine.name != "spark":
            return []
        keys = {
            key
            for name in self.dag.upstream_of(step.name)
            for key in self.dag.step(name).output_keys
        }
        return self.tracker.pending_observations(sorted(keys))

    def _distrust_counts_of_failed_action(self, step: Step, observations: list) -> None:
        """A count observed by an action that failed is not the output's row count."""
        if self.tracker is None or not observations:
            return
        # The error itself is in the step's record; quoting it here could leak a value.
        self.tracker.distrust_fired(
            observations,
            f"the action of step '{step.name}' that counted it failed, so the count would "
            "be partial",
        )

    def _steps_upstream(self, step: Step) -> list[Step]:
        """The steps ``step`` depends on, nearest first."""
        if self.dag is None:
            return []
        upstream = self.dag.upstream_of(step.name)
        order = [n for n in reversed(self.dag.topological_order()) if n in upstream]
        return [self.dag.step(name) for name in order]

    def _observations_user_code_may_settle(self, step: Step, engine: Any) -> list:
        """Deferred counts of a Spark function step's inputs: user code may act on them."""
        if self.tracker is None or engine.name != "spark" or step.kind != "function":
            return []
        return self.tracker.pending_observations(step.input_keys)

    def _snapshot_output(
        self, step: Step, logical: str, frame: Any, engine: Any, *, file_scan: bool
    ):
        if self.tracker is None:
            return frame, None
        if engine.name == "spark":
            return self.tracker.snapshot_spark_output(
                frame, engine, name=f"odibi_{step.name}_{logical}", file_scan=file_scan
            )
        return frame, self.tracker.snapshot_pandas(
            frame, engine, sample_source="file_scan" if file_scan else "in_memory"
        )


def _count_reason(after: Snapshot | None, result: Any) -> str | None:
    """Why the count is what it is (e.g. an append already committed), for the progress view."""
    if after is not None:
        return after.count_reason
    return result.write.count_reason if result.write is not None else None


def _free_count(result: Any, inputs: dict[str, Any], engine: Any) -> int | None:
    """Without a tracker, report counts only where they cost nothing."""
    if result.write is not None and result.write.rows is not None:
        return result.write.rows
    if engine.name == "pandas":
        frames = list(result.outputs.values()) or list(inputs.values())
        return len(frames[0]) if frames else None
    return None
