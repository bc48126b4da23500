"""Pipelines through a remote Spark Connect session, passed as ``spark=``: lineage counts
equal to the classic run's, a MERGE with its counts, an exactly-once append, and
``odibi run`` through ``SPARK_REMOTE`` with its audit rows."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from odibi_core import Step
from odibi_core.core.config import TrackerSettings
from odibi_core.engine.connect import is_connect
from odibi_core.orchestrator import Orchestrator
from odibi_core.state.audit import AuditStore
from tests.connect.pipelines import (
    ORDERS_COUNTS,
    ORDERS_SOURCES,
    after_counts,
    orders_steps,
    write_orders,
)

pytestmark = pytest.mark.connect


def test_the_session_is_a_connect_session(spark):
    assert is_connect(spark) and is_connect(spark.range(1))


def test_csv_sql_delta_counts_equal_the_classic_runs(spark, tmp_path):
    source = write_orders(tmp_path / "in")
    result = Orchestrator(
        steps=orders_steps(source, tmp_path / "totals"), engine_type="spark", spark=spark
    ).execute()
    assert result.success, result.error
    counts, sources = after_counts(result["tracker"].to_lineage())
    assert counts == ORDERS_COUNTS
    assert sources == ORDERS_SOURCES
    written = spark.read.format("delta").load(str(tmp_path / "totals"))
    assert sorted(tuple(r) for r in written.orderBy("customer").collect()) == [
        ("a", 1, 5.0),
        ("b", 3, 10.5),
        ("c", 2, 12.0),
    ]


def test_exact_counts_count_with_an_action_and_say_so(spark, tmp_path):
    source = write_orders(tmp_path / "in")
    result = Orchestrator(
        steps=orders_steps(source, tmp_path / "totals")[:2],  # read, then SQL: no write
        engine_type="spark",
        spark=spark,
        tracker_settings=TrackerSettings(exact_counts=True),
    ).execute()
    assert result.success, result.error
    paid = result["tracker"].get("paid_orders").after_snapshot
    assert (paid.row_count, paid.count_source) == (6, "exact")
    assert paid.count_reason == (
        "counted by an extra action: Spark Connect cannot persist the data"
    )


def test_observations_below_a_limit_are_found_in_the_plan_text(spark):
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    from odibi_core.engine.spark_engine import SparkEngineContext

    engine = SparkEngineContext(lambda: spark)
    whole = spark.range(10).observe(Observation("odibi_whole_rows"), F.count(F.lit(1)))
    cut = whole.limit(3).observe(Observation("odibi_cut_rows"), F.count(F.lit(1)))
    assert engine.observations_under_limits(cut.where("id > 0")) == {"odibi_whole_rows"}


def test_an_output_no_action_reads_is_left_uncounted_with_the_reason(spark, tmp_path):
    source = write_orders(tmp_path / "in")
    result = Orchestrator(
        steps=orders_steps(source, tmp_path / "totals")[:2], engine_type="spark", spark=spark
    ).execute()
    assert result.success, result.error
    paid = result["tracker"].get("paid_orders").after_snapshot
    assert (paid.row_count, paid.count_source) == (None, "unavailable")
    assert paid.count_reason == "no action ran over this output, so it was never counted"


def _merge_steps(source, target):
    return [
        Step(layer="ingest", name="read", value=str(source), outputs={"data": "raw"}),
        Step(
            layer="store",
            name="upsert",
            value=str(target),
            params={"format": "delta", "mode": "merge", "merge_keys": ["id"]},
            inputs={"data": "raw"},
        ),
    ]


def test_merge_reports_the_counts_merge_returned(spark, tmp_path):
    target = tmp_path / "people"
    first = tmp_path / "first.csv"
    pd.DataFrame({"id": [1, 2, 3], "name": ["a", "b", "c"]}).to_csv(first, index=False)
    created = Orchestrator(
        steps=_merge_steps(first, target), engine_type="spark", spark=spark
    ).execute()
    assert created.success, created.error
    second = tmp_path / "second.csv"
    pd.DataFrame({"id": [2, 3, 4, 5], "name": ["B", "C", "d", "e"]}).to_csv(second, index=False)
    merged = Orchestrator(
        steps=_merge_steps(second, target), engine_type="spark", spark=spark
    ).execute()
    assert merged.success, merged.error
    upsert = merged["tracker"].get("upsert")
    after = upsert.after_snapshot
    assert (after.row_count, after.count_source) == (4, "commit_metrics")
    assert upsert.write["version_before"] == 0 and upsert.write["version_after"] == 1
    assert upsert.write["restore"] == f"RESTORE TABLE delta.`{target}` TO VERSION AS OF 0"
    rows = spark.read.format("delta").load(str(target)).orderBy("id").collect()
    assert [tuple(r) for r in rows] == [(1, "a"), (2, "B"), (3, "C"), (4, "d"), (5, "e")]


def test_an_append_of_the_same_run_is_committed_once(spark, tmp_path):
    pd.DataFrame({"id": [1, 2, 3]}).to_csv(tmp_path / "in.csv", index=False)
    target = tmp_path / "events"
    steps = [
        Step(layer="ingest", name="read", value=str(tmp_path / "in.csv"), outputs={"data": "raw"}),
        Step(
            layer="store",
            name="append",
            value=str(target),
            params={"format": "delta", "mode": "append"},
            inputs={"data": "raw"},
        ),
    ]

    def run(run_id):
        result = Orchestrator(
            steps=steps, engine_type="spark", spark=spark, run_id=run_id
        ).execute()
        assert result.success, result.error
        return result, spark.read.format("delta").load(str(target)).count()

    assert run("run-1")[1] == 3
    again, rows = run("run-1")  # Delta skips the transaction this run committed before
    assert rows == 3
    skipped = again["tracker"].get("append").after_snapshot
    assert skipped.count_source == "already_committed"
    assert skipped.count_reason.startswith("already committed by run run-1 as version 0")


def _location(schema):
    from odibi_core.core.config import StateLocation

    return StateLocation(schema=schema)


CLI_PIPELINE = """
pipeline: orders_cli
steps:
  - {layer: ingest, name: read_orders, value: in/orders.csv, outputs: {data: raw}}
  - layer: transform
    name: paid_orders
    value: "SELECT * FROM orders WHERE status = 'paid'"
    inputs: {orders: raw}
    outputs: {data: paid}
  - layer: transform
    name: per_customer
    value: "SELECT customer, COUNT(*) AS orders, SUM(amount) AS total FROM paid GROUP BY customer"
    inputs: {paid: paid}
    outputs: {data: totals}
  - {layer: store, name: store_totals, value: totals, params: {format: delta}, inputs: {data: totals}}
"""


def test_odibi_run_over_spark_remote_counts_and_writes_the_audit(
    spark, tmp_path, monkeypatch, capsys
):
    from odibi_core.cli import main

    assert os.environ["SPARK_REMOTE"]  # set by the suite's spark fixture
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ODIBI_WAREHOUSE", str(tmp_path / "warehouse"))
    write_orders(tmp_path / "in")
    (tmp_path / "p.yaml").write_text(CLI_PIPELINE)
    code = main(
        ["run", "p.yaml", "--engine", "spark", "--quiet", "--lineage", "l.json"]
        + ["--run-id", "cli-1", "--job-id", "7", "--task-key", "t1"]
    )
    out, err = capsys.readouterr()
    assert code == 0, out + err
    lineage = json.loads((tmp_path / "l.json").read_text())
    assert after_counts(lineage) == (ORDERS_COUNTS, ORDERS_SOURCES)
    store = AuditStore(
        _location("odibi_state"), spark_provider=lambda: spark, warehouse=tmp_path / "warehouse"
    )
    steps = store.read_run("cli-1")["steps"]
    assert sorted(row["step_name"] for row in steps) == sorted(ORDERS_COUNTS)
    assert {(row["databricks_job_id"], row["databricks_task_key"]) for row in steps} == {
        ("7", "t1")
    }
