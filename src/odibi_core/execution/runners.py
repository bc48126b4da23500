"""Step runners that compose: each layer wraps the next and has one reason to change.

The executor calls a ``StoreRunner``: it chooses the step's engine, takes its inputs from
the run's data store, hands a ``StepCall`` down the stack of layers, and puts the outputs
back. Layers (tracking, secrets, and any given to ``Orchestrator(layers=...)``) see every
call and every result; the innermost ``NodeRunner`` runs the step's node. A layer is built
around the runner it wraps: ``layer(inner)``, and is called like it: ``layer(call)``.

    class Timing:
        def __init__(self, inner):
            self.inner = inner

        def __call__(self, call: StepCall) -> StepRun:
            started = time.perf_counter()
            try:
                return self.inner(call)
            finally:
                print(call.step.name, time.perf_counter() - started)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from odibi_core.core.errors import OdibiError
from odibi_core.core.expectations import QualityResult
from odibi_core.core.secrets import SecretResolver
from odibi_core.core.snapshot import Snapshot
from odibi_core.core.step import NodeState, Step
from odibi_core.execution.engine_policy import EngineChooser
from odibi_core.execution.executor import StepOutcome
from odibi_core.execution.step_errors import blame_lazy_step, user_code_error
from odibi_core.execution.store import DataStore


@dataclass(frozen=True)
class StepCall:
    """One attempt of one step, as the layers see it."""

    step: Step
    attempt: int
    engine: Any  # the engine chosen for the step
    engine_reason: str
    inputs: Mapping[str, Any]  # logical input name -> frame, in the engine's type
    mark_executing: Callable[[], None] = lambda: None


@dataclass
class StepRun:
    """What one attempt produced; layers add what they learn on the way out."""

    outputs: dict[str, Any]  # logical output name -> frame
    write: Any = None  # WriteResult of a store or publish step
    read: Any = None  # ReadSpec of an ingest step
    row_count: int | None = None
    count_source: str = "unknown"
    count_reason: str | None = None
    schema: list[str] = field(default_factory=list)
    # Set when the step did not run: where its outputs came from (it ends CACHED).
    restored_from: str | None = None
    # Data key (None for a store's target) -> the Delta table and version already holding
    # it, so a checkpoint of the same data points there instead of writing it again.
    kept: dict[str | None, tuple[str, int | None]] = field(default_factory=dict)
    quality: tuple[QualityResult, ...] = ()  # what the step's quality rules found


def committed_target(run: StepRun, step: Step) -> tuple[str, int | None]:
    """A store's target (its SQL name when it is a Delta table) and the version it committed."""
    write = run.write
    target = getattr(write, "table_sql", None) or str(step.value)
    return target, getattr(write, "delta_version", None) if write is not None else None


class Runs(Protocol):
    def __call__(self, call: StepCall) -> StepRun: ...


RunnerLayer = Callable[[Runs], Runs]


class NodeRunner:
    """The innermost runner: runs the node of the step's layer, naming the step on error."""

    def __init__(
        self,
        *,
        engines: Any,
        base_dir: Any,
        pipeline: str,
        run_id: str,
        dag: Any,
        redact_columns: tuple[str, ...] = (),
    ):
        self.engines = engines
        self.base_dir = base_dir
        self.pipeline = pipeline
        self.run_id = run_id
        self.dag = dag
        self.redact_columns = redact_columns  # for values the nodes' own errors quote

    def __call__(self, call: StepCall) -> StepRun:
        from odibi_core.nodes import run_node

        call.mark_executing()
        try:
            result = run_node(
                call.step,
                engine=call.engine,
                inputs=call.inputs,
                base_dir=self.base_dir,
                engines=self.engines,
                pipeline=self.pipeline,
                run_id=self.run_id,
                redact_columns=self.redact_columns,
            )
        except OdibiError as exc:
            raise blame_lazy_step(exc, call.step, self._upstream(call.step)) from exc.__cause__
        except (Exception, SystemExit) as exc:  # user code or I/O: name the step and the line
            raise user_code_error(call.step, exc) from exc
        row_count = _free_count(result, call.inputs, call.engine)
        return StepRun(
            outputs=dict(result.outputs),
            write=result.write,
            read=result.read,
            row_count=row_count,
            count_source="exact" if row_count is not None else "unknown",
            count_reason=result.write.count_reason if result.write is not None else None,
        )

    def _upstream(self, step: Step) -> list[Step]:
        """The steps ``step`` depends on, nearest first."""
        upstream = self.dag.upstream_of(step.name)
        order = [n for n in reversed(self.dag.topological_order()) if n in upstream]
        return [self.dag.step(name) for name in order]


class SecretLayer:
    """Resolves a step's ``{{secrets/...}}`` just before its node runs.

    Everything outside (executor, tracker, events) keeps the step with its references;
    only the node, and so the engine, sees the values.
    """

    def __init__(self, inner: Runs, resolver: SecretResolver):
        self.inner = inner
        self.resolver = resolver

    def __call__(self, call: StepCall) -> StepRun:
        return self.inner(replace(call, step=self.resolver.resolve_step(call.step)))


class StoreRunner:
    """The executor's ``StepRunner``: engine, inputs from the store, the layers, outputs back."""

    def __init__(self, runs: Runs, *, store: DataStore, engines: Any, chooser: EngineChooser):
        self.runs = runs
        self.store = store
        self.engines = engines
        self.chooser = chooser

    def __call__(self, step: Step, attempt: int, mark_executing: Callable[[], None]) -> StepOutcome:
        decision = self.chooser.decide(step)
        engine = self.engines.get(decision.name)
        inputs = {
            logical: self.engines.convert(self.store.get(key), decision.name)
            for logical, key in step.inputs.items()
        }
        call = StepCall(step, attempt, engine, decision.reason, inputs, mark_executing)
        run = self.runs(call)
        for logical, frame in run.outputs.items():
            self.store.put(step.outputs[logical], frame)
        return StepOutcome(
            status=NodeState.CACHED if run.restored_from else NodeState.SUCCESS,
            row_count=run.row_count,
            details={
                "engine": decision.name,
                "engine_reason": decision.reason,
                "count_source": run.count_source,
                "count_reason": run.count_reason,
                "schema": list(run.schema),
                "outputs": dict(step.outputs),
            }
            | ({"quality": [r.to_dict() for r in run.quality]} if run.quality else {}),
        )


def stack(innermost: Runs, layers: list[RunnerLayer]) -> Runs:
    """Wrap ``innermost`` in ``layers``, the first of them outermost."""
    runs = innermost
    for layer in reversed(layers):
        runs = layer(runs)
    return runs


def _free_count(result: Any, inputs: Mapping[str, Any], engine: Any) -> int | None:
    """Without a tracker, counts are reported only where they cost nothing."""
    if result.write is not None and result.write.rows is not None:
        return result.write.rows
    if engine.name == "pandas":
        frames = list(result.outputs.values()) or list(inputs.values())
        return len(frames[0]) if frames else None
    return None


def snapshot_details(after: Snapshot | None) -> dict[str, Any]:
    """The counts a snapshot settles, in ``StepRun`` field names."""
    if after is None:
        return {}
    return {
        "row_count": after.row_count,
        "count_source": after.count_source,
        "count_reason": after.count_reason,
        "schema": list(after.schema),
    }
