from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from odibi_core.core.config import StateLocation
from odibi_core.core.errors import StateError
from odibi_core.state import AuditStore
from tests.unit.test_audit_rows import BASE, DATABRICKS, sample_lineage

pytestmark = pytest.mark.spark


def _store(spark, warehouse) -> AuditStore:
    return AuditStore(
        StateLocation(schema="odibi_state"), spark_provider=lambda: spark, warehouse=warehouse
    )


def test_write_lineage_stores_one_row_per_step_and_reads_back_equal(spark, tmp_path):
    store = _store(spark, tmp_path)
    lineage = sample_lineage("20240501T120000_a1b2c3", failed_step=2)
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
    # Statistics only on the columns runs are looked up by, not on the JSON text columns.
    properties = dict(spark.sql(f"SHOW TBLPROPERTIES delta.`{store.tables.audit.path}`").collect())
    assert properties["delta.dataSkippingStatsColumns"] == (
        "run_id,execution_id,pipeline_name,start_time"
    )


def test_writing_an_execution_again_adds_nothing_and_a_new_execution_adds_its_rows(spark, tmp_path):
    store = _store(spark, tmp_path)
    first = sample_lineage("run_a", 1, failed_step=1)
    store.write_lineage(first, databricks={})
    audit_path = str(store.tables.audit.path)
    versions = spark.sql(f"DESCRIBE HISTORY delta.`{audit_path}`").count()

    store.write_lineage(first, databricks={})
    assert spark.read.format("delta").load(audit_path).count() == 3
    assert spark.read.format("delta").load(str(store.tables.runs.path)).count() == 1
    assert spark.sql(f"DESCRIBE HISTORY delta.`{audit_path}`").count() == versions

    retry = sample_lineage("run_a", 2, start=BASE + timedelta(hours=1))
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


# About 16 s; concurrent runs' audit rows run by default in test_tracker_spark.py.
@pytest.mark.slow
def test_four_runs_writing_at_once_to_missing_tables_leave_every_row_once(spark, tmp_path):
    store = _store(spark, tmp_path)
    assert not store.audit.exists() and not store.runs.exists()
    lineages = [
        sample_lineage(
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
