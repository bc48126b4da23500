"""The run row of one execution of a job run, written by the job's last task.

Each task of a Databricks job run appends its own steps' audit rows. The last task
(``run_if: ALL_DONE``) reads them back and writes the execution's one ``odibi_runs`` row,
with every step's state: a step no task ran in this execution (its task was skipped because
an upstream task failed) gets a SKIPPED audit row; a step a repair did not rerun keeps the
state it reached in an earlier execution of the run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from odibi_core.core.execution_ids import attempt_of
from odibi_core.core.run_summary import RunSummary
from odibi_core.state.audit import AuditStore, audit_row_from_step, run_row_from_lineage


def record_job_execution(
    audit: AuditStore,
    *,
    pipeline: str,
    steps: Sequence[tuple[str, str]],
    run_id: str,
    attempt: int,
    execution_token: str,
    databricks: Mapping[str, Any],
) -> dict[str, Any]:
    """Write the run row of execution ``run_id.attempt`` (and SKIPPED rows of the steps no
    execution ran); return the run row. ``steps``: (name, layer) of every pipeline step."""
    from odibi_core import __version__

    execution_id = f"{run_id}.{attempt}"
    latest = _latest_rows(audit.read_run(run_id)["steps"], attempt)
    now = datetime.now(timezone.utc)
    missing = [
        {
            "step_name": name,
            "layer": layer,
            "status": "SKIPPED",
            "attempts": 0,
            "error_message": "not run: its task did not run (an upstream task failed)",
        }
        for name, layer in steps
        if name not in latest
    ]
    skipped_rows = [
        audit_row_from_step(
            step,
            run_id=run_id,
            execution_id=execution_id,
            pipeline_name=pipeline,
            odibi_version=__version__,
            databricks=databricks,
            execution_token=execution_token,
        )
        for step in missing
    ]
    states = {name: (latest[name]["status"] if name in latest else "SKIPPED") for name, _ in steps}
    run_row = run_row_from_lineage(
        _lineage(pipeline, run_id, execution_id, execution_token, latest, states, now),
        databricks=databricks,
    )
    audit.write_run(run_row, skipped_rows)
    return run_row


def _latest_rows(rows: Sequence[Mapping[str, Any]], attempt: int) -> dict[str, Mapping[str, Any]]:
    """Each step's latest audit row from executions up to ``attempt``."""
    upto = [row for row in rows if attempt_of(row["execution_id"]) <= attempt]
    upto.sort(key=lambda row: (attempt_of(row["execution_id"]), _utc(row["recorded_at"])))
    return {row["step_name"]: row for row in upto}


def _utc(value: datetime | None) -> datetime:
    """Timestamps read back from Delta may come without a zone: the sessions run in UTC."""
    value = value or datetime.min
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _lineage(
    pipeline: str,
    run_id: str,
    execution_id: str,
    token: str,
    latest: Mapping[str, Mapping[str, Any]],
    states: Mapping[str, str],
    now: datetime,
) -> dict[str, Any]:
    summary = RunSummary.of(states)
    ran_now = [row for row in latest.values() if row["execution_id"] == execution_id]
    starts = [_utc(row["start_time"]) for row in ran_now if row["start_time"] is not None]
    start = min(starts) if starts else now
    failed = [name for name, state in states.items() if state == "FAILED"]
    error = None
    if failed:
        error = f"step '{failed[0]}' failed: {latest[failed[0]]['error_message']}"
    elif summary.skipped:
        error = f"step(s) not run: {', '.join(summary.skipped)}"
    return {
        "pipeline_name": pipeline,
        "run_id": run_id,
        "execution_id": execution_id,
        "execution_token": token,
        "status": "FAILED" if failed or summary.skipped else "SUCCESS",
        "start_time": start.isoformat(),
        "end_time": now.isoformat(),
        "total_duration_ms": int((now - start).total_seconds() * 1000),
        "summary": summary.counts(),
        "error": error,
    }
