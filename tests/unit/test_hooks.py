from __future__ import annotations

import json
import os

import pytest
from rich.console import Console

from odibi_core.events.bus import EventBus, create_metrics_export_hook, create_summary_hook
from odibi_core.events.hooks import format_duration, run_metrics

STEPS = [
    {"step_name": "read_customers", "status": "SUCCESS", "duration_ms": 120.0, "row_count": 1000},
    {"step_name": "join_all", "status": "CACHED", "duration_ms": 3.0, "row_count": None},
    {"step_name": "save", "status": "SUCCESS", "duration_ms": 2500.0, "row_count": 1000},
]

COMPLETE = {
    "pipeline_name": "customer_pipeline",
    "run_id": "run-42",
    "execution_id": "run-42.1",
    "timestamp": "2024-05-01T10:00:02+00:00",
    "duration_ms": 2650.0,
    "nodes_executed": 3,
    "success_count": 3,
    "status": "SUCCESS",
    "steps": STEPS,
}

ERROR = {
    "pipeline_name": "customer_pipeline",
    "run_id": "run-43",
    "execution_id": "run-43.2",
    "timestamp": "2024-05-01T11:00:00+00:00",
    "error_message": "Binder Error: column 'emial' not found",
    "failed_step": "join_all",
    "failed_steps": ["join_all"],
    "duration_ms": 800.0,
    "status": "FAILED",
    "steps": [
        {"step_name": "read_customers", "status": "SUCCESS", "duration_ms": 120.0, "row_count": 10},
        {"step_name": "join_all", "status": "FAILED", "duration_ms": 40.0, "row_count": None},
        {"step_name": "save", "status": "SKIPPED", "duration_ms": None, "row_count": None},
    ],
}


def rows_of(text):
    """Table rows as lists of cell texts (box-drawing characters removed)."""
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.replace("┃", "│").split("│")]
        cells = [c for c in cells if c]
        if len(cells) == 4:
            rows.append(cells)
    return rows


def test_summary_hook_prints_status_duration_and_a_row_per_step():
    console = Console(record=True, width=100, color_system=None)
    create_summary_hook(console=console)(COMPLETE)
    text = console.export_text()

    assert text.splitlines()[0] == (
        "Pipeline customer_pipeline: SUCCESS in 2.65 s  (3/3 steps succeeded, run run-42)"
    )
    assert rows_of(text) == [
        ["Step", "Status", "Duration", "Rows"],
        ["read_customers", "SUCCESS", "120 ms", "1,000"],
        ["join_all", "CACHED", "3 ms", "-"],
        ["save", "SUCCESS", "2.50 s", "1,000"],
    ]


def test_summary_hook_on_pipeline_error_shows_the_failed_step():
    console = Console(record=True, width=100, color_system=None)
    create_summary_hook(console=console)(ERROR)
    lines = console.export_text().splitlines()

    assert lines[0] == (
        "Pipeline customer_pipeline: FAILED in 800 ms  (1/2 steps succeeded, run run-43)"
    )
    assert lines[1] == "Error in step 'join_all': Binder Error: column 'emial' not found"
    assert rows_of("\n".join(lines))[1:] == [
        ["read_customers", "SUCCESS", "120 ms", "10"],
        ["join_all", "FAILED", "40 ms", "-"],
        ["save", "SKIPPED", "-", "-"],
    ]


def test_summary_hook_prints_to_stdout_by_default(capsys):
    bus = EventBus(strict=True)
    bus.register_hook("pipeline_complete", create_summary_hook())
    bus.emit("pipeline_complete", {"pipeline_name": "minimal", "duration_ms": 5})

    out = capsys.readouterr().out
    assert out == "Pipeline minimal: - in 5 ms  (0/0 steps succeeded)\n"


@pytest.mark.parametrize(
    ("duration_ms", "expected"),
    [(None, "-"), (0, "0 ms"), (999.4, "999 ms"), (1000, "1.00 s"), (125_000, "2m 05.0s")],
)
def test_format_duration(duration_ms, expected):
    assert format_duration(duration_ms) == expected


def test_metrics_hook_writes_the_run_metrics_as_json(tmp_path):
    target = tmp_path / "reports" / "nightly" / "metrics.json"
    bus = EventBus(strict=True)
    bus.register_hook("pipeline_complete", create_metrics_export_hook(output_path=target))
    bus.emit("pipeline_complete", COMPLETE)

    assert json.loads(target.read_text()) == {
        "pipeline_name": "customer_pipeline",
        "run_id": "run-42",
        "execution_id": "run-42.1",
        "timestamp": "2024-05-01T10:00:02+00:00",
        "status": "SUCCESS",
        "duration_ms": 2650.0,
        "nodes_executed": 3,
        "success_count": 3,
        "steps": STEPS,
    }
    assert os.listdir(target.parent) == ["metrics.json"]
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)


def test_metrics_hook_on_pipeline_error_derives_counts_and_keeps_the_error(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("previous run")
    create_metrics_export_hook(str(target))(ERROR)

    written = json.loads(target.read_text())
    assert written["status"] == "FAILED"
    assert (written["nodes_executed"], written["success_count"]) == (2, 1)
    assert written["error_message"] == "Binder Error: column 'emial' not found"
    assert written["failed_step"] == "join_all"
    assert written["failed_steps"] == ["join_all"]
    assert [s["status"] for s in written["steps"]] == ["SUCCESS", "FAILED", "SKIPPED"]
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_metrics_hook_leaves_the_old_file_when_the_payload_cannot_be_written(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text('{"previous": true}\n')

    class Unprintable:
        def __str__(self):
            raise RuntimeError("no text form")

    with pytest.raises(RuntimeError, match="no text form"):
        create_metrics_export_hook(target)({**COMPLETE, "timestamp": Unprintable()})

    assert target.read_text() == '{"previous": true}\n'
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_metrics_hook_writes_datetimes_as_text(tmp_path):
    from datetime import datetime, timezone

    moment = datetime(2024, 5, 1, 10, 0, tzinfo=timezone.utc)
    target = tmp_path / "metrics.json"
    create_metrics_export_hook(target)({**COMPLETE, "timestamp": moment})

    assert run_metrics({**COMPLETE, "timestamp": moment})["timestamp"] is moment
    assert json.loads(target.read_text())["timestamp"] == "2024-05-01 10:00:00+00:00"


def test_run_counts_are_the_run_summarys_when_an_event_lacks_them():
    """A CACHED step succeeded without executing: one definition of the counts everywhere."""
    from odibi_core.core.run_summary import RunSummary

    metrics = run_metrics({"pipeline_name": "p", "status": "SUCCESS", "steps": STEPS})
    summary = RunSummary.of_steps(STEPS)
    assert (metrics["nodes_executed"], metrics["success_count"]) == (2, 3)
    assert summary.counts() == {
        "total_steps": 3,
        "nodes_executed": 2,
        "success_count": 3,
        "failed_count": 0,
        "skipped_count": 0,
        "cached_count": 1,
    }
