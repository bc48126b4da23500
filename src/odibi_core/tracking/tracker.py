"""The Tracker: what each step read and produced, at no extra cost over Spark data.

One ``StepExecution`` per step per execution; retries are counted inside it. Records are
keyed by step name and guarded by one lock, so steps running in parallel never share a
"current step" slot.

Counts are free on pandas. On Spark a step that runs no action of its own gets its count
from an ``Observation`` attached to its output, filled in when the downstream action runs
(``count_source: deferred`` until then) and settled before ``execute()`` returns. Writes
report the Delta commit's own metrics. A local parquet ingest is counted from the files'
footers, and a local file ingest sampled from its first rows: the tracker itself submits
no Spark job.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from odibi_core.core.config import TrackerSettings
from odibi_core.core.files import write_json_atomically
from odibi_core.core.secrets import mask_params
from odibi_core.core.snapshot import Redactor, SampleSource, Snapshot, schema_diff
from odibi_core.core.step import NodeState, Step
from odibi_core.core.step_table import Column, step_table
from odibi_core.engine.connect import is_connect

log = logging.getLogger(__name__)

SUMMARY_COLUMNS: tuple[Column, ...] = (
    "step",
    "layer",
    "engine",
    "status",
    "duration",
    "rows before",
    "rows after",
    "delta",
)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


@dataclass
class StepExecution:
    """What happened to one step in one execution (the seed's lineage step)."""

    step_name: str
    layer: str
    engine: str | None = None
    engine_reason: str | None = None
    status: NodeState = NodeState.PENDING
    start_time: datetime | None = None
    end_time: datetime | None = None
    duration_ms: int = 0
    attempts: int = 0
    error_message: str | None = None
    attempt_errors: list[str] = field(default_factory=list)
    before_snapshot: Snapshot = field(default_factory=Snapshot.empty)
    after_snapshot: Snapshot = field(default_factory=Snapshot.empty)
    input_snapshots: dict[str, Snapshot] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    # A Delta write's versions before and after, and the RESTORE that undoes it.
    write: dict[str, Any] | None = None
    # Where a step that did not run got its outputs, e.g. "restored from checkpoint ...".
    restored_from: str | None = None
    # The step's expectations: one {name, rule, on_violation, passed, failed} per rule.
    quality: list[dict[str, Any]] = field(default_factory=list)

    @property
    def schema_diff(self) -> dict[str, list]:
        return schema_diff(self.before_snapshot, self.after_snapshot)

    @property
    def row_delta(self) -> int | None:
        before, after = self.before_snapshot.row_count, self.after_snapshot.row_count
        if before is None or after is None:
            return None
        return after - before

    def to_dict(self) -> dict[str, Any]:
        data = {
            "step_name": self.step_name,
            "layer": self.layer,
            "engine": self.engine,
            "engine_reason": self.engine_reason,
            "status": self.status.value,  # the lineage keeps the plain word
            "start_time": iso(self.start_time),
            "end_time": iso(self.end_time),
            "duration_ms": self.duration_ms,
            "attempts": self.attempts,
            "error_message": self.error_message,
            "attempt_errors": list(self.attempt_errors),
            "inputs": dict(self.inputs),
            "outputs": dict(self.outputs),
            "before_snapshot": self.before_snapshot.to_dict(),
            "after_snapshot": self.after_snapshot.to_dict(),
            "input_snapshots": {k: s.to_dict() for k, s in self.input_snapshots.items()},
            "schema_diff": self.schema_diff,
            "row_delta": self.row_delta,
        }
        if self.write is not None:  # only steps that wrote Delta have one
            data["write"] = dict(self.write)
        if self.restored_from is not None:
            data["restored_from"] = self.restored_from
        if self.quality:  # only steps with expectations have one
            data["quality"] = [dict(result) for result in self.quality]
        return data


@dataclass
class _Deferred:
    snapshot: Snapshot
    count: Any  # a DeferredCount from the Spark engine
    distrusted: str | None = None  # why the observed count may be partial


class Tracker:
    """Collects StepExecutions for one pipeline execution. Thread-safe.

    ``redactor`` (the run's, with derived columns and its secret registry) masks samples;
    by default one from ``settings.redact_columns``. Everything the tracker exports has the
    run's secret values masked, and secret-looking parameters shown as ``***``.
    """

    def __init__(
        self,
        pipeline_name: str = "pipeline",
        *,
        run_id: str | None = None,
        execution_id: str | None = None,
        settings: TrackerSettings | None = None,
        redactor: Redactor | None = None,
        execution_token: str | None = None,
    ):
        self.pipeline_name = pipeline_name
        self.run_id = run_id
        self.execution_id = execution_id or run_id
        # Unique to this execution even when a new process reuses the run id (its attempt
        # starts at 1 again): the audit's idempotency key includes it. Kept in the lineage,
        # so a retried audit write of the same execution stays a no-op.
        self.execution_token = execution_token or secrets.token_hex(8)
        self.settings = settings or TrackerSettings()
        self.redactor = redactor or Redactor(self.settings.redact_columns)
        self.start_time: datetime | None = None
        self.end_time: datetime | None = None
        self.status: str | None = None
        self.summary: dict[str, int] = {}
        self.error: str | None = None
        self.params: dict[str, Any] = {}
        # Where the run's Spark session came from and the settings parity relies on.
        self.spark_session: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._records: dict[str, StepExecution] = {}
        self._completed: list[str] = []
        self._by_key: dict[str, Snapshot] = {}
        self._deferred: list[_Deferred] = []
        self._started_clock: dict[str, float] = {}
        self._persisted: list[Any] = []

    # ----------------------------------------------------------------- run boundaries

    def start_pipeline(self) -> None:
        self.start_time = utc_now()

    def end_pipeline(
        self,
        status: str,
        summary: dict[str, int] | None = None,
        *,
        error: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        self.end_time = utc_now()
        self.status = status
        self.summary = dict(summary or {})
        self.error = error
        self.params = mask_params(params or {}, self.settings.secret_params, self.redactor.secrets)

    # ----------------------------------------------------------------- step records

    def start_step(self, step: Step) -> StepExecution:
        """Open (or, on a retry, reopen) the record of ``step``; the before snapshot is its first input's."""
        with self._lock:
            record = self._open(step)
            record.attempts += 1
            record.status = NodeState.RUNNING
            inputs = {
                logical: self._by_key.get(key, Snapshot(count_source="unknown", row_count=None))
                for logical, key in step.inputs.items()
            }
            record.input_snapshots = inputs if len(inputs) > 1 else {}
            record.before_snapshot = next(iter(inputs.values())) if inputs else Snapshot.empty()
            return record

    def _open(self, step: Step) -> StepExecution:
        """The step's record, created on first use. The caller holds the lock."""
        record = self._records.get(step.name)
        if record is None:
            record = StepExecution(
                step_name=step.name,
                layer=step.layer,
                inputs=dict(step.inputs),
                outputs=dict(step.outputs),
            )
            record.start_time = utc_now()
            self._records[step.name] = record
            self._started_clock[step.name] = time.perf_counter()
        return record

    def set_engine(self, step_name: str, engine: str, reason: str | None) -> None:
        with self._lock:
            record = self._records.get(step_name)
            if record is not None:
                record.engine, record.engine_reason = engine, reason

    def attempt_failed(self, step_name: str, message: str) -> None:
        with self._lock:
            record = self._records.get(step_name)
            if record is not None:
                record.attempt_errors.append(message)

    def finish_step(
        self,
        step_name: str,
        status: NodeState,
        *,
        after: Snapshot,
        outputs: dict[str, Snapshot] | None = None,
        error_message: str | None = None,
        restored_from: str | None = None,
    ) -> StepExecution:
        with self._lock:
            record = self._records[step_name]
            record.status = NodeState(status)
            record.restored_from = restored_from
            record.after_snapshot = after
            record.error_message = error_message
            record.end_time = utc_now()
            record.duration_ms = int(
                round((time.perf_counter() - self._started_clock[step_name]) * 1000)
            )
            for key, snapshot in (outputs or {}).items():
                self._by_key[key] = snapshot
            self._completed.append(step_name)
            return record

    def fail_step(self, step: Step, message: str) -> StepExecution:
        with self._lock:
            self._open(step)  # a step may fail before its record was opened
        return self.finish_step(
            step.name,
            NodeState.FAILED,
            after=Snapshot(row_count=None, count_source="unknown"),
            error_message=message,
        )

    def skip_step(self, step: Step, reason: str) -> StepExecution:
        with self._lock:
            record = StepExecution(
                step_name=step.name,
                layer=step.layer,
                status=NodeState.SKIPPED,
                inputs=dict(step.inputs),
                outputs=dict(step.outputs),
                error_message=reason,
                after_snapshot=Snapshot(row_count=None, count_source="unknown"),
            )
            record.before_snapshot = Snapshot(row_count=None, count_source="unknown")
            self._records[step.name] = record
            self._completed.append(step.name)
            return record

    def known_rows(self, data_keys: list[str]) -> dict[str, int | None]:
        with self._lock:
            return {
                k: (self._by_key[k].row_count if k in self._by_key else None) for k in data_keys
            }

    @property
    def step_executions(self) -> list[StepExecution]:
        """Records in completion order."""
        with self._lock:
            return [self._records[name] for name in self._completed]

    def get(self, step_name: str) -> StepExecution | None:
        with self._lock:
            return self._records.get(step_name)

    # ----------------------------------------------------------------- taking snapshots

    def redact(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self.redactor.apply(rows)

    @property
    def sample_rows(self) -> int:
        return max(0, int(self.settings.sample_rows))

    def snapshot_pandas(
        self, frame: Any, engine: Any, *, sample_source: SampleSource = "in_memory"
    ) -> Snapshot:
        """Exact and free: the data is in memory."""
        sample = self.redact(engine.sample(frame, self.sample_rows)) if self.sample_rows else []
        return Snapshot(
            schema=engine.schema(frame),
            row_count=engine.count(frame),
            sample=sample,
            count_source="exact",
            sample_source=sample_source if self.sample_rows else "off",
        )

    def snapshot_spark_output(
        self, frame: Any, engine: Any, *, name: str, file_scan: bool, read: Any = None
    ) -> tuple[Any, Snapshot]:
        """Schema now (metadata only); the count from an Observation on the action that runs anyway.

        A local file ingest (``read``, its ReadSpec) is peeked at instead where the engine
        can: the first rows and a parquet file's count come from the files, with no Spark
        job and no observation over the scan. Returns the frame to hand downstream: it
        carries the observation, if one was needed.
        """
        if read is None and self._has_deferred():  # a fresh read holds no observation
            self.distrust_observations(
                engine.observations_under_limits(frame),
                f"'{name}' reads it through a limit or sample, so the first action may have read only part of it",
            )
        peek_rows, peek_count = self._peek(frame, engine, read)
        unobserved = frame  # samples run on this, so a limit(n) never settles the observed count
        deferred, count_reason = None, None
        if peek_count is not None:
            row_count, count_source = peek_count, "exact"
        elif self.settings.exact_counts:
            frame, row_count, count_reason = self._exact_count(frame, engine)
            count_source = "exact"
        else:
            frame, deferred = engine.observe_count(frame, name)
            row_count, count_source = None, "deferred"
        if peek_rows is not None:
            sample, sample_source = self.redact(peek_rows), "file_scan"
        else:
            sample, sample_source = self._spark_sample(unobserved, engine, file_scan)
        snapshot = Snapshot(
            schema=engine.schema(unobserved),
            row_count=row_count,
            sample=sample,
            count_source=count_source,
            count_reason=count_reason,
            sample_source=sample_source,
        )
        if deferred is not None:
            with self._lock:
                self._deferred.append(_Deferred(snapshot, deferred))
        return frame, snapshot

    def _has_deferred(self) -> bool:
        with self._lock:
            return bool(self._deferred)

    def _peek(self, frame: Any, engine: Any, read: Any) -> tuple[list | None, int | None]:
        """Rows (when samples are on) and count an ingest's files give without Spark."""
        peek_read = getattr(engine, "peek_read", None)
        if read is None or peek_read is None:
            return None, None
        peek = peek_read(frame, read, self.sample_rows)
        return (peek.rows if self.sample_rows else None), peek.count

    def _exact_count(self, frame: Any, engine: Any) -> tuple[Any, int, str | None]:
        """Debugging aid: count at the step, at the cost of a pass over the data.

        On a classic session the frame is persisted first, so the run reuses what was
        counted. Spark Connect (serverless) has no ``persist``: the count is its own action
        there, and the data is computed again by the run.
        """
        if is_connect(frame):
            reason = "counted by an extra action: Spark Connect cannot persist the data"
            return frame, engine.count(frame), reason
        frame = frame.persist()
        with self._lock:
            self._persisted.append(frame)
        return frame, engine.count(frame), None

    def _spark_sample(
        self, frame: Any, engine: Any, file_scan: bool
    ) -> tuple[list[dict[str, Any]], SampleSource]:
        if not self.sample_rows:
            return [], "off"
        if file_scan or self.settings.spark_samples == "always":
            # limit(n) over a file scan reads one split; elsewhere it recomputes the plan.
            sample = self.redact(engine.sample(frame, self.sample_rows))
            return sample, "file_scan" if file_scan else "recomputed"
        return [], "skipped"

    def snapshot_written(
        self, frame: Any, engine: Any, write: Any, written_from: Snapshot | None
    ) -> Snapshot:
        """What a store/publish wrote: the commit's row count, and a sample of data written anyway."""
        if engine.name == "pandas":
            snapshot = self.snapshot_pandas(frame, engine, sample_source="written")
            if write is not None and (
                write.rows is not None or write.count_source == "already_committed"
            ):
                snapshot = replace(snapshot, **_write_count(write))
            return snapshot
        counted: dict[str, Any] = {"row_count": None, "count_source": "unknown"}
        shares_count = False
        if write is not None and (
            write.count_source == "already_committed" or write.rows is not None
        ):
            # An append Delta skipped reports the earlier commit's rows, when it was found.
            counted = _write_count(write)
        elif written_from is not None:
            # Same rows as the input: share its (possibly deferred) count.
            counted = {
                "row_count": written_from.row_count,
                "count_source": written_from.count_source,
            }
            shares_count = True
        sample, sample_source = self._written_sample(write, written_from)
        snapshot = Snapshot(
            schema=engine.schema(frame), sample=sample, sample_source=sample_source, **counted
        )
        if shares_count:
            with self._lock:
                for deferred in self._deferred:
                    if deferred.snapshot is written_from:
                        self._deferred.append(_Deferred(snapshot, deferred.count))
                        break
        return snapshot

    def _written_sample(
        self, write: Any, written_from: Snapshot | None
    ) -> tuple[list[dict[str, Any]], SampleSource]:
        if self.sample_rows and write is not None and write.sample:
            return self.redact(list(write.sample))[: self.sample_rows], "written"
        if self.sample_rows and written_from is not None and written_from.sample:
            return list(written_from.sample), written_from.sample_source
        return [], "off" if not self.sample_rows else "skipped"

    def record_quality(self, step_name: str, results: list[dict[str, Any]]) -> None:
        """Keep what a step's expectations counted: one dict per rule, in the rules' order."""
        with self._lock:
            record = self._records.get(step_name)
            if record is not None:
                record.quality = [dict(result) for result in results]

    def record_write(self, step_name: str, write: Any) -> None:
        """Keep a Delta write's versions and undo statement in the step's record."""
        recovery = write.recovery() if write is not None else None
        with self._lock:
            record = self._records.get(step_name)
            if record is not None and recovery is not None:
                record.write = recovery

    def pending_observations(self, data_keys: list[str]) -> list[_Deferred]:
        """The not-yet-fired observations on these data keys' outputs."""
        with self._lock:
            snapshots = [self._by_key[k] for k in data_keys if k in self._by_key]
            items = [d for d in self._deferred if any(d.snapshot is s for s in snapshots)]
        return [d for d in items if not _fired(d.count)]

    def distrust_fired(self, items: list[_Deferred], reason: str) -> None:
        """Observations that fired during opaque user code may hold a partial count."""
        for item in items:
            if _fired(item.count):
                item.distrusted = item.distrusted or reason

    def distrust_observations(self, names: set[str], reason: str) -> None:
        """Observations below a limit or sample may settle on a partial read."""
        if not names:
            return
        with self._lock:
            items = [d for d in self._deferred if getattr(d.count, "name", None) in names]
        for item in items:
            if not _fired(item.count):  # fired already: a full action settled it first
                item.distrusted = item.distrusted or reason

    def settle(self, timeout: float = 5.0) -> None:
        """Fill deferred Spark counts from their observations; call after the run's actions.

        A count is left empty, with the reason, when no action ran over the output or when
        the first action may have read only part of it. Settled snapshots replace the
        deferred ones wherever the records and the data keys hold them.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            pending, self._deferred = self._deferred, []
        settled: dict[int, Snapshot] = {}
        for item in pending:
            if item.snapshot.row_count is not None and item.snapshot.count_source != "deferred":
                continue
            count, reason = _observed_count(item, deadline)
            settled[id(item.snapshot)] = replace(
                item.snapshot,
                row_count=count,
                count_source="observed" if count is not None else "unavailable",
                count_reason=reason,
            )
        if settled:
            with self._lock:
                self._replace_snapshots(settled)

    def _replace_snapshots(self, settled: dict[int, Snapshot]) -> None:
        """Swap snapshots by identity in every record and data key. The caller holds the lock."""

        def swap(snapshot: Snapshot) -> Snapshot:
            return settled.get(id(snapshot), snapshot)

        for key, snapshot in self._by_key.items():
            self._by_key[key] = swap(snapshot)
        for record in self._records.values():
            record.before_snapshot = swap(record.before_snapshot)
            record.after_snapshot = swap(record.after_snapshot)
            record.input_snapshots = {k: swap(s) for k, s in record.input_snapshots.items()}

    def release(self) -> None:
        """Unpersist what ``exact_counts`` cached, so the shared session keeps no run's data."""
        with self._lock:
            frames, self._persisted = self._persisted, []
        for frame in frames:
            try:
                frame.unpersist()
            except Exception as exc:  # noqa: BLE001 - the session may be gone already
                log.debug("could not unpersist a tracked frame: %s", exc)

    # ----------------------------------------------------------------- exports

    def to_lineage(self) -> dict[str, Any]:
        steps = [record.to_dict() for record in self.step_executions]
        start, end = self.start_time, self.end_time
        total = (
            int((end - start).total_seconds() * 1000)
            if start and end
            else sum(s["duration_ms"] for s in steps)
        )
        from odibi_core import __version__

        lineage = {
            "pipeline_name": self.pipeline_name,
            "run_id": self.run_id,
            "execution_id": self.execution_id,
            "start_time": iso(start),
            "end_time": iso(end),
            "total_duration_ms": total,
            "execution_token": self.execution_token,
            "status": self.status,
            "odibi_version": __version__,
            "summary": dict(self.summary),
            "error": self.error,
            "params": dict(self.params),
            "spark_session": dict(self.spark_session) if self.spark_session else None,
            "steps": steps,
        }
        return _mask_secrets(lineage, self.redactor.secrets)

    def export_lineage(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """Write the lineage JSON (atomically) and return it."""
        lineage = self.to_lineage()
        write_json_atomically(path, lineage)
        return lineage

    def get_summary(self) -> str:
        """A readable table: one line per step with status, duration and rows."""
        table = step_table(
            (record.to_dict() for record in self.step_executions),
            SUMMARY_COLUMNS,
        )
        status = self.status or "RUNNING"
        return f"pipeline {self.pipeline_name} ({self.execution_id or '-'}): {status}\n{table}"


def _mask_secrets(lineage: dict[str, Any], registry: Any) -> dict[str, Any]:
    """Mask the run's secret values in the lineage's free text: never in ids or names."""
    if registry is None or not len(registry):
        return lineage
    lineage["error"] = registry.mask_in(lineage["error"])
    lineage["params"] = registry.mask_in(lineage["params"])
    for step in lineage["steps"]:
        step["error_message"] = registry.mask_in(step["error_message"])
        step["attempt_errors"] = registry.mask_in(step["attempt_errors"])
        snapshots = [step["before_snapshot"], step["after_snapshot"]]
        for snapshot in [*snapshots, *step["input_snapshots"].values()]:
            snapshot["sample"] = registry.mask_in(snapshot["sample"])
    return lineage


def _write_count(write: Any) -> dict[str, Any]:
    """The row count a write reported, as snapshot fields."""
    return {
        "row_count": write.rows,
        "count_source": write.count_source,
        "count_reason": write.count_reason,
    }


def _observed_count(item: _Deferred, deadline: float) -> tuple[int | None, str | None]:
    """A deferred count from its observation, or None with the reason it is missing."""
    if item.distrusted:
        return None, item.distrusted
    if not _fired(item.count):
        return None, "no action ran over this output, so it was never counted"
    try:
        count = item.count.get(max(0.05, deadline - time.monotonic()))
    except Exception as exc:  # noqa: BLE001 - a missing count must not fail the run
        return None, f"observation failed: {exc}"
    return count, None if count is not None else (item.count.reason or "no count")


def _fired(count: Any) -> bool:
    """Whether an observation has fired; counts without that notion are assumed to have."""
    fired = getattr(count, "fired", None)
    return True if fired is None else bool(fired())
