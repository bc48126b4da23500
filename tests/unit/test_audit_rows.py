"""Audit rows built from a lineage dict, and their errors; none of this needs Spark."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from odibi_core import __version__
from odibi_core.core.config import StateLocation
from odibi_core.core.errors import StateError
from odibi_core.state import (
    AuditStore,
    audit_row_from_step,
    databricks_context,
    run_row_from_lineage,
)

UTC = timezone.utc
BASE = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
DATABRICKS = {"job_id": "42", "run_id": "777", "task_key": "transform"}


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def sample_step(index: int, *, start: datetime, status: str = "SUCCESS") -> dict:
    name = f"step_{index}"
    schema = ["customer_id: int64", "name: string"]
    return {
        "step_name": name,
        "layer": "ingest" if index == 0 else "transform",
        "engine": "pandas",
        "engine_reason": "auto: ~1,000 rows below the 1,000,000 row threshold",
        "status": status,
        "start_time": _iso(start),
        "end_time": _iso(start + timedelta(seconds=4)),
        "duration_ms": 4000,
        "attempts": 2 if status == "FAILED" else 1,
        "error_message": "boom" if status == "FAILED" else None,
        "attempt_errors": ["timeout", "boom"] if status == "FAILED" else [],
        "inputs": {} if index == 0 else {"bronze": f"key_{index - 1}"},
        "outputs": {"data": f"key_{index}"},
        "before_snapshot": {"schema": [], "row_count": 0, "sample": []},
        "after_snapshot": {
            "schema": schema,
            "row_count": 10 * (index + 1),
            "sample": [{"customer_id": 1, "name": "Alice"}, {"customer_id": 2, "name": None}],
            "count_source": "exact",
            "sample_source": "in_memory",
        },
        "input_snapshots": {} if index == 0 else {"bronze": {"schema": schema, "row_count": 10}},
        "schema_diff": {
            "added": ["customer_id", "name"] if index == 0 else [],
            "removed": [],
            "changed": [{"column": "amount", "old_type": "int64", "new_type": "double"}],
        },
        "row_delta": 10 * (index + 1),
    }


def sample_lineage(
    run_id: str,
    attempt: int = 1,
    *,
    pipeline: str = "customer_pipeline",
    steps: int = 3,
    start: datetime = BASE,
    failed_step: int | None = None,
) -> dict:
    step_dicts = [
        sample_step(
            i,
            start=start + timedelta(seconds=5 * i),
            status="FAILED" if i == failed_step else "SUCCESS",
        )
        for i in range(steps)
    ]
    failed = failed_step is not None
    return {
        "pipeline_name": pipeline,
        "run_id": run_id,
        "execution_id": f"{run_id}.{attempt}",
        "start_time": _iso(start),
        "end_time": _iso(start + timedelta(seconds=5 * steps)),
        "total_duration_ms": 5000 * steps,
        "status": "FAILED" if failed else "SUCCESS",
        "odibi_version": "0.1.0",
        "summary": {
            "total_steps": steps,
            "success_count": steps - int(failed),
            "failed_count": int(failed),
            "skipped_count": 0,
            "cached_count": 0,
            "nodes_executed": steps,
        },
        "steps": step_dicts,
        "params": {"day": "2024-05-01"},
    }


def test_run_row_converts_times_to_utc_and_takes_counts_from_the_summary():
    lineage = sample_lineage("r1", failed_step=1)
    lineage["start_time"] = "2024-05-01T14:00:00+02:00"
    lineage["end_time"] = "2024-05-01T12:00:15Z"
    row = run_row_from_lineage(lineage, databricks=DATABRICKS)
    assert row["start_time"] == datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert row["end_time"] == datetime(2024, 5, 1, 12, 0, 15, tzinfo=UTC)
    assert (row["run_id"], row["execution_id"], row["status"]) == ("r1", "r1.1", "FAILED")
    assert (row["total_steps"], row["success_count"], row["failed_count"]) == (3, 2, 1)
    assert (row["databricks_job_id"], row["databricks_run_id"]) == ("42", "777")
    assert row["params_json"] == '{"day": "2024-05-01"}'
    assert row["recorded_at"].tzinfo is UTC


def test_run_row_counts_statuses_when_the_summary_is_missing():
    lineage = sample_lineage("r1", steps=4, failed_step=2)
    lineage["steps"][3]["status"] = "SKIPPED"
    del lineage["summary"], lineage["odibi_version"], lineage["run_id"]
    row = run_row_from_lineage(lineage)
    assert {k: row[k] for k in ("total_steps", "success_count", "failed_count")} == {
        "total_steps": 4,
        "success_count": 2,
        "failed_count": 1,
    }
    assert (row["skipped_count"], row["cached_count"], row["nodes_executed"]) == (1, 0, 3)
    assert row["odibi_version"] == __version__
    assert row["run_id"] == "r1.1"


def test_audit_row_flattens_snapshot_sources_and_stores_json():
    step = sample_step(1, start=BASE, status="FAILED")
    row = audit_row_from_step(
        step,
        run_id="r1",
        execution_id="r1.1",
        pipeline_name="p",
        odibi_version="0.1.0",
        databricks=DATABRICKS,
    )
    assert row["start_time"] == BASE
    assert (row["count_source"], row["sample_source"]) == ("exact", "in_memory")
    assert row["attempt_errors_json"] == '["timeout", "boom"]'
    assert row["inputs_json"] == '{"bronze": "key_0"}'
    assert (row["attempts"], row["row_delta"], row["error_message"]) == (2, 20, "boom")
    assert row["databricks_task_key"] == "transform"


def test_bad_timestamps_and_missing_execution_ids_are_state_errors():
    lineage = sample_lineage("r1")
    lineage["steps"][0]["start_time"] = "yesterday"
    with pytest.raises(StateError) as caught:
        AuditStore(StateLocation(schema="s"), spark_provider=lambda: None).write_lineage(lineage)
    assert str(caught.value) == (
        "run r1.1, step 'step_0': start_time 'yesterday' is not an ISO-8601 timestamp "
        "such as 2024-05-01T12:00:00+00:00"
    )
    del lineage["execution_id"]
    with pytest.raises(
        StateError, match="lineage of pipeline 'customer_pipeline' has no execution_id"
    ):
        run_row_from_lineage(lineage)


def test_databricks_context_reads_the_job_environment(monkeypatch):
    monkeypatch.setenv("DATABRICKS_JOB_ID", "42")
    monkeypatch.setenv("DATABRICKS_RUN_ID", "777")
    monkeypatch.delenv("DATABRICKS_TASK_KEY", raising=False)
    assert databricks_context() == {"job_id": "42", "run_id": "777", "task_key": None}
