"""Orchestrator: the seed's façade over a run plan and its executions.

result = Orchestrator(steps=steps, engine_type="pandas", enable_tracker=True).execute()
result["success"]; result["tracker"].export_lineage("lineage.json")
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypedDict

from odibi_core.core.config import (
    PipelineConfig,
    Settings,
    StateLocation,
    TrackerSettings,
    load_pipeline,
    validate_steps,
)
from odibi_core.core.dag import DAG
from odibi_core.core.errors import PipelineConfigError, PipelineExecutionError, did_you_mean
from odibi_core.core.execution_ids import run_id_of
from odibi_core.core.step import Step
from odibi_core.events.bus import EventBus
from odibi_core.execution.checkpointing import next_attempt
from odibi_core.execution.context import Execution, RunContext, new_run_id
from odibi_core.execution.messages import RunMessages
from odibi_core.execution.plan import RunPlan, build_plan
from odibi_core.execution.result import RunResult
from odibi_core.execution.run import PipelineRun, RunServices, raise_on_missing_inputs
from odibi_core.execution.runners import RunnerLayer
from odibi_core.execution.store import DataStore, MemoryStore
from odibi_core.state.cache import CacheManager
from odibi_core.state.checkpoints import CheckpointManager
from odibi_core.state.location import default_local_location

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack for **kwargs is Python 3.12+

__all__ = ["Orchestrator", "RunContext", "RunOptions", "new_run_id"]


class RunOptions(TypedDict, total=False):
    """Run options of ``Orchestrator``, besides the seed's four arguments."""

    pipeline: str | os.PathLike[str] | PipelineConfig  # a pipeline file, instead of steps
    pipeline_name: str  # the name of a pipeline of steps
    params: Mapping[str, Any]  # values of the pipeline's parameters
    select: str  # a subset: name, +name, name+, layer:transform
    max_workers: int  # the next six override the pipeline's settings
    parallel: bool
    max_retries: int
    retry_delay: float
    retry_backoff: float
    fail_fast: bool
    tracker_settings: TrackerSettings  # overrides the pipeline's tracker section
    spark: Any  # a session to use
    state_schema: str | StateLocation  # [catalog.]schema of the state tables
    run_id: str  # reuse a run id: this run is a rerun of it
    enable_checkpoints: bool  # keep finished steps' outputs in Delta, so a resume skips them
    resume_from: str  # a run id (or execution id): restore its checkpointed steps, run the rest
    enable_cache: bool  # every step uses the cache (a step's cache: true/false decides first)
    cache_by_content: bool  # the cache knows source files by a hash of their bytes
    context: RunContext  # run identity and local warehouse, as the CLI or a task sets them
    store: DataStore  # where the run's data lives (default: in memory)
    checkpoint_keys: Collection[str]  # data keys checkpoints keep (default: those read later)
    record_run: bool  # write the run's row to odibi_runs (a job task leaves it to the job)
    transient_retries_only: bool  # retry in process only errors known to be transient
    layers: Sequence[RunnerLayer]  # step runner layers, each layer(inner), outermost first


_SETTINGS_OPTIONS = (
    "max_workers",
    "parallel",
    "max_retries",
    "retry_delay",
    "retry_backoff",
    "fail_fast",
)


class Orchestrator:
    """Runs a pipeline: from a list of Steps, or from a pipeline file (``pipeline=``).

    The seed's arguments are ``steps``, ``engine_type``, ``enable_tracker`` and
    ``event_bus``; everything else is a run option (``RunOptions``). With ``select``,
    the data the subset reads but does not produce must be in ``store``.
    """

    def __init__(
        self,
        steps: Sequence[Step] | None = None,
        *,
        engine_type: str | None = None,
        enable_tracker: bool = True,
        event_bus: EventBus | None = None,
        **options: Unpack[RunOptions],
    ):
        _check_options(options)
        self.plan: RunPlan = _plan_of(steps, engine_type, options)
        self.context = options.get("context") or RunContext()
        resume_from = options.get("resume_from")
        self.run_id = (
            run_id_of(resume_from)
            if resume_from
            else options.get("run_id") or self.context.resolved_run_id()
        )
        self.attempt = self.context.attempt
        self.checkpoints = bool(options.get("enable_checkpoints") or resume_from)
        self.enable_cache = bool(options.get("enable_cache"))
        self.cache_by_content = bool(options.get("cache_by_content"))
        store = options.get("store")
        self.store = store if store is not None else MemoryStore()
        raise_on_missing_inputs(self.plan, self.store)
        self.messages = RunMessages(self.plan)
        self.event_bus = (
            event_bus
            if event_bus is not None
            else EventBus(hook_timeout=self.settings.hook_timeout)
        )
        self.enable_tracker = enable_tracker
        self.spark = options.get("spark")
        self.layers = tuple(options.get("layers", ()))
        self.checkpoint_keys, self.record_run, self.transient_only = _job_task_options(options)
        self._executed = False
        self._checkpoints: CheckpointManager | None = None
        self._cache: CacheManager | None = None
        self._state_session: Any = None

    @property
    def config(self) -> PipelineConfig:
        return self.plan.config

    @property
    def dag(self) -> DAG:
        return self.plan.dag

    @property
    def pipeline_name(self) -> str:
        return self.plan.name

    @property
    def settings(self) -> Settings:
        return self.plan.settings

    @property
    def execution(self) -> Execution:
        """The current (or next) execution of this run."""
        return Execution(self.pipeline_name, self.run_id, self.attempt)

    @property
    def execution_id(self) -> str:
        return self.execution.execution_id

    def execute(self, raise_on_error: bool = False) -> RunResult:
        # A second execute() of this orchestrator is a new execution of the same run.
        if self._executed:
            self.attempt += 1
        self._executed = True
        checkpoints = self._checkpoint_manager()
        earlier = checkpoints.earlier() if checkpoints is not None else {}
        if self.context.execution_token is None:  # a job's tasks keep the attempt given
            self.attempt = max(self.attempt, next_attempt(self.run_id, earlier))
        services = RunServices(
            checkpoints=checkpoints,
            earlier_checkpoints=earlier,
            bus=self.event_bus,
            store=self.store,
            messages=self.messages,
            spark=self.spark,
            state=self.config.state,
            enable_tracker=self.enable_tracker,
            layers=self.layers,
            context=self.context,
            cache=self._cache_manager(),
            cache_all=self.enable_cache,
            cache_by_content=self.cache_by_content,
            checkpoint_keys=self.checkpoint_keys,
            record_run=self.record_run,
            transient_retries_only=self.transient_only,
        )
        result = PipelineRun(self.plan, self.execution, services).execute()
        if raise_on_error and not result.success:
            raise PipelineExecutionError(
                f"pipeline '{self.pipeline_name}' failed: {result.error}", result=result
            )
        return result

    def _checkpoint_manager(self) -> CheckpointManager | None:
        """The run's checkpoints, in its state location (the default one if it has none)."""
        if not self.checkpoints:
            return None
        if self._checkpoints is None:
            self._checkpoints = CheckpointManager(
                self.config.state or default_local_location(),
                pipeline=self.pipeline_name,
                run_id=self.run_id,
                spark_provider=self._session().get,
                warehouse=self.context.warehouse,
            )
        return self._checkpoints

    def _cache_manager(self) -> CacheManager | None:
        """The pipeline's cache, when the run or one of its steps uses it."""
        if not (self.enable_cache or any(step.cache for step in self.dag.steps)):
            return None
        if self._cache is None:
            self._cache = CacheManager(
                self.config.state or default_local_location(),
                pipeline=self.pipeline_name,
                spark_provider=self._session().get,
                warehouse=self.context.warehouse,
            )
        return self._cache

    def _session(self) -> Any:
        """The session the state tables are read and written with (built when first used)."""
        if self._state_session is None:
            from odibi_core.engine.session import SessionHandle

            self._state_session = SessionHandle(self.spark, warehouse=self.context.warehouse)
        return self._state_session


def _job_task_options(options: Mapping[str, Any]) -> tuple[frozenset[str] | None, bool, bool]:
    """What a job task runs differently: the keys it keeps, no run row, fewer retries."""
    keys = options.get("checkpoint_keys")
    return (
        frozenset(keys) if keys is not None else None,
        bool(options.get("record_run", True)),
        bool(options.get("transient_retries_only")),
    )


def _check_options(options: Mapping[str, Any]) -> None:
    known = RunOptions.__annotations__
    for name in options:
        if name not in known:
            raise TypeError(
                f"Orchestrator() got an unknown option '{name}'{did_you_mean(name, known)}"
            )


def _plan_of(
    steps: Sequence[Step] | None, engine_type: str | None, options: Mapping[str, Any]
) -> RunPlan:
    settings = {name: options[name] for name in _SETTINGS_OPTIONS if options.get(name) is not None}
    return build_plan(
        _config_of(steps, engine_type, options),
        params=options.get("params"),
        select=options.get("select"),
        engine=engine_type,
        settings=settings,
        tracker=options.get("tracker_settings"),
        state=state_location_of(options.get("state_schema")),
        pipeline_name=options.get("pipeline_name"),
    )


def _config_of(
    steps: Sequence[Step] | None, engine_type: str | None, options: Mapping[str, Any]
) -> PipelineConfig:
    pipeline = options.get("pipeline")
    if (steps is None) == (pipeline is None):
        raise PipelineConfigError(
            "give either steps=[Step(...), ...] or pipeline='pipelines/x.yaml'"
        )
    if pipeline is not None:
        if isinstance(pipeline, PipelineConfig):
            return pipeline
        return load_pipeline(pipeline, engine=engine_type)
    problems = validate_steps(steps, parameters=None, where="<steps>")
    if problems:
        raise PipelineConfigError(problems)
    # Steps built in Python declare their parameters by passing them.
    return PipelineConfig(
        name=options.get("pipeline_name") or "pipeline",
        steps=tuple(steps),
        parameters=dict(options.get("params") or {}),
    )


def state_location_of(value: str | StateLocation | None) -> StateLocation | None:
    if value is None or isinstance(value, StateLocation):
        return value
    parts = value.split(".")
    if len(parts) == 2:
        return StateLocation(schema=parts[1], catalog=parts[0])
    return StateLocation(schema=value)
