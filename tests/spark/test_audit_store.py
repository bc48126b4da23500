from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from odibi_core import __version__
from odibi_core.config import StateLocation
from odibi_core.errors import StateError
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


def _step(index: int, *, start: datetime, status: str = "SUCCESS") -> dict:
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


def _lineage(
    run_id: str,
    attempt: int = 1,
    *,
    pipeline: str = "customer_pipeline",
    steps: int = 3,
    start: datetime = BASE,
    failed_step: int | None = None,
) -> dict:
    step_dicts = [
        _step(
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


def _store(spark, warehouse) -> AuditStore:
    return AuditStore(
        StateLocation(schema="odibi_state"), spark_provider=lambda: spark, warehouse=warehouse
    )


# --------------------------------------------------------------------------- rows, no Spark


def test_run_row_converts_times_to_utc_and_takes_counts_from_the_summary():
    lineage = _lineage("r1", failed_step=1)
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
    lineage = _lineage("r1", steps=4, failed_step=2)
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
    step = _step(1, start=BASE, status="FAILED")
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
    lineage = _lineage("r1")
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


# --------------------------------------------------------------------------- Delta round trips


@pytest.mark.spark
def test_write_lineage_stores_one_row_per_step_and_reads_back_equal(spark, tmp_path):
    store = _store(spark, tmp_path)
    lineage = _lineage("20240501T120000_a1b2c3", failed_step=2)
    store.write_lineage(lineage, databricks=DATABRICKS)

    audit = spark.read.format("delta").load(str(store.tables.audit.path))
    assert audit.count() == 3
    assert spark.read.format("delta").load(str(store.tables.runs.path)).count() == 1
    types = dict(audit.dtypes)
    assert (types["start_time"], types["duration_ms"], types["attempts"]) == (
        "timestamp",
        "bigint",
        "int",
    )

    stored = store.read_run("20240501T120000_a1b2c3")
    assert [row["step_name"] for row in stored["steps"]] == ["step_0", "step_1", "step_2"]
    run = stored["runs"][0]
    assert (run["status"], run["duration_ms"], run["failed_count"]) == ("FAILED", 15000, 1)
    assert run["start_time"] == BASE
    assert run["databricks_job_id"] == "42"
    failed = stored["steps"][2]
    assert failed["start_time"] == BASE + timedelta(seconds=10)
    assert (failed["status"], failed["attempts"], failed["error_message"]) == ("FAILED", 2, "boom")
    assert (failed["count_source"], failed["databricks_task_key"]) == ("exact", "transform")

    assert store.to_lineage("20240501T120000_a1b2c3") == lineage
    assert store.latest_run_id() == "20240501T120000_a1b2c3"


@pytest.mark.spark
def test_writing_an_execution_again_adds_nothing_and_a_new_execution_adds_its_rows(spark, tmp_path):
    store = _store(spark, tmp_path)
    first = _lineage("run_a", 1, failed_step=1)
    store.write_lineage(first, databricks={})
    audit_path = str(store.tables.audit.path)
    versions = spark.sql(f"DESCRIBE HISTORY delta.`{audit_path}`").count()

    store.write_lineage(first, databricks={})
    assert spark.read.format("delta").load(audit_path).count() == 3
    assert spark.read.format("delta").load(str(store.tables.runs.path)).count() == 1
    assert spark.sql(f"DESCRIBE HISTORY delta.`{audit_path}`").count() == versions

    retry = _lineage("run_a", 2, start=BASE + timedelta(hours=1))
    store.write_lineage(retry, databricks={})
    stored = store.read_run("run_a")
    assert [row["execution_id"] for row in stored["runs"]] == ["run_a.1", "run_a.2"]
    assert [(row["execution_id"], row["step_name"]) for row in stored["steps"]] == [
        ("run_a.1", "step_0"),
        ("run_a.1", "step_1"),
        ("run_a.1", "step_2"),
        ("run_a.2", "step_0"),
        ("run_a.2", "step_1"),
        ("run_a.2", "step_2"),
    ]
    assert store.to_lineage("run_a") == retry
    assert store.to_lineage("run_a", "run_a.1") == first
    with pytest.raises(
        StateError,
        match=r"run 'run_a' has no execution 'run_a.3'; its executions are run_a.1, run_a.2",
    ):
        store.to_lineage("run_a", "run_a.3")
    with pytest.raises(
        StateError,
        match=r"run 'run_b' is not in state table odibi_state.odibi_runs \(the latest run is 'run_a'\)",
    ):
        store.to_lineage("run_b")


@pytest.mark.spark
def test_four_runs_writing_at_once_to_missing_tables_leave_every_row_once(spark, tmp_path):
    store = _store(spark, tmp_path)
    assert not store.audit.exists() and not store.runs.exists()
    lineages = [
        _lineage(
            f"run_{i}", pipeline="p" if i % 2 else "q", steps=5, start=BASE + timedelta(minutes=i)
        )
        for i in range(4)
    ]
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def write(lineage):
        barrier.wait()
        try:
            store.write_lineage(lineage, databricks={})
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(lineage,)) for lineage in lineages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    runs = spark.read.format("delta").load(str(store.tables.runs.path))
    audit = spark.read.format("delta").load(str(store.tables.audit.path))
    assert runs.count() == 4
    assert audit.count() == 20
    per_execution = {
        row["execution_id"]: row["count"] for row in audit.groupBy("execution_id").count().collect()
    }
    assert per_execution == {f"run_{i}.1": 5 for i in range(4)}
    assert store.latest_run_id() == "run_3"
    assert store.latest_run_id("q") == "run_2"
    assert store.latest_run_id("nope") is None
