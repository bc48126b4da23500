"""The tracking layer: snapshots of a step's outputs and writes, and its row counts.

On Spark a count rides on the action that runs anyway (an observation); so when that
action fails, or user code runs an action of its own over part of a frame, the counts it
may have fired are marked as not to be trusted rather than recorded wrong.
"""

from __future__ import annotations

from typing import Any

from odibi_core.core.snapshot import Snapshot
from odibi_core.core.step import NodeState, Step
from odibi_core.execution.runners import Runs, StepCall, StepRun, snapshot_details
from odibi_core.tracking.tracker import Tracker


class TrackingLayer:
    """Records what a step did in the tracker; the frames it returns carry the observations."""

    def __init__(self, inner: Runs, tracker: Tracker, *, dag: Any):
        self.inner = inner
        self.tracker = tracker
        self.dag = dag

    def __call__(self, call: StepCall) -> StepRun:
        step, engine = call.step, call.engine
        self.tracker.set_engine(step.name, engine.name, call.engine_reason)
        counted_upstream = self._upstream_observations(step, engine)
        watched = self._inputs_user_code_may_settle(step, engine)
        try:
            run = self.inner(call)
        except BaseException:
            if counted_upstream:
                # The error itself is in the step's record; quoting it here could leak a value.
                self.tracker.distrust_fired(
                    counted_upstream,
                    f"the action of step '{step.name}' that counted it failed, so the count "
                    "would be partial",
                )
            raise
        if watched:
            self.tracker.distrust_fired(
                watched,
                f"function step '{step.name}' ran its own action over this output, "
                "which may have read only part of it",
            )
        return self._record(call, run)

    def _record(self, call: StepCall, run: StepRun) -> StepRun:
        step, engine = call.step, call.engine
        snapshots: dict[str, Snapshot] = {}
        after: Snapshot | None = None
        for logical, frame in list(run.outputs.items()):
            frame, snapshot = self._snapshot_output(step, logical, frame, engine, run.read)
            run.outputs[logical] = frame
            snapshots[step.outputs[logical]] = snapshot
            after = after or snapshot
        if run.write is not None:
            written = next(iter(call.inputs.values()), None)
            written_from = self.tracker.get(step.name).before_snapshot
            after = self.tracker.snapshot_written(written, engine, run.write, written_from)
            self.tracker.record_write(step.name, run.write)
        self.tracker.finish_step(
            step.name,
            NodeState.CACHED if run.restored_from else NodeState.SUCCESS,
            after=after or Snapshot.empty(),
            outputs=snapshots,
            restored_from=run.restored_from,
        )
        for name, value in snapshot_details(after).items():
            setattr(run, name, value)
        return run

    def _snapshot_output(
        self, step: Step, logical: str, frame: Any, engine: Any, read: Any
    ) -> tuple[Any, Snapshot]:
        if engine.name == "spark":
            return self.tracker.snapshot_spark_output(
                frame,
                engine,
                name=f"odibi_{step.name}_{logical}",
                file_scan=read is not None,
                read=read,
            )
        sample_source = "file_scan" if read is not None else "in_memory"
        return frame, self.tracker.snapshot_pandas(frame, engine, sample_source=sample_source)

    def _upstream_observations(self, step: Step, engine: Any) -> list:
        """Deferred counts a Spark action of this step may fire: all of its upstream's."""
        if engine.name != "spark":
            return []
        keys = {
            key
            for name in self.dag.upstream_of(step.name)
            for key in self.dag.step(name).output_keys
        }
        return self.tracker.pending_observations(sorted(keys))

    def _inputs_user_code_may_settle(self, step: Step, engine: Any) -> list:
        """Deferred counts of a Spark function step's inputs: user code may act on them."""
        if engine.name != "spark" or step.kind != "function":
            return []
        return self.tracker.pending_observations(step.input_keys)
