"""Orchestrator: wires steps, engines, tracker, event bus and state into one run.

result = Orchestrator(steps=steps, engine_type="pandas", enable_tracker=True).execute()
result["success"]; result["tracker"].export_lineage("lineage.json")
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from odibi_core.config import (
    PipelineConfig,
    Settings,
    StateLocation,
    TrackerSettings,
    load_pipeline,
    raise_on_resolved_params,
    settings_with,
    validate_steps,
)
from odibi_core.dag import DAG, DAGBuilder
from odibi_core.data_map import DataMap
from odibi_core.errors import PipelineConfigError, PipelineExecutionError, SelectionError
from odibi_core.event_bus import EventBus
from odibi_core.executor import DAGExecutor, RetryPolicy
from odibi_core.parameters import resolve_parameters
from odibi_core.redaction import all_derived, redaction_by_key, sql_identifiers
from odibi_core.result import RunResult
from odibi_core.run_events import RunEvents
from odibi_core.runner import PipelineStepRunner
from odibi_core.secrets import (
    ScrubbingLogFilter,
    SecretRegistry,
    SecretResolver,
    SecretResolvingRunner,
    mask_params,
    register_secret_params,
)
from odibi_core.snapshot import Redactor
from odibi_core.step import ENGINES, NodeState, Step
from odibi_core.targets import raise_on_unsafe_targets
from odibi_core.tracker import Tracker

log = logging.getLogger(__name__)


def new_run_id(now: datetime | None = None) -> str:
    """Local run ids: ``<yyyymmddTHHMMSS>_<6 hex>``; on Databricks the job run id is used."""
    now = now or datetime.now(timezone.utc)
    return f"{now.strftime('%Y%m%dT%H%M%S')}_{secrets.token_hex(3)}"


class Orchestrator:
    """Runs a pipeline: from a list of Steps, or from a pipeline file (``pipeline=``)."""

    def __init__(
        self,
        steps: Sequence[Step] | None = None,
        *,
        pipeline: str | os.PathLike[str] | PipelineConfig | None = None,
        engine_type: str | None = None,
        enable_tracker: bool = True,
        event_bus: EventBus | None = None,
        pipeline_name: str | None = None,
        max_workers: int | None = None,
        parallel: bool | None = None,
        params: Mapping[str, Any] | None = None,
        max_retries: int | None = None,
        retry_delay: float | None = None,
        retry_backoff: float | None = None,
        fail_fast: bool | None = None,
        spark: Any = None,
        state_schema: str | StateLocation | None = None,
        select: str | None = None,
        run_id: str | None = None,
        attempt: int = 1,
        warehouse: str | os.PathLike[str] | None = None,
        tracker_settings: TrackerSettings | None = None,
    ):
        if (steps is None) == (pipeline is None):
            raise PipelineConfigError(
                "give either steps=[Step(...), ...] or pipeline='pipelines/x.yaml'"
            )
        if pipeline is not None:
            config = pipeline if isinstance(pipeline, PipelineConfig) else load_pipeline(pipeline)
        else:
            problems = validate_steps(steps, parameters=None, where="<steps>")
            if problems:
                raise PipelineConfigError(problems)
            steps = list(steps)
            # Steps built in Python declare their parameters by passing them.
            config = PipelineConfig(
                name=pipeline_name or "pipeline", steps=tuple(steps), parameters=dict(params or {})
            )
        overrides = {
            name: value
            for name, value in dict(
                max_workers=max_workers,
                parallel=parallel,
                max_retries=max_retries,
                retry_delay=retry_delay,
                retry_backoff=retry_backoff,
                fail_fast=fail_fast,
            ).items()
            if value is not None
        }
        engine = engine_type or config.engine
        if engine not in ENGINES:
            raise PipelineConfigError(f"engine_type '{engine}' is not one of {', '.join(ENGINES)}")
        self.config = replace(
            config,
            name=pipeline_name or config.name,
            engine=engine,
            settings=settings_with(
                config.settings,
                overrides,
                where=str(config.source or "<steps>"),
                section="Orchestrator",
            ),
            tracker=tracker_settings or config.tracker,
            state=_state_location(state_schema) or config.state,
        )
        self.enable_tracker = enable_tracker
        self.event_bus = (
            event_bus
            if event_bus is not None
            else EventBus(hook_timeout=self.config.settings.hook_timeout)
        )
        self.params = dict(params or {})
        self.spark = spark
        self.select = select
        self.run_id = run_id or os.environ.get("ODIBI_RUN_ID") or new_run_id()
        self.attempt = attempt
        self._executed = False
        self.warehouse = Path(warehouse) if warehouse is not None else None
        self._steps, self.parameters = resolve_parameters(
            self.config.steps, self.config.parameters, self.params
        )
        raise_on_resolved_params(
            self._steps, where=str(self.config.source) if self.config.source else "<steps>"
        )
        # Targets built from ${params.x} are known only now.
        raise_on_unsafe_targets(
            self._steps,
            base_dir=self.config.base_dir,
            where=str(self.config.source) if self.config.source else "<steps>",
        )
        self.dag = self._build_dag()
        # One registry per run: every secret value resolved or given, masked everywhere.
        self.secrets = SecretRegistry()
        secret_params = self.config.tracker.secret_params
        register_secret_params(self.parameters, self.secrets, secret_params)
        for step in self._steps:  # a literal password in a step's options is one too
            register_secret_params(step.params, self.secrets, secret_params)
        self.recorded_parameters = mask_params(self.parameters, secret_params, self.secrets)
        self._scrubber = self._run_redactor()
        self._pipeline_names = _names_in(self._steps, self.config.base_dir) | {
            name for name in self.config.tracker.redact_columns if not set(name) & set("*?[")
        }

    def _run_redactor(self) -> Redactor:
        """The run's redactor: the patterns, plus columns SQL steps derive from redacted ones."""
        redactor = Redactor(self.config.tracker.redact_columns, secrets=self.secrets)
        if not redactor.active:
            return redactor
        # The whole pipeline, not only a --select: a selected step may read what an
        # unselected one renamed.
        whole = DAGBuilder(self._steps).build()
        ordered = [whole.step(name) for name in whole.topological_order()]
        return redactor.with_columns(all_derived(redaction_by_key(ordered, redactor.is_redacted)))

    @property
    def pipeline_name(self) -> str:
        return self.config.name

    @property
    def settings(self) -> Settings:
        return self.config.settings

    @property
    def execution_id(self) -> str:
        return f"{self.run_id}.{self.attempt}"

    def _next_execution(self) -> None:
        """A second ``execute()`` of this orchestrator is a new execution of the same run."""
        if self._executed:
            self.attempt += 1
        self._executed = True

    def _build_dag(self) -> DAG:
        dag = DAGBuilder(self._steps).build()
        if not self.select:
            return dag
        chosen = dag.select(self.select)
        outside = dag.external_inputs(chosen)
        if outside:
            needed = "; ".join(
                f"'{key}' (produced by {', '.join(sorted(producers))})"
                for key, producers in sorted(outside.items())
            )
            raise SelectionError(
                f"selection '{self.select}' needs data from steps outside it: {needed}; "
                f"add them, e.g. --select '+{chosen[0]}'"
            )
        return dag.subgraph(chosen)

    # ----------------------------------------------------------------- running

    def execute(self, raise_on_error: bool = False) -> RunResult:
        self._next_execution()
        from odibi_core.engine.registry import Engines

        settings = self.settings
        tracker = (
            Tracker(
                self.pipeline_name,
                run_id=self.run_id,
                execution_id=self.execution_id,
                settings=self.config.tracker,
                redactor=self._scrubber,
            )
            if self.enable_tracker
            else None
        )
        engines = Engines(
            spark=self.spark, warehouse=self.warehouse, duckdb_threads=settings.duckdb_threads
        )
        data_map = DataMap(self.dag, release=settings.release_data)
        events = RunEvents(self, tracker, data_map)
        runner = PipelineStepRunner(
            engines=engines,
            data_map=data_map,
            tracker=tracker,
            default_engine=self.config.engine,
            settings=settings,
            base_dir=self.config.base_dir,
            warehouse=self.warehouse,
            pipeline_name=self.pipeline_name,
            run_id=self.run_id,
            dag=self.dag,
        )
        runner = SecretResolvingRunner(runner, SecretResolver(self.secrets))
        executor = DAGExecutor(
            self.dag,
            runner,
            events,
            max_workers=settings.max_workers,
            parallel=settings.parallel,
            fail_fast=settings.fail_fast,
            retry=RetryPolicy(settings.max_retries, settings.retry_delay, settings.retry_backoff),
        )
        start = datetime.now(timezone.utc)
        if tracker:
            tracker.start_pipeline()
        log_filter = ScrubbingLogFilter(self.error_text_of).install()
        events.pipeline_started(start)
        try:
            report = executor.execute()
            if tracker and engines.spark_started:
                tracker.settle()
                tracker.release()
            result = self._result(report, start, data_map, tracker, engines)
            events.pipeline_finished(result)
            if tracker and self.config.state is not None:
                result.state_error = self._write_audit(tracker)
            result.spark_started = engines.spark_started
        finally:
            engines.close()
            log_filter.remove()
        if raise_on_error and not result.success:
            raise PipelineExecutionError(
                f"pipeline '{self.pipeline_name}' failed: {result.error}", result=result
            )
        return result

    def _result(
        self, report, start: datetime, data_map: DataMap, tracker: Tracker | None, engines: Any
    ) -> RunResult:
        end = datetime.now(timezone.utc)
        states = report.states
        failed = [n for n in report.completion_order if states[n] is NodeState.FAILED]
        skipped = [n for n in report.completion_order if states[n] is NodeState.SKIPPED]
        cached = [n for n in report.completion_order if states[n] is NodeState.CACHED]
        success_count = sum(
            1 for s in states.values() if s in (NodeState.SUCCESS, NodeState.CACHED)
        )
        nodes_executed = sum(
            1 for s in states.values() if s in (NodeState.SUCCESS, NodeState.FAILED)
        )
        error = None
        if failed:
            first = failed[0]
            error = f"step '{first}' failed: {self.error_text(report.errors[first], first)}"
            if skipped:
                error += f"; skipped downstream: {', '.join(skipped)}"
        if tracker:
            tracker.end_pipeline(
                "FAILED" if failed else "SUCCESS",
                {
                    "total_steps": len(self.dag),
                    "nodes_executed": nodes_executed,
                    "success_count": success_count,
                    "failed_count": len(failed),
                    "skipped_count": len(skipped),
                    "cached_count": len(cached),
                },
                error=error,
                params=self.recorded_parameters,
            )
        return RunResult(
            success=not failed,
            pipeline_name=self.pipeline_name,
            run_id=self.run_id,
            execution_id=self.execution_id,
            start_time=start,
            end_time=end,
            duration_ms=int((end - start).total_seconds() * 1000),
            nodes_executed=nodes_executed,
            success_count=success_count,
            failed_nodes=failed,
            skipped_nodes=skipped,
            cached_nodes=cached,
            node_states=dict(states),
            data_map=data_map.snapshot(),
            tracker=tracker,
            error=error,
            errors={n: self.error_text(e, n) for n, e in report.errors.items()},
            attempts=dict(report.attempts),
            spark_started=engines.spark_started,
        )

    def error_text(self, error: BaseException, step_name: str) -> str:
        """The error's message without the step prefix; with redaction on, values masked."""
        return self.error_text_of(_message(error, step_name))

    def error_text_of(self, message: str) -> str:
        """A message as it may be shown: secrets and, with redaction on, quoted values masked."""
        return self._scrubber.scrub(message, self._pipeline_names)

    def _write_audit(self, tracker: Tracker) -> str | None:
        """Record the run in the state tables; what went wrong, or ``None``.

        The run's targets are written by then, so a failure here does not fail the run: it
        is returned, kept in ``result.state_error``, and the CLI exits 1 with it.
        """
        from odibi_core.engine.session import get_spark
        from odibi_core.state.audit import AuditStore
        from odibi_core.state.location import AUDIT_TABLE, RUNS_TABLE

        location = self.config.state
        try:
            store = AuditStore(
                location,
                spark_provider=lambda: get_spark(self.spark, warehouse=self.warehouse),
                warehouse=self.warehouse,
            )
            store.write_lineage(tracker.to_lineage())
        except Exception as exc:  # noqa: BLE001 - the run's data is written; losing audit rows is reported, not fatal
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            message = (
                f"the pipeline's targets were written, but run {self.execution_id} could not "
                f"be recorded in state tables {location.table(AUDIT_TABLE)} and "
                f"{location.table(RUNS_TABLE)}: {type(exc).__name__}: {first_line}; "
                "fix the state location, or run with --no-state"
            )
            log.error("%s", message)
            return message
        return None


def _state_location(value: str | StateLocation | None) -> StateLocation | None:
    if value is None or isinstance(value, StateLocation):
        return value
    parts = value.split(".")
    if len(parts) == 2:
        return StateLocation(schema=parts[1], catalog=parts[0])
    return StateLocation(schema=value)


def _names_in(steps: Sequence[Step], base_dir: Path | None) -> set[str]:
    """Names a message may quote that are the pipeline's own, not data."""
    names: set[str] = set()
    for step in steps:
        names.add(step.name)
        names.update(step.inputs)
        names.update(step.inputs.values())
        names.update(step.outputs)
        names.update(step.outputs.values())
        if isinstance(step.value, str) and len(step.value) < 500:
            names.add(step.value)
            names.add(str((base_dir or Path.cwd()).joinpath(step.value).resolve()))
        if step.kind == "sql" and isinstance(step.value, str):
            names.update(sql_identifiers(step.value))  # column names, never values
    return names


def _message(error: BaseException, step_name: str) -> str:
    text = str(error)
    prefix = f"step '{step_name}' failed: "
    return text[len(prefix) :] if text.startswith(prefix) else text
