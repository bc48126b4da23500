"""The tracker on Spark: no extra passes, settled deferred counts, audit rows, redaction."""

import json
import threading

import pandas as pd
import pytest

from odibi_core import Step
from odibi_core.cli import main as odibi
from odibi_core.core.config import StateLocation, TrackerSettings
from odibi_core.events.bus import EventBus
from odibi_core.orchestrator import Orchestrator
from odibi_core.report import render_report
from odibi_core.state.audit import AuditStore
from odibi_core.state.location import StateTables

pytestmark = pytest.mark.spark


@pytest.fixture
def orders_csv(tmp_path):
    path = tmp_path / "orders.csv"
    pd.DataFrame(
        {
            "order_id": range(1, 41),
            "customer_email": [f"person{i}@example.com" for i in range(1, 41)],
            "amount": [float(i) for i in range(1, 41)],
        }
    ).to_csv(path, index=False)
    return path


def pipeline(source, target):
    return [
        Step(layer="ingest", name="read", value=str(source), outputs={"data": "raw"}),
        Step(
            layer="transform",
            name="big_orders",
            type="sql",
            value="SELECT order_id, customer_email, amount * 2 AS amount FROM raw WHERE amount > 10",
            inputs={"raw": "raw"},
            outputs={"data": "big"},
        ),
        Step(
            layer="store",
            name="save",
            value=str(target),
            params={"format": "delta"},
            inputs={"data": "big"},
        ),
    ]


def jobs_run_by(spark, action):
    status = spark.sparkContext.statusTracker()
    listener_bus = spark.sparkContext._jsc.sc().listenerBus()  # job ids arrive through it
    listener_bus.waitUntilEmpty()
    before = set(status.getJobIdsForGroup(None))
    action()
    listener_bus.waitUntilEmpty()
    return len(set(status.getJobIdsForGroup(None)) - before)


def test_tracker_runs_no_spark_job_of_its_own(spark, orders_csv, tmp_path):
    def run(tracked, target):
        result = Orchestrator(
            steps=pipeline(orders_csv, tmp_path / target),
            engine_type="spark",
            spark=spark,
            enable_tracker=tracked,
        ).execute()
        assert result.success, result.error

    run(True, "warm")  # first use of the code paths: class loading must not skew the count
    untracked = jobs_run_by(spark, lambda: run(False, "off"))
    tracked = jobs_run_by(spark, lambda: run(True, "on"))
    assert untracked > 0
    assert tracked <= untracked  # the csv's sample is read from the file, without Spark


def test_deferred_counts_are_settled_before_execute_returns(spark, orders_csv, tmp_path):
    bus = EventBus()
    completes = []
    bus.register_hook("node_complete", completes.append)
    result = Orchestrator(
        steps=pipeline(orders_csv, tmp_path / "t"), engine_type="spark", spark=spark, event_bus=bus
    ).execute()
    assert result.success
    by_step = {e["step_name"]: e for e in completes}
    assert by_step["read"]["row_count"] is None and by_step["read"]["count_source"] == "deferred"
    assert (
        by_step["big_orders"]["row_count"] is None
        and by_step["big_orders"]["count_source"] == "deferred"
    )
    assert (
        by_step["save"]["row_count"] == 30 and by_step["save"]["count_source"] == "commit_metrics"
    )
    lineage = result.tracker.export_lineage(tmp_path / "lineage.json")
    counts = {s["step_name"]: s["after_snapshot"]["row_count"] for s in lineage["steps"]}
    assert counts == {"read": 40, "big_orders": 30, "save": 30}
    assert spark.read.format("delta").load(str(tmp_path / "t")).count() == 30
    steps = {s["step_name"]: s for s in lineage["steps"]}
    assert steps["big_orders"]["before_snapshot"]["row_count"] == 40
    assert steps["big_orders"]["row_delta"] == -10
    assert steps["read"]["after_snapshot"]["sample_source"] == "file_scan"
    assert len(steps["read"]["after_snapshot"]["sample"]) == 5
    assert steps["big_orders"]["after_snapshot"]["sample_source"] == "skipped"


def test_exact_counts_mode_counts_at_the_step(spark, orders_csv, tmp_path):
    result = Orchestrator(
        steps=pipeline(orders_csv, tmp_path / "t"),
        engine_type="spark",
        spark=spark,
        tracker_settings=TrackerSettings(exact_counts=True),
    ).execute()
    records = {r.step_name: r for r in result.tracker.step_executions}
    assert (
        records["read"].after_snapshot.count_source == "exact"
        and records["read"].after_snapshot.row_count == 40
    )
    assert records["big_orders"].after_snapshot.row_count == 30


def test_audit_rows_for_every_step_and_cli_reads_them_back(spark, orders_csv, tmp_path, capsys):
    state = StateLocation(schema=f"audit_{tmp_path.name[-8:]}")
    result = Orchestrator(
        steps=pipeline(orders_csv, tmp_path / "t"),
        engine_type="spark",
        spark=spark,
        state_schema=state,
        pipeline_name="orders",
    ).execute()
    assert result.success
    store = AuditStore(state, spark_provider=lambda: spark)
    rows = store.read_run(result.run_id)
    assert len(rows["runs"]) == 1 and rows["runs"][0]["status"] == "SUCCESS"
    assert [(r["step_name"], r["status"]) for r in rows["steps"]] == [
        ("read", "SUCCESS"),
        ("big_orders", "SUCCESS"),
        ("save", "SUCCESS"),
    ]
    assert json.loads(rows["steps"][2]["after_snapshot_json"])["row_count"] == 30
    assert odibi(["lineage", result.run_id, "--state-schema", state.schema]) == 0
    out = capsys.readouterr().out
    assert (
        f"pipeline orders  run {result.run_id}" in out
        and "big_orders" in out
        and "rows 40 -> 30" in out
    )
    report = tmp_path / "run.html"
    assert odibi(["report", result.run_id, "-o", str(report), "--state-schema", state.schema]) == 0
    assert report.read_text().count('class="node"') == 3


def test_four_concurrent_runs_lose_no_audit_row(spark, tmp_path):
    state = StateLocation(schema=f"concurrent_{tmp_path.name[-8:]}")
    frames = [pd.DataFrame({"n": range(i + 1)}) for i in range(4)]
    for i, frame in enumerate(frames):
        frame.to_csv(tmp_path / f"in{i}.csv", index=False)
    barrier = threading.Barrier(4)
    results = [None] * 4

    def run(i):
        steps = [
            Step(
                layer="ingest",
                name="read",
                value=str(tmp_path / f"in{i}.csv"),
                outputs={"data": "raw"},
            ),
            Step(
                layer="transform",
                name="plus",
                value="SELECT n + 1 AS n FROM raw",
                inputs={"raw": "raw"},
                outputs={"data": "plus"},
            ),
            Step(
                layer="store",
                name="save",
                value=str(tmp_path / f"out{i}.parquet"),
                inputs={"data": "plus"},
            ),
        ]
        orchestrator = Orchestrator(
            steps=steps,
            engine_type="pandas",
            spark=spark,
            state_schema=state,
            pipeline_name=f"p{i}",
        )
        barrier.wait()
        results[i] = orchestrator.execute()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.success for r in results)
    tables = StateTables(state)
    audit = spark.read.format("delta").load(str(tables.audit.path))
    runs = spark.read.format("delta").load(str(tables.runs.path))
    assert audit.count() == 12 and runs.count() == 4
    assert sorted(r.execution_id for r in results) == sorted(
        row.execution_id for row in runs.collect()
    )


@pytest.mark.parametrize("engine", ["pandas", "spark"])
def test_redacted_column_never_leaves_the_process(spark, orders_csv, tmp_path, engine):
    state = StateLocation(schema=f"redact_{engine}_{tmp_path.name[-6:]}")
    result = Orchestrator(
        steps=pipeline(orders_csv, tmp_path / "t"),
        engine_type=engine,
        spark=spark,
        state_schema=state,
        tracker_settings=TrackerSettings(
            sample_rows=5, redact_columns=("*_email",), spark_samples="always"
        ),
    ).execute()
    assert result.success
    lineage = result.tracker.export_lineage(tmp_path / "lineage.json")
    text = (tmp_path / "lineage.json").read_text()
    assert "@example.com" not in text
    samples = [row for s in lineage["steps"] for row in s["after_snapshot"]["sample"]]
    assert samples and all(row["customer_email"] == "***" for row in samples)
    audit = spark.read.format("delta").load(str(StateTables(state).audit.path))
    assert audit.count() == 3
    assert not any(
        "@example.com" in json.dumps(row.asDict(), default=str) for row in audit.collect()
    )
    html = render_report(lineage)
    assert "@example.com" not in html and "***" in html


def test_sampling_off_writes_no_sample_anywhere(spark, orders_csv, tmp_path):
    state = StateLocation(schema=f"nosample_{tmp_path.name[-6:]}")
    result = Orchestrator(
        steps=pipeline(orders_csv, tmp_path / "t"),
        engine_type="spark",
        spark=spark,
        state_schema=state,
        tracker_settings=TrackerSettings(sample_rows=0),
    ).execute()
    lineage = result.tracker.to_lineage()
    assert all(
        s["after_snapshot"]["sample"] == [] and s["after_snapshot"]["sample_source"] == "off"
        for s in lineage["steps"]
    )
    audit = spark.read.format("delta").load(str(StateTables(state).audit.path))
    assert not any(
        "@example.com" in json.dumps(row.asDict(), default=str) for row in audit.collect()
    )


def test_a_count_that_may_be_partial_is_left_empty_not_wrong(spark, orders_csv, tmp_path):
    steps = [
        Step(layer="ingest", name="read", value=str(orders_csv), outputs={"data": "raw"}),
        Step(
            layer="transform",
            name="peek",
            type="function",
            value="tests.funcs:peek_first_row",
            inputs={"data": "raw"},
            outputs={"data": "peeked"},
        ),
        Step(
            layer="transform",
            name="top",
            type="sql",
            value="SELECT * FROM d ORDER BY amount DESC LIMIT 5",
            inputs={"d": "peeked"},
            outputs={"data": "top"},
        ),
        Step(
            layer="store",
            name="save",
            value=str(tmp_path / "top"),
            params={"format": "delta"},
            inputs={"data": "top"},
        ),
    ]
    result = Orchestrator(steps=steps, engine_type="spark", spark=spark).execute()
    assert result.success, result.error
    after = {r.step_name: r.after_snapshot for r in result.tracker.step_executions}
    assert after["read"].row_count is None and "function step 'peek'" in after["read"].count_reason
    assert after["peek"].row_count is None and "limit or sample" in after["peek"].count_reason
    assert after["top"].row_count == 5 and after["save"].row_count == 5


def test_an_output_no_action_reads_settles_at_once(spark, orders_csv):
    steps = [
        Step(layer="ingest", name="read", value=str(orders_csv), outputs={"data": "raw"}),
        Step(
            layer="transform",
            name="unused",
            value="SELECT * FROM raw",
            inputs={"raw": "raw"},
            outputs={"data": "u"},
        ),
    ]
    result = Orchestrator(steps=steps, engine_type="spark", spark=spark).execute()
    last_step_end = max(r.end_time for r in result.tracker.step_executions)
    assert (
        result.end_time - last_step_end
    ).total_seconds() < 2.0  # no wait for a count that cannot come
    record = result.tracker.get("unused")
    assert record.after_snapshot.row_count is None
    assert (
        record.after_snapshot.count_reason
        == "no action ran over this output, so it was never counted"
    )


def test_exact_counts_leave_nothing_cached(spark, orders_csv, tmp_path):
    Orchestrator(
        steps=pipeline(orders_csv, tmp_path / "t"),
        engine_type="spark",
        spark=spark,
        tracker_settings=TrackerSettings(exact_counts=True),
    ).execute()
    assert spark._jsparkSession.sharedState().cacheManager().isEmpty()


def test_each_execute_is_a_new_execution_with_its_error_recorded(spark, tmp_path):
    state = StateLocation(schema=f"execs_{tmp_path.name[-6:]}")
    steps = [
        Step(
            layer="transform",
            name="flaky",
            type="function",
            value="tests.funcs:flaky",
            params={"key": f"execs-{tmp_path.name}", "failures": 1},
            outputs={"data": "x"},
        ),
    ]
    orchestrator = Orchestrator(
        steps=steps, spark=spark, state_schema=state, run_id="run-7", params={}
    )
    first, second = orchestrator.execute(), orchestrator.execute()
    assert (first.execution_id, second.execution_id) == ("run-7.1", "run-7.2")
    assert not first.success and second.success
    runs = {
        r["execution_id"]: r
        for r in AuditStore(state, spark_provider=lambda: spark).read_run("run-7")["runs"]
    }
    assert runs["run-7.1"]["status"] == "FAILED"
    assert "ConnectionError: transient failure 1" in runs["run-7.1"]["error"]
    assert runs["run-7.2"]["status"] == "SUCCESS" and runs["run-7.2"]["error"] is None
