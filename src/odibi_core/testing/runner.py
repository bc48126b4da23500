"""Running a pipeline, a subset of it or one step inside a test, writing only under tmp.

The pytest fixtures ``run_pipeline`` and ``run_step`` are these functions bound to the
test's tmp dir and session. Given frames are the run's external inputs (its store): a step
whose outputs are all given does not run, and a key no step produces is fed by a stub step
that never runs. Every write goes under ``workdir``: tables to the local warehouse
``workdir/warehouse`` (``RunContext(warehouse=...)``), local file targets of store and
publish steps to ``workdir/outputs`` (a relative target keeps its path below the pipeline's
folder there). A target elsewhere (a URI, a Volume) is refused. No state is written.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from odibi_core.core.config import PipelineConfig, load_pipeline, validate_steps
from odibi_core.core.errors import PipelineConfigError
from odibi_core.core.locations import locate
from odibi_core.core.parameters import resolve_parameters
from odibi_core.core.step import Step

WRITING_LAYERS = ("store", "publish")
_STUB_PREFIX = "given__"


@dataclass(frozen=True)
class RunOutcome:
    """What ``run_pipeline`` and ``run_step`` return.

    ``outputs``: data key -> frame of every key the run produced; ``output``: the only one;
    ``lineage``: the run's lineage document; ``result``: the ``RunResult``; ``targets``:
    step name -> where a writing step wrote (a table name or a path under tmp);
    ``warehouse``: the local warehouse its tables are in.
    """

    outputs: dict[str, Any]
    lineage: dict[str, Any] | None
    result: Any
    targets: dict[str, str] = field(default_factory=dict)
    warehouse: Path | None = None

    @property
    def output(self) -> Any:
        if len(self.outputs) != 1:
            raise KeyError(
                f"the run produced {len(self.outputs)} data keys ({', '.join(self.outputs)}); "
                "pick one from .outputs"
            )
        return next(iter(self.outputs.values()))

    def table_path(self, name: str) -> Path:
        """The Delta path of table ``name`` in the run's local warehouse."""
        from odibi_core.core.tables import local_table_path

        return local_table_path(name, self.warehouse)


def run_pipeline(
    path_or_steps: str | os.PathLike[str] | PipelineConfig | Sequence[Step],
    *,
    workdir: Path,
    engine: str | None = None,
    inputs: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    select: str | None = None,
    spark: Callable[[], Any] | None = None,
    raise_on_error: bool = True,
) -> RunOutcome:
    """Run a pipeline file, config or list of steps with ``inputs`` as its external data.

    ``spark`` gives the session a Spark run uses (called only when ``engine`` is spark).
    A failed run raises ``PipelineExecutionError`` unless ``raise_on_error=False``.
    """
    config = _config_of(path_or_steps, engine, params)
    steps, parameters = resolve_parameters(config.steps, config.parameters, params)
    given = dict(inputs or {})
    steps = [_redirected(step, config.base_dir, workdir / "outputs") for step in steps]
    steps, chosen = _fed_by(steps, given, select)
    if config.source is None:  # steps built in Python: checked as Orchestrator(steps=) would
        problems = validate_steps(steps, parameters=parameters, where="<steps>")
        if problems:
            raise PipelineConfigError(problems)
    config = replace(
        config,
        steps=tuple(steps),
        parameters=parameters,
        state=None,
        settings=replace(config.settings, release_data=False),
    )
    return _execute(config, chosen, given, workdir, engine, spark, raise_on_error)


def run_step(
    step_or_name: Step | str,
    *,
    workdir: Path,
    pipeline: str | os.PathLike[str] | None = None,
    inputs: Mapping[str, Any] | None = None,
    engine: str | None = None,
    params: Mapping[str, Any] | None = None,
    spark: Callable[[], Any] | None = None,
    raise_on_error: bool = True,
) -> RunOutcome:
    """One step in isolation: a ``Step``, or the step of that name in ``pipeline``.

    ``inputs`` must hold every data key the step reads.
    """
    if isinstance(step_or_name, Step):
        if pipeline is not None:
            raise TypeError("run_step: give a Step, or a step name with pipeline=, not both")
        return run_pipeline(
            [step_or_name],
            workdir=workdir,
            engine=engine,
            inputs=inputs,
            params=params,
            select=step_or_name.name,
            spark=spark,
            raise_on_error=raise_on_error,
        )
    if pipeline is None:
        raise TypeError(
            f"run_step({step_or_name!r}): a step name needs the pipeline file it is in: "
            f"run_step({step_or_name!r}, pipeline='pipelines/my_pipeline.yaml', inputs=...)"
        )
    return run_pipeline(
        pipeline,
        workdir=workdir,
        engine=engine,
        inputs=inputs,
        params=params,
        select=step_or_name,
        spark=spark,
        raise_on_error=raise_on_error,
    )


def _config_of(
    path_or_steps: Any, engine: str | None, params: Mapping[str, Any] | None
) -> PipelineConfig:
    if isinstance(path_or_steps, PipelineConfig):
        return path_or_steps
    if isinstance(path_or_steps, (str, os.PathLike)):
        return load_pipeline(path_or_steps, engine=engine)
    steps = tuple(path_or_steps)
    if not steps or not all(isinstance(step, Step) for step in steps):
        raise TypeError(
            "run_pipeline: give a pipeline file, a PipelineConfig or a list of Step objects"
        )
    # Steps built in Python declare their parameters by passing them.
    return PipelineConfig(name="test_pipeline", steps=steps, parameters=dict(params or {}))


def _redirected(step: Step, base_dir: Path | None, outputs: Path) -> Step:
    """``step`` writing under ``outputs`` instead of its own local target."""
    if step.layer not in WRITING_LAYERS:
        return step
    location = locate(step, base_dir)
    if location.is_table:
        return step  # the run's local warehouse holds it
    if location.path is None or str(location.target).startswith("/Volumes/"):
        raise PipelineConfigError(
            f"step '{step.name}' writes to {location.target}, outside this machine's disk; "
            "a test writes only under its tmp dir: leave the step out with select=, or "
            "give it a local path or a table name through a parameter"
        )
    path = location.path
    base = (base_dir or Path.cwd()).resolve()
    relative = path.relative_to(base) if path.is_relative_to(base) else path.relative_to("/")
    params = {**step.params, "format": location.format}
    return replace(step, value=str(outputs / relative), params=params)


def _fed_by(
    steps: list[Step], given: Mapping[str, Any], select: str | None
) -> tuple[list[Step], str | None]:
    """The steps plus stubs producing given keys no step produces, and the selection.

    Without ``select`` and with inputs, the selection is every step whose outputs are
    not all given; stubs are never selected.
    """
    produced = {key for step in steps for key in step.outputs.values()}
    stubs = [_stub(key) for key in sorted(given) if key not in produced]
    if select is None and (given or stubs):
        kept = [
            step.name
            for step in steps
            if not (step.outputs and set(step.outputs.values()) <= set(given))
        ]
        if not kept:
            raise PipelineConfigError(
                "run_pipeline: the inputs given are every output of the pipeline; nothing "
                "is left to run"
            )
        select = ",".join(kept)
    return [*stubs, *steps], select


def _stub(key: str) -> Step:
    """A step that would produce ``key``: the given frame stands in for it."""
    name = _STUB_PREFIX + "".join(c if c.isalnum() else "_" for c in key)
    return Step(
        layer="transform",
        name=name,
        type="sql",
        value="SELECT 1 AS given",
        outputs={"data": key},
    )


def _execute(
    config: PipelineConfig,
    select: str | None,
    given: dict[str, Any],
    workdir: Path,
    engine: str | None,
    spark: Callable[[], Any] | None,
    raise_on_error: bool,
) -> RunOutcome:
    from odibi_core.execution.context import RunContext
    from odibi_core.execution.store import MemoryStore
    from odibi_core.orchestrator import Orchestrator

    warehouse = workdir / "warehouse"
    session = spark() if spark is not None and (engine or config.engine) == "spark" else None
    orchestrator = Orchestrator(
        pipeline=config,
        engine_type=engine,
        select=select,
        store=MemoryStore(given),
        context=RunContext(warehouse=warehouse),
        spark=session,
        record_run=False,
    )
    result = orchestrator.execute(raise_on_error=raise_on_error)
    produced = {key for step in orchestrator.dag.steps for key in step.outputs.values()}
    tracker = result.tracker
    return RunOutcome(
        outputs={k: v for k, v in result.data_map.items() if k in produced and k not in given},
        lineage=tracker.to_lineage() if tracker is not None else None,
        result=result,
        targets={
            step.name: str(step.value)
            for step in orchestrator.dag.steps
            if step.layer in WRITING_LAYERS
        },
        warehouse=warehouse,
    )
