"""A pipeline's job run locally: three tasks, each in a process of its own through the
``odibi-task`` entry point, sharing this suite's Spark Connect server (one JVM, as
serverless is); a failed task, then a repair that reruns only it and the tasks after it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from chispa import assert_df_equality

from odibi_core.cli import main
from odibi_core.core.config import StateLocation
from odibi_core.orchestrator import Orchestrator
from odibi_core.state.audit import AuditStore

pytestmark = [pytest.mark.spark, pytest.mark.connect]

REPO = Path(__file__).resolve().parents[2]

PIPELINE = """\
pipeline: three_tasks
engine: pandas
steps:
  - {layer: ingest, name: read_orders, value: orders.csv, outputs: {data: raw}, task: ingest}
  - layer: transform
    name: totals
    type: sql
    value: SELECT customer, SUM(amount) AS total FROM orders GROUP BY customer
    inputs: {orders: raw}
    outputs: {data: totals}
    task: transform
    checkpoint: true
  - layer: transform
    name: doubled
    value: "tests.funcs:fail_while_flagged"
    params: {flag: FLAG}
    inputs: {data: totals}
    outputs: {data: doubled}
    task: transform
  - layer: store
    name: save
    value: out/doubled
    params: {format: delta, mode: overwrite}
    inputs: {data: doubled}
    task: publish
"""


@pytest.fixture
def job_dir(tmp_path, monkeypatch, spark):
    assert os.environ["SPARK_REMOTE"]  # the tasks reach the suite's server through it
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ODIBI_WAREHOUSE", str(tmp_path / "warehouse"))
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the tasks import tests.funcs
    (tmp_path / "orders.csv").write_text("order_id,customer,amount\n1,a,10\n2,b,5\n3,a,7\n")
    flag = tmp_path / "flag"
    (tmp_path / "p.yaml").write_text(PIPELINE.replace("FLAG", str(flag)))
    flag.touch()  # the function step fails until the flag is gone
    return tmp_path


def audit_of(spark, directory: Path, run_id: str):
    store = AuditStore(
        StateLocation(schema="odibi_state"),
        spark_provider=lambda: spark,
        warehouse=directory / "warehouse",
    )
    return store.read_run(run_id)


def test_a_failed_task_is_repaired_alone_and_the_target_equals_a_local_run(spark, job_dir, capsys):
    code = main(["job-run", "p.yaml", "--simulate", "--run-id", "sim-1", "--max-parallel", "2"])
    out, err = capsys.readouterr()
    assert code == 1, out + err
    assert "ingest                         SUCCESS" in out
    assert "transform                      FAILED" in out
    assert "publish                        UPSTREAM_FAILED" in out
    assert "odibi_record_run               FAILED" in out
    assert "the upstream system is down" in err  # the failed task's log tail
    assert "odibi job-run p.yaml --simulate --repair sim-1" in err

    first = audit_of(spark, job_dir, "sim-1")
    assert [(r["execution_id"], r["status"], r["skipped_count"]) for r in first["runs"]] == [
        ("sim-1.1", "FAILED", 1)
    ]
    assert sorted((r["step_name"], r["status"]) for r in first["steps"]) == [
        ("doubled", "FAILED"),
        ("read_orders", "SUCCESS"),
        ("save", "SKIPPED"),
        ("totals", "SUCCESS"),
    ]

    (job_dir / "flag").unlink()  # the fix
    code = main(["job-run", "p.yaml", "--simulate", "--repair", "sim-1"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "execution sim-1.2" in out
    assert "ingest" not in out  # a succeeded task is not rerun
    logs = sorted(p.name for p in (job_dir / "jobs" / "sim-1").glob("*.log"))
    assert logs == [  # <task>.<repair count>.log; publish never started in the first run
        "ingest.0.log",
        "odibi_record_run.0.log",
        "odibi_record_run.1.log",
        "publish.1.log",
        "transform.0.log",
        "transform.1.log",
    ]

    after = audit_of(spark, job_dir, "sim-1")
    assert [(r["execution_id"], r["status"]) for r in after["runs"]] == [
        ("sim-1.1", "FAILED"),
        ("sim-1.2", "SUCCESS"),
    ]
    repaired = sorted(
        (r["step_name"], r["status"]) for r in after["steps"] if r["execution_id"] == "sim-1.2"
    )
    # 'totals' hands nothing off, but checkpoint: true kept its output: the repaired
    # transform task restores it and runs only 'doubled'.
    assert repaired == [("doubled", "SUCCESS"), ("save", "SUCCESS"), ("totals", "CACHED")]

    local = Orchestrator(pipeline="p.yaml", spark=spark, select="+doubled").execute()
    assert local.success
    expected = spark.createDataFrame(local.data_map["doubled"])
    actual = spark.read.format("delta").load(str(job_dir / "out" / "doubled"))
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
