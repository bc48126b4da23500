"""Resume: a failed run's finished steps are restored from their checkpoints, not re-run."""

from __future__ import annotations

import pytest
from chispa import assert_df_equality

from odibi_core.core.step import NodeState
from odibi_core.orchestrator import Orchestrator

pytestmark = pytest.mark.spark

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


def test_a_resume_runs_only_the_failed_step_and_what_follows(spark, tmp_path):
    pipeline = _pipeline(tmp_path, tmp_path / "out")
    (tmp_path / "down.flag").write_text("")
    state = f"resume_{tmp_path.name[-8:]}"

    first = Orchestrator(pipeline=pipeline, state_schema=state, enable_checkpoints=True).execute()
    assert not first.success
    assert first.failed_nodes == ["enrich"] and first.skipped_nodes == ["totals", "save"]

    (tmp_path / "down.flag").unlink()  # the fault is fixed
    resumed = Orchestrator(
        pipeline=pipeline, state_schema=state, resume_from=first.execution_id
    ).execute()
    assert resumed.success, resumed.error
    assert resumed.run_id == first.run_id
    assert resumed.execution_id == f"{first.run_id}.2"
    states = resumed.node_states
    assert [
        n for n in ("read_orders", "read_customers", "join") if states[n] is NodeState.CACHED
    ] == [
        "read_orders",
        "read_customers",
        "join",
    ]
    assert all(states[n] is NodeState.SUCCESS for n in ("enrich", "totals", "save"))
    records = {r.step_name: r for r in resumed.tracker.step_executions}
    assert (
        records["join"].restored_from == f"restored from checkpoint of execution {first.run_id}.1"
    )
    assert records["join"].after_snapshot.row_count == 3
    assert records["enrich"].before_snapshot.row_count == 3

    # The same targets as a clean run.
    clean_target = tmp_path / "clean"
    clean = Orchestrator(pipeline=_pipeline(tmp_path, clean_target), state_schema=state).execute()
    assert clean.success, clean.error
    resumed_rows = spark.read.format("delta").load(str(tmp_path / "out")).orderBy("name")
    clean_rows = spark.read.format("delta").load(str(clean_target)).orderBy("name")
    assert_df_equality(resumed_rows, clean_rows)
    assert [tuple(r) for r in resumed_rows.collect()] == [("ann", 30), ("bob", 14)]

    # A resume of a finished run restores everything and appends nothing twice.
    again = Orchestrator(
        pipeline=_pipeline(tmp_path, tmp_path / "out"), state_schema=state, resume_from=first.run_id
    ).execute()
    assert again.success and set(again.cached_nodes) == set(states)
    assert spark.read.format("delta").load(str(tmp_path / "out")).count() == 2
