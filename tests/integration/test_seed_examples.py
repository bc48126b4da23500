"""The seed document's code examples, run as written on a 5-step pipeline, on both engines.

Only the step definitions behind the seed's ``...`` are filled in (seed_steps.py). The Spark
variants pass ``engine_type="spark"`` where the seed says ``"pandas"``.
"""

import json
import threading
import time

import pytest

from odibi_core import Step
from odibi_core.events.bus import (
    EventBus,
    EventPriority,
    create_metrics_export_hook,
    create_summary_hook,
)
from odibi_core.orchestrator import Orchestrator
from tests.integration.seed_steps import five_steps, three_ingests_and_join


@pytest.fixture(params=["pandas", pytest.param("spark", marks=pytest.mark.spark)])
def engine(request):
    if request.param == "spark":
        request.getfixturevalue("spark")
    return request.param


def test_using_tracker(engine, seed_data, capsys):
    steps = five_steps()
    orchestrator = Orchestrator(
        steps=steps,
        engine_type=engine,
        enable_tracker=True,  #  Enable Tracker
    )

    result = orchestrator.execute()

    # Access Tracker
    tracker = result["tracker"]

    # Export lineage
    tracker.export_lineage("lineage_output.json")

    # Get execution summary
    print(f"Total steps: {len(tracker.step_executions)}")
    for step_exec in tracker.step_executions:
        print(f"{step_exec.step_name}: {step_exec.duration_ms}ms, {step_exec.row_delta} rows")

    out = capsys.readouterr().out
    assert result["success"] is True and result.success_count == 5
    assert "Total steps: 5" in out
    assert "read_customers: " in out and "ms, 6 rows" in out
    assert "filter_customers: " in out and "ms, -3 rows" in out
    lineage = json.loads((seed_data.parent / "lineage_output.json").read_text())
    assert list(lineage)[:6] == [
        "pipeline_name",
        "run_id",
        "execution_id",
        "start_time",
        "end_time",
        "total_duration_ms",
    ]
    by_name = {s["step_name"]: s for s in lineage["steps"]}
    assert by_name["read_customers"]["before_snapshot"] == {
        "schema": [],
        "row_count": 0,
        "sample": [],
        "count_source": "empty",
        "sample_source": "none",
    }
    assert by_name["read_customers"]["after_snapshot"]["schema"] == [
        "customer_id: int64",
        "name: string",
        "email: string",
        "country: string",
    ]
    assert [s["after_snapshot"]["row_count"] for s in lineage["steps"]] == [6, 3, 3, 3, 3]
    assert by_name["read_customers"]["row_delta"] == 6
    assert by_name["read_customers"]["schema_diff"]["added"] == [
        "customer_id",
        "name",
        "email",
        "country",
    ]


def test_registering_hooks(engine, seed_data, capsys):
    steps = five_steps()
    # Create EventBus
    event_bus = EventBus()

    # Define custom hook function
    def send_slack_alert(event_data):
        print(f"[SLACK] Pipeline started: {event_data['pipeline_name']}")
        # In production: send actual Slack message

    def log_node_completion(event_data):
        print(f"[LOG] Node {event_data['step_name']} completed in {event_data['duration_ms']}ms")

    # Register hooks
    event_bus.register_hook(
        event_type="pipeline_start", hook_func=send_slack_alert, priority=EventPriority.HIGH
    )

    event_bus.register_hook(
        event_type="node_complete", hook_func=log_node_completion, priority=EventPriority.MEDIUM
    )

    # Use in Orchestrator
    orchestrator = Orchestrator(
        steps=steps,
        engine_type=engine,
        event_bus=event_bus,  #  Pass custom EventBus
    )

    result = orchestrator.execute()
    out = capsys.readouterr().out.splitlines()
    assert result["success"]
    assert out[0] == "[SLACK] Pipeline started: pipeline"
    completed = [line for line in out if line.startswith("[LOG] Node ")]
    assert len(completed) == 5
    assert [line.split()[2] for line in completed] == [
        "read_customers",
        "filter_customers",
        "add_column",
        "drop_columns",
        "save",
    ]
    assert event_bus.hook_errors == []


def test_built_in_hook_helpers(engine, seed_data, capsys):
    event_bus = EventBus()
    # Create summary hook (prints execution summary)
    summary_hook = create_summary_hook()
    event_bus.register_hook("pipeline_complete", summary_hook)

    # Create metrics export hook (saves metrics to file)
    metrics_hook = create_metrics_export_hook(output_path="metrics.json")
    event_bus.register_hook("pipeline_complete", metrics_hook)

    result = Orchestrator(
        steps=five_steps(),
        engine_type=engine,
        event_bus=event_bus,
        pipeline_name="customer_pipeline",
    ).execute()
    assert result.success
    out = capsys.readouterr().out
    for name in ("read_customers", "filter_customers", "add_column", "drop_columns", "save"):
        assert name in out
    assert "SUCCESS" in out
    metrics = json.loads((seed_data.parent / "metrics.json").read_text())
    assert metrics["pipeline_name"] == "customer_pipeline"
    assert metrics["nodes_executed"] == 5 and metrics["success_count"] == 5
    assert [s["step_name"] for s in metrics["steps"]] == [
        "read_customers",
        "filter_customers",
        "add_column",
        "drop_columns",
        "save",
    ]
    assert [s["row_count"] for s in metrics["steps"]] == [6, 3, 3, 3, 3]


def test_example_1_view_tracker_snapshots(engine, seed_data, capsys):
    steps = five_steps()
    orchestrator = Orchestrator(steps=steps, engine_type=engine, enable_tracker=True)
    result = orchestrator.execute()

    tracker = result["tracker"]

    # Examine snapshots for a specific step
    for step_exec in tracker.step_executions:
        if step_exec.step_name == "filter_customers":
            print(f"Before: {step_exec.before_snapshot.row_count} rows")
            print(f"After: {step_exec.after_snapshot.row_count} rows")
            print(
                f"Rows removed: {step_exec.before_snapshot.row_count - step_exec.after_snapshot.row_count}"
            )
            print(f"Schema diff: {step_exec.schema_diff}")

    out = capsys.readouterr().out
    assert "Before: 6 rows\nAfter: 3 rows\nRows removed: 3\n" in out
    assert "Schema diff: {'added': [], 'removed': [], 'changed': []}" in out


def test_example_2_custom_error_alert_hook(engine, seed_data, capsys):
    steps = five_steps()
    steps[2] = Step(
        layer="transform",
        name="add_column",
        type="function",
        value="tests.funcs:explode",
        inputs={"data": "de_customers"},
        outputs={"data": "with_column"},
    )

    def error_alert_hook(event_data):
        step_name = event_data["step_name"]
        error_msg = event_data["error_message"]
        print(f"🚨 ERROR ALERT 🚨")
        print(f"Step '{step_name}' failed: {error_msg}")
        # In production: send email, Slack, PagerDuty, etc.

    event_bus = EventBus()
    event_bus.register_hook("node_error", error_alert_hook, priority=EventPriority.CRITICAL)

    orchestrator = Orchestrator(steps=steps, engine_type=engine, event_bus=event_bus)
    result = orchestrator.execute()

    out = capsys.readouterr().out
    # The message leads with the user's own line (absolute: the cwd is a temporary folder).
    assert "🚨 ERROR ALERT 🚨\nStep 'add_column' failed: /" in out
    assert (
        "tests/funcs.py, line 31, in explode: ValueError: the middle step broke on purpose\n" in out
    )
    assert result["success"] is False
    assert result["failed_nodes"] == ["add_column"]
    assert result["skipped_nodes"] == ["drop_columns", "save"]


def test_example_3_export_and_visualize_lineage(engine, seed_data, capsys):
    steps = five_steps()
    # Execute pipeline
    orchestrator = Orchestrator(steps=steps, engine_type=engine, enable_tracker=True)
    result = orchestrator.execute()

    # Export lineage
    result["tracker"].export_lineage("pipeline_lineage.json")

    # Later: Load and analyze
    with open("pipeline_lineage.json", "r") as f:
        lineage = json.load(f)

    print(f"Pipeline: {lineage['pipeline_name']}")
    print(f"Total duration: {lineage['total_duration_ms']}ms")
    for step in lineage["steps"]:
        print(f"  - {step['step_name']}: {step['duration_ms']}ms, {step['row_delta']} rows")

    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Pipeline: pipeline"
    assert out[1].startswith("Total duration: ") and out[1].endswith("ms")
    assert [line.split(":")[0] for line in out[2:]] == [
        "  - read_customers",
        "  - filter_customers",
        "  - add_column",
        "  - drop_columns",
        "  - save",
    ]
    assert (
        out[2].endswith(", 6 rows") and out[3].endswith(", -3 rows") and out[4].endswith(", 0 rows")
    )


def test_exercise_1_track_schema_changes(engine, seed_data):
    result = Orchestrator(steps=five_steps(), engine_type=engine, enable_tracker=True).execute()
    diffs = {s.step_name: s.schema_diff for s in result["tracker"].step_executions}
    assert diffs["add_column"] == {"added": ["new_column"], "removed": [], "changed": []}
    assert diffs["drop_columns"] == {"added": [], "removed": ["email", "country"], "changed": []}


def test_exercise_2_node_timing_hook(engine, seed_data, capsys):
    event_bus = EventBus()

    def timing_hook(event_data):
        print(f"  {event_data['step_name']}: {event_data['duration_ms']}ms")

    event_bus.register_hook("node_complete", timing_hook)
    Orchestrator(steps=five_steps(), engine_type=engine, event_bus=event_bus).execute()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5
    assert all(
        line.startswith("  ") and line.endswith("ms") and int(line.split(": ")[1][:-2]) >= 0
        for line in lines
    )


def test_exercise_3_parallel_reads(engine, seed_data):
    event_bus = EventBus()
    order, lock = [], threading.Lock()

    def slow_start(event_data):
        # Hooks run on the step's worker thread: a slow hook makes overlap observable.
        with lock:
            order.append(("start", event_data["step_name"], time.perf_counter()))
        time.sleep(0.3)

    def done(event_data):
        with lock:
            order.append(("done", event_data["step_name"], time.perf_counter()))

    event_bus.register_hook("node_start", slow_start)
    event_bus.register_hook("node_complete", done)
    result = Orchestrator(
        steps=three_ingests_and_join(), engine_type=engine, event_bus=event_bus
    ).execute()
    assert result.success
    reads = ("read_customers", "read_orders", "read_products")
    starts = {name: t for kind, name, t in order if kind == "start"}
    dones = {name: t for kind, name, t in order if kind == "done"}
    # All three reads were running at the same moment...
    assert max(starts[r] for r in reads) < min(dones[r] for r in reads)
    # ...and the join waited for all three.
    assert starts["join_all"] >= max(dones[r] for r in reads)
    joined = result.data_map["joined"]
    rows = len(joined) if engine == "pandas" else joined.count()
    assert rows == 4
