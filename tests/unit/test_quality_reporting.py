"""What a step's expectations found, reported everywhere a step is: the tracker's lineage,
the node_complete event, the audit and odibi_quality rows, the HTML report, the quality
alert hook and the `odibi quality` table. None of this needs Spark."""

from __future__ import annotations

import json
import logging
import re

import pytest
from rich.console import Console

from odibi_core import Step
from odibi_core.cli.quality_command import quality_heading, quality_table, unknown_count_notes
from odibi_core.core.config import StateLocation
from odibi_core.core.errors import QualityError, StateError
from odibi_core.core.expectations import QualityResult
from odibi_core.core.snapshot import Snapshot
from odibi_core.core.step import NodeState
from odibi_core.event_bus import EventBus, create_quality_alert_hook
from odibi_core.events.hooks import failed_share
from odibi_core.events.payloads import NodeComplete, NodeError, QualityCheck
from odibi_core.execution.executor import StepOutcome
from odibi_core.execution.observers import EventObserver, Observers, TrackerObserver
from odibi_core.orchestrator import Orchestrator
from odibi_core.report import render_report
from odibi_core.state.audit import (
    AuditStore,
    audit_row_from_step,
    lineage_from_rows,
    run_row_from_lineage,
)
from odibi_core.state.quality import QUALITY_COLUMNS, quality_rows
from odibi_core.tracking.tracker import Tracker
from tests.unit.test_audit_rows import sample_lineage

CHECKS = [
    {
        "name": "valid_amount",
        "rule": "amount >= 0",
        "on_violation": "drop",
        "passed": 90,
        "failed": 10,
    },
    {
        "name": "has_customer",
        "rule": "customer_id IS NOT NULL",
        "on_violation": "warn",
        "passed": 100,
        "failed": 0,
    },
    {
        "name": "not_empty",
        "rule": "min_rows 1",
        "on_violation": "fail",
        "passed": None,
        "failed": None,
        "reason": "the output was handed off unread",
    },
]


def _steps() -> list[Step]:
    return [
        Step(layer="ingest", name="read", value="orders.csv", outputs={"data": "raw"}),
        Step(
            layer="transform",
            name="clean",
            type="sql",
            value="SELECT * FROM raw",
            inputs={"raw": "raw"},
            outputs={"data": "clean"},
        ),
    ]


def _observed_run(checks_of: dict[str, list[dict]]) -> tuple[Tracker, list[tuple[str, dict]]]:
    """Outcomes fed through the run's observers as the executor calls them; the tracking
    layer's part (finishing the record) is done by hand, as it runs before the outcome."""
    orchestrator = Orchestrator(steps=_steps(), engine_type="pandas", pipeline_name="orders")
    bus = EventBus()
    events: list[tuple[str, dict]] = []
    bus.register_hook("node_complete", lambda event: events.append(("node_complete", event)))
    tracker = Tracker("orders", run_id="run-1", execution_id="run-1.1")
    messages = orchestrator.messages
    observers = Observers(
        [
            TrackerObserver(tracker, messages),
            EventObserver(bus, orchestrator.execution, messages, orchestrator.dag),
        ]
    )
    for step in orchestrator.dag.steps:
        observers.step_started(step, 1)
        tracker.finish_step(step.name, NodeState.SUCCESS, after=Snapshot(row_count=100))
        details = {"engine": "pandas"}
        if step.name in checks_of:
            details["quality"] = checks_of[step.name]
        observers.step_succeeded(step, StepOutcome(row_count=100, details=details), 1, 7)
    return tracker, events


def test_a_steps_rules_reach_its_lineage_and_its_node_complete_event_and_only_its_own():
    tracker, events = _observed_run({"clean": CHECKS})

    steps = {step["step_name"]: step for step in tracker.to_lineage()["steps"]}
    assert steps["clean"]["quality"] == CHECKS
    assert "quality" not in steps["read"]  # no expectations: no key, as with "write"
    payloads = {event["step_name"]: event for _, event in events}
    assert payloads["clean"]["quality"] == CHECKS
    assert "quality" not in payloads["read"]
    keys = set(payloads["clean"])
    assert keys <= NodeComplete.__required_keys__ | NodeComplete.__optional_keys__
    for check in payloads["clean"]["quality"]:
        assert QualityCheck.__required_keys__ <= set(check)
        assert set(check) <= QualityCheck.__required_keys__ | QualityCheck.__optional_keys__


def test_the_tracker_keeps_a_copy_of_the_rules_not_the_callers_list():
    checks = [dict(CHECKS[0])]
    tracker, _ = _observed_run({"clean": checks})
    checks[0]["failed"] = 99
    assert tracker.get("clean").to_dict()["quality"][0]["failed"] == 10


def test_a_step_a_fail_rule_failed_keeps_every_rules_counts_in_lineage_and_node_error():
    orchestrator = Orchestrator(steps=_steps(), engine_type="pandas", pipeline_name="orders")
    bus = EventBus()
    errors: list[dict] = []
    bus.register_hook("node_error", errors.append)
    tracker = Tracker("orders", run_id="run-1", execution_id="run-1.1")
    observers = Observers(
        [
            TrackerObserver(tracker, orchestrator.messages),
            EventObserver(bus, orchestrator.execution, orchestrator.messages, orchestrator.dag),
        ]
    )
    clean = orchestrator.dag.step("clean")
    results = (
        QualityResult("valid_amount", "amount >= 0", "fail", 97, 3),
        QualityResult("has_customer", "customer_id IS NOT NULL", "warn", 100, 0),
    )
    observers.step_started(clean, 1)
    observers.step_failed(clean, QualityError("clean", "broken", results), 1, False, 5)
    observers.step_failed(clean, ValueError("other"), 1, False, 5)  # no rules: no key

    expected = [result.to_dict() for result in results]
    assert tracker.get("clean").to_dict()["quality"] == expected
    assert tracker.get("clean").status is NodeState.FAILED
    assert errors[0]["quality"] == expected and "quality" not in errors[1]
    assert set(errors[0]) <= NodeError.__required_keys__ | NodeError.__optional_keys__
    alerts: list[dict] = []
    create_quality_alert_hook(0.01, alerts.append)(errors[0])
    assert [rule["name"] for rule in alerts[0]["rules"]] == ["valid_amount"]


# --------------------------------------------------------------------------- audit rows


def _lineage_with_quality() -> dict:
    lineage = sample_lineage("run_q", steps=2)
    lineage["execution_token"] = "tok"
    lineage["steps"][1]["quality"] = CHECKS
    return lineage


def _audit_rows(lineage: dict) -> list[dict]:
    return [
        audit_row_from_step(
            step,
            run_id="run_q",
            execution_id="run_q.1",
            pipeline_name="customer_pipeline",
            odibi_version="1",
            databricks={"task_key": "t1"},
            execution_token="tok",
        )
        for step in lineage["steps"]
    ]


def test_the_audit_row_holds_the_rules_as_json_and_reads_back_into_the_same_step():
    lineage = _lineage_with_quality()
    rows = _audit_rows(lineage)
    assert rows[0]["quality_json"] is None
    assert json.loads(rows[1]["quality_json"]) == CHECKS

    steps = lineage_from_rows(run_row_from_lineage(lineage), rows)
    assert steps["steps"][1]["quality"] == CHECKS
    assert "quality" not in steps["steps"][0]


def test_quality_rows_are_one_per_rule_keyed_like_the_steps_audit_row():
    rows = quality_rows(_audit_rows(_lineage_with_quality()))

    assert [(r["step_name"], r["ordinal"], r["name"]) for r in rows] == [
        ("step_1", 0, "valid_amount"),
        ("step_1", 1, "has_customer"),
        ("step_1", 2, "not_empty"),
    ]
    assert set(rows[0]) == {name for name, _ in QUALITY_COLUMNS}
    first, unknown = rows[0], rows[2]
    assert (first["run_id"], first["execution_id"], first["execution_token"]) == (
        "run_q",
        "run_q.1",
        "tok",
    )
    assert (first["pipeline_name"], first["step_status"], first["databricks_task_key"]) == (
        "customer_pipeline",
        "SUCCESS",
        "t1",
    )
    assert (first["rule"], first["on_violation"], first["passed"], first["failed"]) == (
        "amount >= 0",
        "drop",
        90,
        10,
    )
    assert first["reason"] is None and first["recorded_at"] is not None
    assert (unknown["passed"], unknown["failed"], unknown["reason"]) == (
        None,
        None,
        "the output was handed off unread",
    )


def test_a_count_that_is_no_row_count_is_refused_naming_the_step_and_rule():
    lineage = _lineage_with_quality()
    lineage["steps"][1]["quality"] = [{**CHECKS[0], "failed": -3}]
    with pytest.raises(StateError) as error:
        quality_rows(_audit_rows(lineage))
    assert str(error.value) == (
        "run run_q.1, step 'step_1', expectation 'valid_amount': failed must be a row count "
        "(0 or more), got -3"
    )


def test_a_run_without_expectations_makes_no_quality_commit():
    def no_spark():
        raise AssertionError("a run without expectations must not touch odibi_quality")

    store = AuditStore(StateLocation(schema="s"), spark_provider=no_spark)
    rows = quality_rows(_audit_rows(sample_lineage("run_q", steps=2)))
    assert rows == []
    store.quality.append(rows, txn_app_id="odibi:quality:x", txn_version=0)  # no Spark, no commit
    assert store.quality.ref.name == "s.odibi_quality"


# --------------------------------------------------------------------------- the alert hook


def _event(checks: list[dict]) -> dict:
    return {
        "pipeline_name": "orders",
        "run_id": "run-1",
        "execution_id": "run-1.1",
        "timestamp": "2024-05-01T10:00:00+00:00",
        "step_name": "clean",
        "quality": checks,
    }


def test_the_alert_fires_once_per_step_with_the_rules_above_the_threshold():
    alerts: list[dict] = []
    hook = create_quality_alert_hook(0.05, alerts.append)
    table_rule = {"name": "one_per_id", "rule": "unique (id)", "on_violation": "fail"}
    hook(_event([*CHECKS, {**table_rule, "passed": 99, "failed": 1}]))

    assert len(alerts) == 1
    alert = alerts[0]
    assert (alert["step_name"], alert["run_id"], alert["threshold"]) == ("clean", "run-1", 0.05)
    assert [(r["name"], r["failed_share"]) for r in alert["rules"]] == [("valid_amount", 0.1)]
    assert alert["message"] == (
        "data quality of step 'clean' (pipeline orders, run run-1) is below the 5.0% failure "
        "threshold: valid_amount (amount >= 0, drop) failed 10 of 100 rows (10.0%)"
    )


def test_the_alert_stays_quiet_at_the_threshold_without_counts_and_without_rules():
    alerts: list[dict] = []
    hook = create_quality_alert_hook(0.1, alerts.append)
    hook(_event(CHECKS))  # exactly 10% fails: not above 0.1
    hook(_event([CHECKS[2]]))  # counts unknown
    hook(_event([{**CHECKS[0], "passed": 0, "failed": 0}]))  # no row checked
    hook({"step_name": "read", "run_id": "run-1"})  # a step without expectations
    assert alerts == []
    create_quality_alert_hook(0.0999, alerts.append)(_event(CHECKS))
    assert [rule["name"] for rule in alerts[0]["rules"]] == ["valid_amount"]


def test_without_a_callback_the_alert_is_logged_and_it_runs_on_the_bus(caplog):
    bus = EventBus()
    bus.register_hook("node_complete", create_quality_alert_hook(0))
    with caplog.at_level(logging.WARNING, logger="odibi_core.events.hooks"):
        bus.emit("node_complete", _event([{**CHECKS[0], "passed": 0, "failed": 3}]))
    assert bus.hook_errors == []
    assert [record.getMessage() for record in caplog.records] == [
        "data quality of step 'clean' (pipeline orders, run run-1) is below the 0.0% failure "
        "threshold: valid_amount (amount >= 0, drop) failed 3 of 3 rows (100.0%)"
    ]


@pytest.mark.parametrize(
    ("threshold", "says"),
    [(1.5, "threshold 1.5 is outside [0, 1)"), ("5%", "threshold must be a number from 0 to 1")],
)
def test_a_threshold_that_is_no_share_is_refused_when_the_hook_is_made(threshold, says):
    with pytest.raises(ValueError, match=re.escape(f"create_quality_alert_hook: {says}")):
        create_quality_alert_hook(threshold)


def test_failed_share_is_none_when_unknown_or_empty():
    assert failed_share(CHECKS[0]) == 0.1
    assert failed_share(CHECKS[2]) is None
    assert failed_share({"passed": 0, "failed": 0}) is None


# --------------------------------------------------------------------------- report and CLI


def test_the_report_lists_a_steps_rules_and_highlights_the_broken_ones():
    lineage = _lineage_with_quality()
    lineage["steps"][1]["quality"] = [
        *CHECKS,
        {
            "name": "one_per_id",
            "rule": "unique (id)",
            "on_violation": "fail",
            "passed": 7,
            "failed": 3,
        },
    ]
    page = render_report(lineage)

    cards = {
        card.split('data-step="')[1].split('"')[0]: card.split("</article>")[0]
        for card in page.split('<article class="step-card"')[1:]
    }
    card = cards["step_1"]
    assert "4 expectation(s), 2 with failing rows" in card
    rules = card.split('<table class="quality-rules">')[1].split("</table>")[0]
    rows = rules.split("<tbody>")[1].split("</tbody>")[0].split("<tr")[1:]
    assert [row.split(">", 1)[0] for row in rows] == [
        ' class="violated"',
        "",
        "",
        ' class="violated fail"',
    ]
    assert "<td><code>amount &gt;= 0</code></td>" in rows[0] and "10.0%" in rows[0]
    assert "(the output was handed off unread)" in rows[2]
    assert "30.0%" in rows[3]
    assert "data quality" not in cards["step_0"]


def test_the_quality_table_names_each_step_once_and_colours_broken_rules():
    rows = [{"step_name": "clean", **check, "ordinal": i} for i, check in enumerate(CHECKS)] + [
        {"step_name": "save", **CHECKS[1], "ordinal": 0, "reason": None}
    ]
    rows[2]["reason"] = CHECKS[2]["reason"]
    console = Console(record=True, width=140, color_system="standard")
    console.print(quality_table(rows))
    text = console.export_text(clear=False)

    lines = [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in text.splitlines()
        if "│" in line
    ]
    assert lines == [
        ["clean", "valid_amount", "amount >= 0", "drop", "90", "10", "10.0%"],
        ["", "has_customer", "customer_id IS NOT NULL", "warn", "100", "0", "0.0%"],
        ["", "not_empty", "min_rows 1", "fail", "-", "-", "-"],
        ["save", "has_customer", "customer_id IS NOT NULL", "warn", "100", "0", "0.0%"],
    ]
    styled = console.export_text(styles=True)
    assert "\x1b[33m" in styled.splitlines()[3]  # the broken drop rule, yellow
    assert unknown_count_notes(rows) == [
        "clean.not_empty: not counted: the output was handed off unread"
    ]
    lineage = {"pipeline_name": "orders", "run_id": "r", "execution_id": "r.1"}
    assert quality_heading(lineage, rows) == (
        "pipeline orders  run r  execution r.1: 4 expectation(s) on 2 step(s), 1 with failing rows"
    )
    assert quality_heading(lineage, []) == (
        "pipeline orders  run r  execution r.1: no step had data quality expectations"
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "error: no runs recorded in state schema 'nothing_here'; run a pipeline with "),
        (["run_9"], "error: run 'run_9' is not in state table nothing_here.odibi_runs (no run is "),
    ],
)
def test_odibi_quality_without_recorded_runs_says_so_and_exits_1(
    args, says, tmp_path, monkeypatch, capsys
):
    from odibi_core.cli import main as odibi

    # No state table exists, so nothing starts Spark: the tables are looked for on disk.
    monkeypatch.setenv("ODIBI_WAREHOUSE", str(tmp_path))
    assert odibi(["quality", *args, "--state-schema", "nothing_here"]) == 1
    assert capsys.readouterr().err.startswith(says)
