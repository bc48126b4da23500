"""The audit store: one ``odibi_runs`` row per run execution, one ``odibi_audit`` row per
step execution (and one ``odibi_quality`` row per expectation of a step, see
``odibi_core.state.quality``), written once per execution and read back as the lineage dict.

The tracker hands its lineage dict to ``AuditStore.write_lineage``; ``odibi lineage`` and
``odibi report`` turn the stored rows back into the same dict with ``to_lineage``.
Timestamps in the lineage are ISO-8601 strings (a string without an offset is read as UTC)
and are stored as Spark timestamps; the nested parts of a step (snapshots, schema diff,
inputs and outputs) are stored as JSON text.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from odibi_core.core import faults
from odibi_core.core.config import StateLocation
from odibi_core.core.errors import StateError
from odibi_core.core.execution_ids import attempt_of
from odibi_core.core.run_summary import RunSummary
from odibi_core.state.location import StateTables
from odibi_core.state.quality import quality_rows, quality_table
from odibi_core.state.table import Column, DeltaStateTable

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

RUNS_COLUMNS: tuple[Column, ...] = (
    ("run_id", "string"),
    ("execution_id", "string"),
    ("pipeline_name", "string"),
    ("status", "string"),
    ("start_time", "timestamp"),
    ("end_time", "timestamp"),
    ("duration_ms", "long"),
    ("total_steps", "int"),
    ("nodes_executed", "int"),
    ("success_count", "int"),
    ("failed_count", "int"),
    ("skipped_count", "int"),
    ("cached_count", "int"),
    ("error", "string"),
    ("odibi_version", "string"),
    ("databricks_job_id", "string"),
    ("databricks_run_id", "string"),
    ("params_json", "string"),
    ("recorded_at", "timestamp"),
    # Added after the first layout: appends evolve older tables (see DeltaStateTable.append).
    ("execution_token", "string"),
)
# Raised with every column a layout adds (the table property odibi.state.schemaVersion).
RUNS_SCHEMA_VERSION = 2

AUDIT_COLUMNS: tuple[Column, ...] = (
    ("run_id", "string"),
    ("execution_id", "string"),
    ("pipeline_name", "string"),
    ("step_name", "string"),
    ("layer", "string"),
    ("engine", "string"),
    ("engine_reason", "string"),
    ("status", "string"),
    ("start_time", "timestamp"),
    ("end_time", "timestamp"),
    ("duration_ms", "long"),
    ("attempts", "int"),
    ("error_message", "string"),
    ("attempt_errors_json", "string"),
    ("inputs_json", "string"),
    ("outputs_json", "string"),
    ("before_snapshot_json", "string"),
    ("after_snapshot_json", "string"),
    ("input_snapshots_json", "string"),
    ("schema_diff_json", "string"),
    ("row_delta", "long"),
    ("count_source", "string"),
    ("sample_source", "string"),
    ("odibi_version", "string"),
    ("databricks_job_id", "string"),
    ("databricks_task_key", "string"),
    ("databricks_run_id", "string"),
    ("recorded_at", "timestamp"),
    # Added after the first layout: appends evolve older tables (see DeltaStateTable.append).
    ("write_json", "string"),
    ("execution_token", "string"),
    # Version 3: the step's expectation results (also one row each in odibi_quality).
    ("quality_json", "string"),
)
AUDIT_SCHEMA_VERSION = 3

# The columns runs are looked up by: the only ones worth Delta statistics.
_KEY_COLUMNS = ("run_id", "execution_id", "pipeline_name", "start_time")

# Step fields stored as JSON text: lineage key -> audit column.
_STEP_JSON_FIELDS = {
    "attempt_errors": "attempt_errors_json",
    "inputs": "inputs_json",
    "outputs": "outputs_json",
    "before_snapshot": "before_snapshot_json",
    "after_snapshot": "after_snapshot_json",
    "input_snapshots": "input_snapshots_json",
    "schema_diff": "schema_diff_json",
}
# Stored as JSON text, and present in a step of the lineage only when recorded.
_OPTIONAL_STEP_JSON_FIELDS = {"write": "write_json", "quality": "quality_json"}
_STEP_TEXT_FIELDS = ("step_name", "layer", "engine", "engine_reason", "status", "error_message")
_SUMMARY_FIELDS = (
    "total_steps",
    "success_count",
    "failed_count",
    "skipped_count",
    "cached_count",
    "nodes_executed",
)
_DATABRICKS_ENV = {
    "job_id": "DATABRICKS_JOB_ID",
    "run_id": "DATABRICKS_RUN_ID",
    "task_key": "DATABRICKS_TASK_KEY",
}


def databricks_context() -> dict[str, str | None]:
    """The Databricks job id, run id and task key from the environment (None when unset)."""
    return {key: os.environ.get(variable) or None for key, variable in _DATABRICKS_ENV.items()}


# --------------------------------------------------------------------------- lineage -> rows


def run_row_from_lineage(
    lineage: Mapping[str, Any], *, databricks: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The ``odibi_runs`` row of one run execution.

    Counts missing from ``lineage["summary"]`` are counted from the steps' statuses.
    """
    from odibi_core import __version__

    execution_id = lineage.get("execution_id")
    pipeline = lineage.get("pipeline_name")
    if not execution_id:
        raise StateError(
            f"lineage of pipeline {pipeline!r} has no execution_id; the audit tables key "
            "every row on it, so export the lineage from a tracker that ran a pipeline"
        )
    where = f"run {execution_id}"
    databricks = dict(databricks or {})
    summary = {**_summary_from_steps(lineage.get("steps") or []), **(lineage.get("summary") or {})}
    return {
        "run_id": lineage.get("run_id") or execution_id,
        "execution_id": execution_id,
        "pipeline_name": pipeline,
        "status": lineage.get("status"),
        "start_time": _to_timestamp(lineage.get("start_time"), "start_time", where),
        "end_time": _to_timestamp(lineage.get("end_time"), "end_time", where),
        "duration_ms": _to_int(lineage.get("total_duration_ms"), "total_duration_ms", where),
        **{name: _to_int(summary.get(name), f"summary.{name}", where) for name in _SUMMARY_FIELDS},
        "error": lineage.get("error"),
        "odibi_version": lineage.get("odibi_version") or __version__,
        "databricks_job_id": _text(databricks.get("job_id")),
        "databricks_run_id": _text(databricks.get("run_id")),
        "params_json": _to_json(lineage.get("params")),
        "recorded_at": datetime.now(timezone.utc),
        "execution_token": lineage.get("execution_token"),
    }


def audit_row_from_step(
    step: Mapping[str, Any],
    *,
    run_id: str,
    execution_id: str,
    pipeline_name: str | None,
    odibi_version: str | None,
    databricks: Mapping[str, Any] | None = None,
    execution_token: str | None = None,
) -> dict[str, Any]:
    """The ``odibi_audit`` row of one step execution (a step dict of the lineage)."""
    where = f"run {execution_id}, step {step.get('step_name')!r}"
    databricks = dict(databricks or {})
    after = step.get("after_snapshot") or {}
    return {
        "run_id": run_id,
        "execution_id": execution_id,
        "pipeline_name": pipeline_name,
        **{name: step.get(name) for name in _STEP_TEXT_FIELDS},
        "start_time": _to_timestamp(step.get("start_time"), "start_time", where),
        "end_time": _to_timestamp(step.get("end_time"), "end_time", where),
        "duration_ms": _to_int(step.get("duration_ms"), "duration_ms", where),
        "attempts": _to_int(step.get("attempts"), "attempts", where),
        **{column: _to_json(step.get(key)) for key, column in _STEP_JSON_FIELDS.items()},
        "row_delta": _to_int(step.get("row_delta"), "row_delta", where),
        "count_source": after.get("count_source"),
        "sample_source": after.get("sample_source"),
        "odibi_version": odibi_version,
        "databricks_job_id": _text(databricks.get("job_id")),
        "databricks_task_key": _text(databricks.get("task_key")),
        "databricks_run_id": _text(databricks.get("run_id")),
        "recorded_at": datetime.now(timezone.utc),
        **{column: _to_json(step.get(key)) for key, column in _OPTIONAL_STEP_JSON_FIELDS.items()},
        "execution_token": execution_token,
    }


# --------------------------------------------------------------------------- the store


class AuditStore:
    """Reads and writes the ``odibi_runs`` and ``odibi_audit`` tables of one state location.

    ``spark_provider`` is only called when a table is written, or read and present, so a
    store costs nothing until state is actually used.
    """

    def __init__(
        self,
        location: StateLocation,
        *,
        spark_provider: Callable[[], SparkSession] | None = None,
        warehouse: str | Path | None = None,
        lock_timeout: float | None = None,
    ):
        self.tables = StateTables(location, warehouse=warehouse)
        provider = spark_provider or _default_spark_provider(warehouse)
        self.runs = DeltaStateTable(
            self.tables.runs,
            RUNS_COLUMNS,
            spark_provider=provider,
            lock_timeout=lock_timeout,
            stats_columns=_KEY_COLUMNS,
            schema_version=RUNS_SCHEMA_VERSION,
        )
        self.audit = DeltaStateTable(
            self.tables.audit,
            AUDIT_COLUMNS,
            spark_provider=provider,
            lock_timeout=lock_timeout,
            stats_columns=_KEY_COLUMNS,
            schema_version=AUDIT_SCHEMA_VERSION,
        )
        self.quality = quality_table(self.tables, provider, lock_timeout=lock_timeout)

    # ------------------------------------------------------------------ writing

    def write_lineage(
        self,
        lineage: Mapping[str, Any],
        databricks: Mapping[str, Any] | None = None,
        *,
        with_run_row: bool = True,
    ) -> None:
        """Store one run execution's lineage. ``databricks`` defaults to the environment's.

        A job task writes its steps' rows only (``with_run_row=False``): the job's last task
        writes the run row of the execution, once every task is done.
        """
        databricks = databricks_context() if databricks is None else databricks
        run_row = run_row_from_lineage(lineage, databricks=databricks)
        step_rows = [
            audit_row_from_step(
                step,
                run_id=run_row["run_id"],
                execution_id=run_row["execution_id"],
                pipeline_name=run_row["pipeline_name"],
                odibi_version=run_row["odibi_version"],
                databricks=databricks,
                execution_token=run_row["execution_token"],
            )
            for step in lineage.get("steps") or []
        ]
        if with_run_row:
            self.write_run(run_row, step_rows)
        else:
            self.write_steps(step_rows, writer=secrets.token_hex(8))

    def write_run(self, run_row: Mapping[str, Any], step_rows: Sequence[Mapping[str, Any]]) -> None:
        """Append one run row and its step rows, once: a retry for the same execution is a no-op.

        The audit rows are committed before the run row, so a run row that can be seen always
        has its steps; a retry after a failure in between completes the missing commit.
        """
        execution_id = run_row.get("execution_id")
        if not execution_id:
            raise StateError(
                f"run row for pipeline {run_row.get('pipeline_name')!r} has no execution_id; "
                "build it with run_row_from_lineage"
            )
        # Tasks of one Databricks job run share the execution id, so the task key keeps
        # their writes distinct instead of letting Delta skip all but the first.
        task_key = next(
            (row["databricks_task_key"] for row in step_rows if row.get("databricks_task_key")),
            None,
        )
        # The run id is reused on purpose (resume, retry, repair, ODIBI_RUN_ID), and a new
        # process starts again at attempt 1, so the execution id alone may repeat: Delta
        # would then skip the second execution's rows. The execution token, made once per
        # execute() and kept in the lineage, tells them apart, while a retried write of the
        # same lineage reuses it and stays a no-op. Lineage without a token (written before
        # tokens existed) keys on the execution id as it always did.
        key = execution_id
        if run_row.get("execution_token"):
            key = f"{execution_id}#{run_row['execution_token']}"
        suffix = f"{key}:{task_key}" if task_key else key
        self.audit.append(step_rows, txn_app_id=f"odibi:audit:{suffix}", txn_version=0)
        # No rows, no commit: a run without expectations never touches odibi_quality.
        self.quality.append(
            quality_rows(step_rows), txn_app_id=f"odibi:quality:{suffix}", txn_version=0
        )
        faults.reached("audit_write")  # ODIBI_FAULT=kill_during:audit_write
        self.runs.append([run_row], txn_app_id=f"odibi:runs:{suffix}", txn_version=0)

    def write_steps(self, step_rows: Sequence[Mapping[str, Any]], *, writer: str) -> None:
        """Append a job task's step rows. The tasks (and a retried task) of one execution
        share its execution id and token, so ``writer``, unique to the writing process,
        keeps their appends apart."""
        if not step_rows:
            return
        first = step_rows[0]
        key = f"{first['execution_id']}#{first.get('execution_token')}"
        task = first.get("databricks_task_key") or ""
        self.audit.append(step_rows, txn_app_id=f"odibi:audit:{key}:{task}:{writer}", txn_version=0)
        quality_txn = f"odibi:quality:{key}:{task}:{writer}"
        self.quality.append(quality_rows(step_rows), txn_app_id=quality_txn, txn_version=0)

    # ------------------------------------------------------------------ reading

    def read_run(self, run_id: str) -> dict[str, list[dict[str, Any]]]:
        """``runs``: one row per execution of the run; ``steps``: its audit rows, ordered by
        execution, then start time."""
        runs = sorted(self.runs.read({"run_id": run_id}), key=_execution_order)
        rank = {(row["execution_id"], row["execution_token"]): i for i, row in enumerate(runs)}
        steps = sorted(
            self.audit.read({"run_id": run_id}),
            key=lambda row: (
                *_attempt_order(row),
                rank.get((row["execution_id"], row["execution_token"]), len(rank)),
                *_time_order(row),
            ),
        )
        return {"runs": runs, "steps": steps}

    def latest_run_id(self, pipeline_name: str | None = None) -> str | None:
        """The run id of the most recently started run (of ``pipeline_name`` when given)."""
        where = {"pipeline_name": pipeline_name} if pipeline_name is not None else None
        rows = self.runs.read(
            where, order_by=("start_time", "recorded_at"), descending=True, limit=1
        )
        return rows[0]["run_id"] if rows else None

    def to_lineage(self, run_id: str, execution_id: str | None = None) -> dict[str, Any]:
        """The lineage dict of one execution of ``run_id`` (default: its latest execution)."""
        stored = self.read_run(run_id)
        if not stored["runs"]:
            latest = self.latest_run_id()
            hint = f" (the latest run is '{latest}')" if latest else " (no run is recorded yet)"
            raise StateError(
                f"run '{run_id}' is not in state table {self.tables.runs.name}{hint}; "
                "check the run id, and that the state location is the one the run used"
            )
        executions = list(dict.fromkeys(row["execution_id"] for row in stored["runs"]))
        if execution_id is None:
            execution_id = executions[-1]
        elif execution_id not in executions:
            raise StateError(
                f"run '{run_id}' has no execution '{execution_id}'; "
                f"its executions are {', '.join(executions)}"
            )
        # Processes reusing a run id may repeat an execution id: the latest one is shown.
        run = [row for row in stored["runs"] if row["execution_id"] == execution_id][-1]
        steps = [
            row
            for row in stored["steps"]
            if row["execution_id"] == execution_id
            and row["execution_token"] == run["execution_token"]
        ]
        return lineage_from_rows(run, steps)


def lineage_from_rows(run: Mapping[str, Any], steps: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Rebuild the lineage dict from one ``odibi_runs`` row and its ``odibi_audit`` rows."""
    lineage: dict[str, Any] = {
        "pipeline_name": run["pipeline_name"],
        "run_id": run["run_id"],
        "execution_id": run["execution_id"],
        "start_time": _to_iso(run["start_time"]),
        "end_time": _to_iso(run["end_time"]),
        "total_duration_ms": run["duration_ms"],
        "status": run["status"],
        "odibi_version": run["odibi_version"],
        "summary": {name: run[name] for name in _SUMMARY_FIELDS},
        "steps": [_step_from_row(row) for row in steps],
    }
    # Present only when recorded, so a lineage without them reads back unchanged.
    if run.get("error") is not None:
        lineage["error"] = run["error"]
    if run.get("params_json") is not None:
        lineage["params"] = json.loads(run["params_json"])
    if run.get("execution_token") is not None:
        lineage["execution_token"] = run["execution_token"]
    return lineage


def _step_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    step: dict[str, Any] = {
        name: row[name] for name in ("step_name", "layer", "engine", "engine_reason", "status")
    }
    step.update(
        start_time=_to_iso(row["start_time"]),
        end_time=_to_iso(row["end_time"]),
        duration_ms=row["duration_ms"],
        attempts=row["attempts"],
        error_message=row["error_message"],
    )
    for key, column in _STEP_JSON_FIELDS.items():
        text = row[column]
        step[key] = None if text is None else json.loads(text)
    step["row_delta"] = row["row_delta"]
    for key, column in _OPTIONAL_STEP_JSON_FIELDS.items():
        if row.get(column) is not None:
            step[key] = json.loads(row[column])
    return step


# --------------------------------------------------------------------------- conversions


def _summary_from_steps(steps: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    return RunSummary.of_steps(steps).counts()


def _to_timestamp(value: Any, field: str, where: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        text = value.strip()
        try:
            moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
        except ValueError:
            raise StateError(
                f"{where}: {field} {value!r} is not an ISO-8601 timestamp "
                "such as 2024-05-01T12:00:00+00:00"
            ) from None
    else:
        raise StateError(f"{where}: {field} must be an ISO-8601 string, got {type(value).__name__}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _to_iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(timezone.utc).isoformat()


def _to_int(value: Any, field: str, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise StateError(f"{where}: {field} must be a whole number, got {value!r}")
    return int(value)


def _to_json(value: Any) -> str | None:
    # Samples may hold dates or decimals; they are stored as their text.
    return None if value is None else json.dumps(value, default=str)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _attempt_order(row: Mapping[str, Any]) -> tuple[int, str]:
    """Executions sort by attempt number (``<run_id>.<attempt>``), so ``.10`` follows ``.9``."""
    return (attempt_of(row["execution_id"]), row["execution_id"] or "")


def _execution_order(row: Mapping[str, Any]) -> tuple[int, str, bool, datetime | None]:
    """Run rows by attempt; executions that share an id (processes reusing a run id) by
    when they were recorded."""
    recorded = row.get("recorded_at")
    return (*_attempt_order(row), recorded is None, recorded)


def _time_order(row: Mapping[str, Any]) -> tuple[bool, datetime | None, str]:
    start = row.get("start_time")
    return (start is None, start, row.get("step_name") or "")


def _default_spark_provider(warehouse: str | Path | None) -> Callable[[], SparkSession]:
    def provider() -> SparkSession:
        from odibi_core.engine.session import get_spark

        return get_spark(warehouse=warehouse)

    return provider
