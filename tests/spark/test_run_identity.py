"""Run identity from parameters: a wheel task gets its job, run and task only as arguments."""

import pytest

from odibi_core.cli import main
from odibi_core.core.config import StateLocation
from odibi_core.state.audit import AuditStore

pytestmark = pytest.mark.spark

PIPELINE = """
pipeline: identity
steps:
  - {layer: ingest, name: read, value: in.csv, outputs: {data: raw}}
  - {layer: transform, name: keep, value: "SELECT * FROM r WHERE n > 0", inputs: {r: raw}, outputs: {data: kept}}
"""


# About 19 s (three executions with audit); unit tests pin the identity it records.
@pytest.mark.slow
def test_job_run_and_task_given_as_arguments_fill_the_audit_and_each_attempt_is_an_execution(
    spark, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    for variable in ("DATABRICKS_JOB_ID", "DATABRICKS_RUN_ID", "DATABRICKS_TASK_KEY"):
        monkeypatch.delenv(variable, raising=False)
    (tmp_path / "in.csv").write_text("n\n0\n1\n2\n")
    (tmp_path / "p.yaml").write_text(PIPELINE)
    schema = f"identity_{tmp_path.name[-8:]}"
    task = ["--job-id", "7", "--run-id", "99", "--task-key", "t1", "--state-schema", schema]

    assert main(["run", "p.yaml", "--quiet", *task]) == 0
    assert main(["run", "p.yaml", "--quiet", *task, "--attempt", "2"]) == 0

    stored = AuditStore(StateLocation(schema=schema), spark_provider=lambda: spark).read_run("99")
    assert [row["execution_id"] for row in stored["runs"]] == ["99.1", "99.2"]
    assert {(row["databricks_job_id"], row["databricks_run_id"]) for row in stored["runs"]} == {
        ("7", "99")
    }
    steps = [
        (r["execution_id"], r["step_name"], r["databricks_job_id"], r["databricks_task_key"])
        for r in stored["steps"]
    ]
    assert steps == [
        ("99.1", "read", "7", "t1"),
        ("99.1", "keep", "7", "t1"),
        ("99.2", "read", "7", "t1"),
        ("99.2", "keep", "7", "t1"),
    ]


def test_an_attempt_below_one_is_refused_before_anything_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.yaml").write_text(PIPELINE)
    assert main(["run", "p.yaml", "--quiet", "--no-state", "--attempt", "0"]) == 2
    assert "--attempt must be 1 or more, got 0" in capsys.readouterr().err
