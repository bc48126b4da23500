"""Resume: a failed run's finished steps are restored from their checkpoints, not re-run."""

from __future__ import annotations

import json
import shlex

import pytest
from chispa import assert_df_equality

from odibi_core.cli import main
from odibi_core.orchestrator import Orchestrator

# About 80 s here: two dozen small Delta commits (checkpoints, audit). `make test-slow`.
pytestmark = [pytest.mark.spark, pytest.mark.slow]

PIPELINE = """
pipeline: six_steps
engine: pandas
steps:
  - {{layer: ingest, name: read_orders, value: orders.csv, outputs: {{data: orders}}}}
  - {{layer: ingest, name: read_customers, value: customers.csv, outputs: {{data: customers}}}}
  - layer: transform
    name: join
    value: "SELECT o.id, c.name, o.amount AS total FROM o JOIN c ON o.customer = c.id"
    inputs: {{o: orders, c: customers}}
    outputs: {{data: joined}}
  - layer: transform
    name: enrich
    type: function
    value: "tests.funcs:fail_while_flagged"
    params: {{flag: "{flag}"}}
    inputs: {{data: joined}}
    outputs: {{data: enriched}}
  - layer: transform
    name: totals
    value: "SELECT name, sum(doubled) AS doubled FROM e GROUP BY name"
    inputs: {{e: enriched}}
    outputs: {{data: totals}}
  - {{layer: store, name: save, value: "{target}", params: {{format: delta, mode: append}}, inputs: {{data: totals}}}}
"""


def _pipeline(folder, target):
    (folder / "orders.csv").write_text("id,customer,amount\n1,1,10\n2,1,5\n3,2,7\n")
    (folder / "customers.csv").write_text("id,name\n1,ann\n2,bob\n")
    path = folder / "p.yaml"
    path.write_text(PIPELINE.format(flag=folder / "down.flag", target=target))
    return path


def test_a_resume_runs_only_the_failed_step_and_what_follows(spark, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _pipeline(tmp_path, tmp_path / "out")
    (tmp_path / "down.flag").write_text("")
    state = f"resume_{tmp_path.name[-8:]}"

    # A run with checkpoints fails at step 4; odibi run prints how to resume it.
    assert main(["run", "p.yaml", "--quiet", "--checkpoints", "--state-schema", state]) == 1
    err = capsys.readouterr().err
    assert "enrich FAILED" in err and "totals SKIPPED" in err
    hint = err.split("rerun what failed with:\n", 1)[1].splitlines()[0].strip()
    command = shlex.split(hint)
    assert command[:4] == ["odibi", "run", "p.yaml", "--resume"]
    assert command[5:] == ["--state-schema", state]
    run_id = command[4]

    # The fault is fixed; the resume restores steps 1-3 and runs 4-6 only.
    (tmp_path / "down.flag").unlink()
    assert main([*command[1:], "--quiet", "--lineage", "lineage.json"]) == 0
    lineage = json.loads((tmp_path / "lineage.json").read_text())
    assert (lineage["run_id"], lineage["execution_id"]) == (run_id, f"{run_id}.2")
    steps = {s["step_name"]: s for s in lineage["steps"]}
    assert {name: s["status"] for name, s in steps.items()} == {
        "read_orders": "CACHED",
        "read_customers": "CACHED",
        "join": "CACHED",
        "enrich": "SUCCESS",
        "totals": "SUCCESS",
        "save": "SUCCESS",
    }
    assert steps["join"]["restored_from"] == f"restored from checkpoint of execution {run_id}.1"
    assert steps["join"]["after_snapshot"]["row_count"] == 3
    assert steps["enrich"]["before_snapshot"]["row_count"] == 3

    # The target equals a clean run's.
    clean = Orchestrator(pipeline=_pipeline(tmp_path, tmp_path / "clean"))
    assert clean.execute().success
    resumed_rows = spark.read.format("delta").load(str(tmp_path / "out")).orderBy("name")
    clean_rows = spark.read.format("delta").load(str(tmp_path / "clean")).orderBy("name")
    assert_df_equality(resumed_rows, clean_rows)
    assert [tuple(r) for r in resumed_rows.collect()] == [("ann", 30), ("bob", 14)]

    # Resuming the finished run restores every step and appends nothing twice.
    again = Orchestrator(
        pipeline=_pipeline(tmp_path, tmp_path / "out"), state_schema=state, resume_from=run_id
    ).execute()
    assert again.success and sorted(again.cached_nodes) == sorted(steps)
    assert again.execution_id == f"{run_id}.3"
    assert spark.read.format("delta").load(str(tmp_path / "out")).count() == 2
