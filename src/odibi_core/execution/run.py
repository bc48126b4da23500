"""One execution of a run plan: assembles engines, store, runner stack and observers.

The orchestrator builds the plan and calls ``PipelineRun(...).execute()`` once per
``execute()``; a bundle task does the same with its own plan and store.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from odibi_core.core.config import StateLocation
from odibi_core.core.errors import SelectionError, StateError
from odibi_core.core.run_summary import RunSummary
from odibi_core.core.secrets import SecretResolver
from odibi_core.engine.log_scrubbing import ScrubbingLogFilter
from odibi_core.events.bus import EventBus
from odibi_core.execution.caching import CacheKeys, CacheLayer, CacheLookupLayer
from odibi_core.execution.checkpointing import CheckpointLayer, RestoreLayer, restorable_steps
from odibi_core.execution.context import Execution, RunContext
from odibi_core.execution.engine_policy import EngineChooser
from odibi_core.execution.executor import DAGExecutor, ExecutionReport, RetryPolicy
from odibi_core.execution.messages import RunMessages
from odibi_core.execution.observers import (
    EventObserver,
    Observers,
    ReleaseObserver,
    TrackerObserver,
)
from odibi_core.execution.plan import RunPlan
from odibi_core.execution.quality import QualityLayer
from odibi_core.execution.result import RunResult
from odibi_core.execution.runners import (
    NodeRunner,
    RunnerLayer,
    SecretLayer,
    StoreRunner,
    stack,
)
from odibi_core.execution.store import DataStore, ReaderCount
from odibi_core.execution.tracking_layer import TrackingLayer
from odibi_core.state.cache import CacheManager
from odibi_core.state.checkpoints import Checkpoint, CheckpointManager
from odibi_core.state.location import default_local_location
from odibi_core.state.quarantine import QuarantineTable
from odibi_core.tracking.tracker import Tracker

log = logging.getLogger(__name__)


def raise_on_missing_inputs(plan: RunPlan, store: DataStore) -> None:
    """A plan over a subset needs its external inputs in the store before it runs."""
    missing = {k: p for k, p in plan.external_inputs.items() if not store.contains(k)}
    if not missing:
        return
    needed = "; ".join(
        f"'{key}' (produced by {', '.join(sorted(producers))})"
        for key, producers in sorted(missing.items())
    )
    first = plan.dag.topological_order()[0]
    raise SelectionError(
        f"selection '{plan.selection}' needs data from steps outside it: {needed}; "
        f"add them, e.g. --select '+{first}', or put the data into the run's store"
    )


@dataclass(frozen=True)
class RunServices:
    """What an execution writes to and runs with, besides its plan."""

    bus: EventBus
    store: DataStore
    messages: RunMessages
    spark: Any = None
    state: StateLocation | None = None
    enable_tracker: bool = True
    layers: Sequence[RunnerLayer] = ()
    context: RunContext = RunContext()
    checkpoints: CheckpointManager | None = None  # keeps finished steps' outputs in Delta
    earlier_checkpoints: Mapping[str, list[Checkpoint]] = field(default_factory=dict)
    cache: CacheManager | None = None  # restores steps whose cache key has an entry
    cache_all: bool = False  # every step uses the cache, not only those with cache: true
    cache_by_content: bool = False  # source files are known by a hash of their bytes
    checkpoint_keys: frozenset[str] | None = None  # data keys kept (default: those read later)
    record_run: bool = True  # a job task writes its steps' audit rows only
    transient_retries_only: bool = False  # a job task: other errors go to the task's retries

    @property
    def warehouse(self) -> Path | None:
        return self.context.warehouse


def needs_spark_session(plan: RunPlan, services: RunServices) -> bool:
    """Whether the run needs Spark whatever its data's size, so its session starts in the
    background as the run begins and the first step that needs it waits for it.

    Spark or Delta steps need it (``plan.spark_steps``), and so do the Delta tables of the
    cache and of checkpoints, and the state tables the tracked run's audit rows go to. A
    run of pandas steps without them starts no JVM.
    """
    records_state = services.state is not None and services.enable_tracker
    keeps_tables = services.cache is not None or services.checkpoints is not None
    return bool(plan.spark_steps) or keeps_tables or records_state


class PipelineRun:
    """Runs ``plan`` once as ``execution``."""

    def __init__(self, plan: RunPlan, execution: Execution, services: RunServices):
        self.plan = plan
        self.execution = execution
        self.services = services
        self.quality: QualityLayer | None = None  # set when a step has quality rules

    def execute(self) -> RunResult:
        from odibi_core.engine.registry import Engines

        plan, services = self.plan, self.services
        tracker = self._tracker()
        engines = Engines(
            spark=services.spark,
            warehouse=services.warehouse,
            duckdb_threads=plan.settings.duckdb_threads,
        )
        events = EventObserver(
            services.bus, self.execution, services.messages, plan.dag, _settled_rows(tracker)
        )
        executor = self._executor(engines, tracker, events)
        if needs_spark_session(plan, services):  # the JVM starts while pandas steps run
            engines.session.start()
        start = datetime.now(timezone.utc)
        if tracker:
            tracker.start_pipeline()
        log_filter = ScrubbingLogFilter(services.messages.text).install()
        events.pipeline_started(start)
        try:
            report = executor.execute()
            self._flush_cache()
            if engines.spark_started:
                self._settle(tracker)
            if tracker:
                tracker.spark_session = engines.session.settings
            result = self._result(report, start, tracker, engines)
            events.pipeline_finished(result)
            if tracker and services.state is not None:
                result.state_error = record_in_state(
                    tracker, self.execution, services, engines.session.get
                )
        finally:
            engines.close()
            log_filter.remove()
        return result

    def _tracker(self) -> Tracker | None:
        if not self.services.enable_tracker:
            return None
        return Tracker(
            self.plan.name,
            run_id=self.execution.run_id,
            execution_id=self.execution.execution_id,
            settings=self.plan.config.tracker,
            redactor=self.services.messages.redactor,
            execution_token=self.services.context.execution_token,
        )

    def _executor(self, engines: Any, tracker: Tracker | None, events: EventObserver):
        plan, services = self.plan, self.services
        readers = ReaderCount(
            (step.input_keys for step in plan.dag.steps), enabled=plan.settings.release_data
        )
        observers = [ReleaseObserver(services.store, readers), events]
        if tracker:
            observers.insert(0, TrackerObserver(tracker, services.messages))
        settings = plan.settings
        return DAGExecutor(
            plan.dag,
            self._runner(engines, tracker),
            Observers(observers),
            max_workers=settings.max_workers,
            parallel=settings.parallel,
            fail_fast=settings.fail_fast,
            retry=RetryPolicy(
                settings.max_retries,
                settings.retry_delay,
                settings.retry_backoff,
                transient_only=services.transient_retries_only,
            ),
        )

    def _runner(self, engines: Any, tracker: Tracker | None) -> StoreRunner:
        plan, services = self.plan, self.services
        node_runner = NodeRunner(
            engines=engines,
            base_dir=plan.config.base_dir,
            pipeline=plan.name,
            run_id=self.execution.run_id,
            dag=plan.dag,
            redact_columns=services.messages.redacted_columns,
        )
        resolver = SecretResolver(services.messages.secrets)
        saving, restoring = self._checkpoint_layers(engines)
        keeping, looking_up = self._cache_layers(engines)
        layers: list[RunnerLayer] = [*services.layers, *saving, *keeping]
        if tracker:
            layers.append(lambda inner: TrackingLayer(inner, tracker, dag=plan.dag))
        layers.extend([*looking_up, *restoring, *self._quality_layer(engines)])
        layers.append(lambda inner: SecretLayer(inner, resolver))
        chooser = EngineChooser(
            default_engine=plan.engine,
            settings=plan.settings,
            base_dir=plan.config.base_dir,
            warehouse=services.warehouse,
            store=services.store,
            engines=engines,
            tracker=tracker,
        )
        return StoreRunner(
            stack(node_runner, layers), store=services.store, engines=engines, chooser=chooser
        )

    def _quality_layer(self, engines: Any) -> list[RunnerLayer]:
        """Inside tracking (it sees what the rules keep), cache and restore (a restored
        step's output was checked when it ran)."""
        plan, services = self.plan, self.services
        if not any(s.expectations or s.table_expectations for s in plan.dag.steps):
            return []
        quarantine = QuarantineTable(
            services.state or plan.config.state or default_local_location(),
            pipeline=plan.name,
            run_id=self.execution.run_id,
            spark_engine=lambda: engines.get("spark"),
            warehouse=services.warehouse,
        )

        def quality(inner: Any) -> QualityLayer:
            self.quality = QualityLayer(
                inner, quarantine=quarantine, redactor=services.messages.redactor
            )
            return self.quality

        return [quality]

    def _settle(self, tracker: Tracker | None) -> None:
        """Deferred Spark counts, once the run's actions ran: the tracker's, then the rules'
        (which go into the tracker's records)."""
        if tracker:
            tracker.settle()
            tracker.release()
        if self.quality is None:
            return
        for name, results in self.quality.settle(tracker).items():
            if tracker is not None:
                tracker.record_quality(name, results)

    def _checkpoint_layers(self, engines: Any) -> tuple[list[RunnerLayer], list[RunnerLayer]]:
        """Saving (outside tracking) and restoring (inside it), when checkpoints are on."""
        checkpoints = self.services.checkpoints
        if checkpoints is None:
            return [], []
        restorable = restorable_steps(self.plan, self.services.earlier_checkpoints)
        execution_id = self.execution.execution_id

        def saving(inner: Any) -> CheckpointLayer:
            return CheckpointLayer(
                inner,
                checkpoints,
                plan=self.plan,
                engines=engines,
                execution_id=execution_id,
                keys=self.services.checkpoint_keys,
            )

        return [saving], [lambda inner: RestoreLayer(inner, checkpoints, restorable)]

    def _cache_layers(self, engines: Any) -> tuple[list[RunnerLayer], list[RunnerLayer]]:
        """Keeping (outside tracking) and looking up (inside it), when the cache is on."""
        cache, services = self.services.cache, self.services
        if cache is None:
            return [], []
        keys = CacheKeys(
            self.plan,
            base_dir=self.plan.config.base_dir,
            engines=engines,
            content=services.cache_by_content,
        )
        enable = services.cache_all

        def keeping(inner: Any) -> CacheLayer:
            return CacheLayer(inner, cache, keys, engines=engines, enable=enable)

        return [keeping], [lambda inner: CacheLookupLayer(inner, cache, keys, enable=enable)]

    def _flush_cache(self) -> None:
        """Commit the run's new cache entries and hits; a failure costs only future hits."""
        if self.services.cache is None:
            return
        try:
            self.services.cache.flush(execution_id=self.execution.execution_id)
        except StateError as exc:
            log.warning("the cache entries of this run were not recorded: %s", exc)

    def _result(
        self, report: ExecutionReport, start: datetime, tracker: Tracker | None, engines: Any
    ) -> RunResult:
        end = datetime.now(timezone.utc)
        summary = RunSummary.of(report.states, report.completion_order)
        error = self._error(report, summary)
        if tracker:
            status = "FAILED" if summary.failed else "SUCCESS"
            params = self.services.messages.recorded_parameters
            tracker.end_pipeline(status, summary.counts(), error=error, params=params)
        text = self.services.messages.error_text
        return RunResult(
            success=not summary.failed,
            pipeline_name=self.plan.name,
            run_id=self.execution.run_id,
            execution_id=self.execution.execution_id,
            start_time=start,
            end_time=end,
            duration_ms=int((end - start).total_seconds() * 1000),
            nodes_executed=summary.nodes_executed,
            success_count=summary.success_count,
            failed_nodes=list(summary.failed),
            skipped_nodes=list(summary.skipped),
            cached_nodes=list(summary.cached),
            node_states=dict(report.states),
            data_map={
                key: engines.presentable(frame)
                for key, frame in self.services.store.snapshot().items()
            },
            tracker=tracker,
            error=error,
            errors={name: text(e, name) for name, e in report.errors.items()},
            attempts=dict(report.attempts),
            spark_started=engines.spark_started,
        )

    def _error(self, report: ExecutionReport, summary: RunSummary) -> str | None:
        if not summary.failed:
            return None
        first = summary.failed[0]
        error = f"step '{first}' failed: {self.services.messages.error_text(report.errors[first], first)}"
        if summary.skipped:
            error += f"; skipped downstream: {', '.join(summary.skipped)}"
        return error


def _settled_rows(tracker: Tracker | None):
    def settled(name: str) -> int | None:
        record = tracker.get(name) if tracker else None
        return record.after_snapshot.row_count if record is not None else None

    return settled


def record_in_state(
    tracker: Tracker, execution: Execution, services: RunServices, spark_provider: Any
) -> str | None:
    """Record the run in the state tables; what went wrong, or ``None``.

    The run's targets are written by then, so a failure here does not fail the run: it is
    returned, kept in ``result.state_error``, and the CLI exits 1 with it.
    """
    from odibi_core.state.audit import AuditStore, databricks_context
    from odibi_core.state.location import AUDIT_TABLE, RUNS_TABLE

    location = services.state
    try:
        store = AuditStore(
            location,
            spark_provider=spark_provider,
            warehouse=services.warehouse,
        )
        identity = services.context.databricks_identity(databricks_context())
        store.write_lineage(
            tracker.to_lineage(), databricks=identity, with_run_row=services.record_run
        )
    except Exception as exc:  # noqa: BLE001 - the data is written; losing audit rows is reported, not fatal
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        message = (
            f"the pipeline's targets were written, but run {execution.execution_id} could not "
            f"be recorded in state tables {location.table(AUDIT_TABLE)} and "
            f"{location.table(RUNS_TABLE)}: {type(exc).__name__}: {first_line}; "
            "fix the state location, or run with --no-state"
        )
        log.error("%s", message)
        return message
    return None
