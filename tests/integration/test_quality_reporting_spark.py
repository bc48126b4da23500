"""A pandas pipeline with expectations, recorded in Delta state: its lineage, node_complete
events, audit rows, odibi_quality rows and `odibi quality` output all say the same."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from odibi_core import Step
from odibi_core.cli import main as odibi
from odibi_core.core.config import StateLocation
from odibi_core.events.bus import EventBus
from odibi_core.orchestrator import Orchestrator
from odibi_core.state.audit import AuditStore
from odibi_core.state.quality import rows_of_execution

pytestmark = pytest.mark.spark

CLEAN = [
    ("valid_amount", "amount >= 0", "drop", 4, 2),
    ("has_customer", "customer_id IS NOT NULL", "warn", 5, 1),
    ("not_empty", "min_rows 1", "fail", 1, 0),
]
SAVE = [("positive", "amount > 0", "warn", 3, 1)]


def _checks(rules):
    keys = ("name", "rule", "on_violation", "passed", "failed")
    return [dict(zip(keys, rule)) for rule in rules]


def _steps(tmp_path):
    source = tmp_path / "orders.csv"
    pd.DataFrame(
        {
            "order_id": range(1, 7),
            "customer_id": [1, 2, None, 4, 5, 6],
            "amount": [10.0, -1.0, 5.0, -2.0, 7.0, 0.0],
        }
    ).to_csv(source, index=False)
    return [
        Step(layer="ingest", name="read", value=str(source), outputs={"data": "raw"}),
        Step(
            layer="transform",
            name="clean",
            type="sql",
            value="SELECT * FROM orders",
            inputs={"orders": "raw"},
            outputs={"data": "clean"},
            expectations={
                "valid_amount": {"rule": "amount >= 0", "on_violation": "drop"},
                "has_customer": {"rule": "customer_id IS NOT NULL", "on_violation": "warn"},
            },
            table_expectations={"not_empty": {"min_rows": 1}},
        ),
        Step(
            layer="store",
            name="save",
            value=str(tmp_path / "clean.parquet"),
            inputs={"data": "clean"},
            expectations={"positive": {"rule": "amount > 0", "on_violation": "warn"}},
        ),
    ]


def test_a_runs_expectations_agree_in_lineage_events_state_and_cli(
    spark, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("COLUMNS", "160")  # rich's table width off a terminal
    state = StateLocation(schema=f"quality_{tmp_path.name[-8:]}")
    bus = EventBus()
    completed: dict[str, dict] = {}
    bus.register_hook("node_complete", lambda event: completed.update({event["step_name"]: event}))
    result = Orchestrator(
        steps=_steps(tmp_path),
        engine_type="pandas",
        spark=spark,
        state_schema=state,
        event_bus=bus,
        pipeline_name="orders",
    ).execute()
    assert result.success, result.error

    lineage = result.tracker.to_lineage()
    steps = {step["step_name"]: step for step in lineage["steps"]}
    assert steps["clean"]["quality"] == _checks(CLEAN)
    assert steps["save"]["quality"] == _checks(SAVE)
    assert "quality" not in steps["read"] and "quality" not in completed["read"]
    assert [completed[name]["quality"] for name in ("clean", "save")] == [
        _checks(CLEAN),
        _checks(SAVE),
    ]

    store = AuditStore(state, spark_provider=lambda: spark)
    audit = sorted(store.audit.read({"run_id": result.run_id}), key=lambda row: row["start_time"])
    assert [row["quality_json"] and json.loads(row["quality_json"]) for row in audit] == [
        None,
        _checks(CLEAN),
        _checks(SAVE),
    ]
    rows = rows_of_execution(store.quality, lineage)
    assert [
        (r["step_name"], r["name"], r["rule"], r["on_violation"], r["passed"], r["failed"])
        for r in rows
    ] == [("clean", *rule) for rule in CLEAN] + [("save", *rule) for rule in SAVE]
    assert {(r["execution_id"], r["pipeline_name"], r["step_status"]) for r in rows} == {
        (result.execution_id, "orders", "SUCCESS")
    }
    # Both steps' rules in one commit: the one that created the table with its first rows.
    history = spark.sql(f"DESCRIBE HISTORY delta.`{store.quality.ref.path}`").collect()
    assert [row["operation"] for row in history] == ["CREATE TABLE AS SELECT"]

    capsys.readouterr()
    assert odibi(["quality", result.run_id, "--state-schema", state.schema]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == (
        f"pipeline orders  run {result.run_id}  execution {result.execution_id}: "
        "4 expectation(s) on 2 step(s), 3 with failing rows"
    )
    cells = [
        [cell.strip() for cell in line.split("│")[1:-1]] for line in out.splitlines() if "│" in line
    ]
    assert cells == [
        ["clean", "valid_amount", "amount >= 0", "drop", "4", "2", "33.3%"],
        ["", "has_customer", "customer_id IS NOT NULL", "warn", "5", "1", "16.7%"],
        ["", "not_empty", "min_rows 1", "fail", "1", "0", "0.0%"],
        ["save", "positive", "amount > 0", "warn", "3", "1", "25.0%"],
    ]

    assert odibi(["quality", "no_such_run", "--state-schema", state.schema]) == 1
    assert capsys.readouterr().err == (
        f"error: run 'no_such_run' is not in state table {state.schema}.odibi_runs (the latest "
        f"run is '{result.run_id}'); check the run id, and that the state location is the one "
        "the run used\n"
    )
