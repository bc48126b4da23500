"""Checkpoint layers: finished steps' outputs kept in Delta, and restored on a resume.

``CheckpointLayer`` wraps the tracking layer: when a step succeeds, each output a later step
reads is written to its Delta table (the write is the action that settles the tracker's
count) and the step is recorded in ``odibi_checkpoints``. ``RestoreLayer`` sits inside the
tracking layer: a step restorable from an earlier execution of the run gets its outputs
from Delta without running, and ends CACHED with the checkpoint named in the lineage.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from odibi_core.core.errors import PipelineConfigError
from odibi_core.core.execution_ids import attempt_of
from odibi_core.execution.plan import RunPlan
from odibi_core.execution.runners import Runs, StepCall, StepRun, committed_target
from odibi_core.state.checkpoints import Checkpoint, CheckpointManager


def next_attempt(run_id: str, earlier: Mapping[str, list[Checkpoint]]) -> int:
    """One past the latest execution that left checkpoints: a resume is a new execution."""
    attempts = [
        attempt_of(c.execution_id, run_id=run_id)
        for checkpoints in earlier.values()
        for c in checkpoints
    ]
    return max(attempts, default=0) + 1


def restorable_steps(
    plan: RunPlan, earlier: Mapping[str, list[Checkpoint]]
) -> dict[str, dict[str | None, Checkpoint]]:
    """Steps a resume restores: checkpointed with an unchanged definition, and every step
    upstream restorable too (a changed or unfinished step re-runs with all it feeds)."""
    restorable: dict[str, dict[str | None, Checkpoint]] = {}
    for name in plan.dag.topological_order():
        step = plan.dag.step(name)
        saved = {c.data_key: c for c in earlier.get(name, [])}
        unchanged = bool(saved) and all(
            c.definition_hash == plan.fingerprints.get(name) for c in saved.values()
        )
        complete = all(key in saved for key in step.output_keys) or (
            not step.output_keys and None in saved
        )
        upstream_ok = all(up in restorable for up in plan.dag.upstream_of(name))
        if unchanged and complete and upstream_ok:
            restorable[name] = saved
    _refuse_repeated_appends(plan, earlier, restorable)
    return restorable


def _refuse_repeated_appends(
    plan: RunPlan, earlier: Mapping[str, Any], restorable: Mapping[str, Any]
) -> None:
    """An append this run committed before would be skipped by Delta if it ran again."""
    repeated = [
        name
        for name in plan.dag.topological_order()
        if name in earlier
        and name not in restorable
        and str(plan.dag.step(name).params.get("mode", "")).lower() == "append"
    ]
    if repeated:
        raise PipelineConfigError(
            f"cannot resume run: append step(s) {', '.join(repeated)} committed in an earlier "
            "execution of this run but would run again (their definition or an upstream "
            "step's changed); Delta would skip the repeated append as already committed. "
            "Start a new run (without --resume or --run-id) to append again"
        )


class RestoreLayer:
    """Inside tracking: a restorable step's outputs come from its checkpoints."""

    def __init__(
        self,
        inner: Runs,
        checkpoints: CheckpointManager,
        restorable: Mapping[str, Mapping[str | None, Checkpoint]],
    ):
        self.inner = inner
        self.checkpoints = checkpoints
        self.restorable = restorable

    def __call__(self, call: StepCall) -> StepRun:
        saved = self.restorable.get(call.step.name)
        if saved is None:
            return self.inner(call)
        outputs = {
            logical: self.checkpoints.restore(saved[key], engine=call.engine, step=call.step.name)
            for logical, key in call.step.outputs.items()
        }
        execution = next(iter(saved.values())).execution_id
        return StepRun(
            outputs=outputs, restored_from=f"restored from checkpoint of execution {execution}"
        )


class CheckpointLayer:
    """Outside tracking: a finished step's outputs that later steps read go to Delta."""

    def __init__(
        self,
        inner: Runs,
        checkpoints: CheckpointManager,
        *,
        plan: RunPlan,
        engines: Any,
        execution_id: str,
        keys: frozenset[str] | None = None,
    ):
        self.inner = inner
        self.checkpoints = checkpoints
        self.plan = plan
        self.engines = engines
        self.execution_id = execution_id
        # By default what a later step of the plan reads; a job task keeps its handoffs.
        self.read_later = (
            keys
            if keys is not None
            else frozenset(key for step in plan.dag.steps for key in step.input_keys)
        )

    def __call__(self, call: StepCall) -> StepRun:
        run = self.inner(call)
        if run.restored_from is not None and not run.kept:
            return run  # restored from this run's own checkpoints: recorded already
        step = call.step
        entries: dict[str | None, tuple[str, int | None]] = {}
        for logical, frame in list(run.outputs.items()):
            key = step.outputs[logical]
            if key in run.kept:  # already in a Delta table (the cache's): point there
                entries[key] = run.kept[key]
            elif key in self.read_later:
                entries[key] = self._save(frame, key, step.name)
                run.outputs[logical] = self._reread(frame, key, entries[key], call)
        if not step.output_keys:
            entries[None] = run.kept.get(None) or committed_target(run, step)
        self.checkpoints.record(
            step.name,
            entries,
            execution_id=self.execution_id,
            definition_hash=self.plan.fingerprints.get(step.name, ""),
        )
        return run

    def _save(self, frame: Any, key: str, step: str) -> tuple[str, int | None]:
        return self.checkpoints.save(frame, key, spark_engine=self.engines.get("spark"), step=step)

    def _reread(self, frame: Any, key: str, saved: tuple[str, int | None], call: StepCall) -> Any:
        """A Spark output is read back from its checkpoint, so no later step recomputes it."""
        if call.engine.name != "spark":
            return frame
        table, version = saved
        checkpoint = Checkpoint(call.step.name, key, table, version, "", self.execution_id)
        return self.checkpoints.restore(checkpoint, engine=call.engine, step=call.step.name)
