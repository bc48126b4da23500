"""Run progress for the terminal: a live ``rich`` view, or plain log lines.

Both listen on the EventBus, so they show exactly what hooks see. A step that never
starts (SKIPPED) fires no node events; its final state comes from the closing event.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import IO, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from odibi_core.core.step import NodeState
from odibi_core.events.bus import LIFECYCLE_EVENTS, EventBus, EventPriority

_STATE_STYLE = {
    NodeState.PENDING.value: "dim",
    NodeState.RUNNING.value: "yellow",
    "RETRYING": "yellow",  # shown between attempts: not a state of its own
    NodeState.SUCCESS.value: "green",
    NodeState.CACHED.value: "cyan",
    NodeState.FAILED.value: "bold red",
    NodeState.SKIPPED.value: "dim",
}


def _rows(value: Any) -> str:
    return "-" if value is None else f"{value:,} rows"


def _note(data: dict[str, Any]) -> str:
    """`` (already committed by run X as version N)`` for an append Delta skipped, else ``""``."""
    reason = data.get("count_reason")
    if data.get("count_source") != "already_committed" or not reason:
        return ""
    return f" ({reason.split(';')[0]})"


class _ProgressHooks:
    def attach(self, bus: EventBus) -> None:
        for event in LIFECYCLE_EVENTS:
            # LOW: user hooks (alerts) go first; the display follows.
            bus.register_hook(event, getattr(self, f"on_{event}"), priority=EventPriority.LOW)


class LiveProgress(_ProgressHooks):
    """One line per step with its state, elapsed time and rows, and a total bar."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self._lock = threading.Lock()
        self._progress = Progress(
            TextColumn("{task.fields[icon]}"),
            TextColumn("{task.description}", style="bold"),
            TextColumn("{task.fields[state]}"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[rows]}"),
            console=self.console,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._total: TaskID | None = None
        self.final_states: dict[str, str] = {}
        self._notes: dict[str, str] = {}

    def _set(self, name: str, state: str, **fields: Any) -> None:
        style = _STATE_STYLE.get(state, "")
        icon = {
            "SUCCESS": "[green]✔[/]",
            "CACHED": "[cyan]↺[/]",
            "FAILED": "[red]✖[/]",
            "SKIPPED": "[dim]–[/]",
        }.get(state, "[yellow]•[/]")
        self._progress.update(
            self._tasks[name], state=f"[{style}]{state}[/]" if style else state, icon=icon, **fields
        )

    def on_pipeline_start(self, data: dict[str, Any]) -> None:
        with self._lock:
            self._total = self._progress.add_task(
                f"{data['pipeline_name']}", total=data["total_steps"], state="", icon="", rows=""
            )
            for step in data.get("steps", []):
                self._tasks[step["step_name"]] = self._progress.add_task(
                    f"  {step['step_name']}",
                    total=1,
                    start=False,
                    state="[dim]PENDING[/]",
                    icon=" ",
                    rows="",
                )
            self._progress.start()

    def on_node_start(self, data: dict[str, Any]) -> None:
        with self._lock:
            task = self._tasks[data["step_name"]]
            self._progress.start_task(task)
            attempt = data.get("attempt", 1)
            self._set(
                data["step_name"], "RUNNING", rows=f"attempt {attempt}" if attempt > 1 else ""
            )

    def on_node_complete(self, data: dict[str, Any]) -> None:
        with self._lock:
            self._notes[data["step_name"]] = _note(data)
            self._finish(
                data["step_name"], data["status"], _rows(data.get("row_count")) + _note(data)
            )

    def on_node_error(self, data: dict[str, Any]) -> None:
        with self._lock:
            if data.get("will_retry"):
                self._set(
                    data["step_name"], "RETRYING", rows=f"failed attempt {data['retry_count']}"
                )
            else:
                self._finish(data["step_name"], "FAILED", data.get("error_type", "error"))

    def _finish(self, name: str, state: str, rows: str) -> None:
        task = self._tasks[name]
        if not self._progress.tasks[task].started:
            self._progress.start_task(task)
        self._set(name, state, rows=rows)
        self._progress.update(task, completed=1)
        self._progress.stop_task(task)
        if self._total is not None:
            self._progress.advance(self._total)
        self.final_states[name] = state

    def _close(self, data: dict[str, Any]) -> None:
        with self._lock:
            for step in data.get("steps", []):
                name = step["step_name"]
                if name in self._tasks and name not in self.final_states:
                    self._finish(name, step["status"], _rows(step.get("row_count")))
                elif name in self._tasks and step.get("row_count") is not None:
                    self._progress.update(
                        self._tasks[name], rows=_rows(step["row_count"]) + self._notes.get(name, "")
                    )  # settled counts
            self._progress.refresh()
            self._progress.stop()

    on_pipeline_complete = _close
    on_pipeline_error = _close


class PlainProgress(_ProgressHooks):
    """Plain, timestamped lines for logs and pipes."""

    def __init__(self, stream: IO[str] | None = None):
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()

    def _line(self, text: str) -> None:
        with self._lock:
            print(f"{time.strftime('%H:%M:%S')} {text}", file=self.stream, flush=True)

    def on_pipeline_start(self, data: dict[str, Any]) -> None:
        self._line(
            f"pipeline {data['pipeline_name']} started: {data['total_steps']} steps, run {data['run_id']}"
        )

    def on_node_start(self, data: dict[str, Any]) -> None:
        attempt = data.get("attempt", 1)
        self._line(
            f"{data['step_name']} RUNNING" + (f" (attempt {attempt})" if attempt > 1 else "")
        )

    def on_node_complete(self, data: dict[str, Any]) -> None:
        self._line(
            f"{data['step_name']} {data['status']} in {data['duration_ms']} ms, "
            f"{_rows(data.get('row_count'))}{_note(data)}"
        )

    def on_node_error(self, data: dict[str, Any]) -> None:
        retry = " (will retry)" if data.get("will_retry") else ""
        self._line(f"{data['step_name']} FAILED{retry}: {data['error_message']}")

    def _close(self, data: dict[str, Any]) -> None:
        for step in data.get("steps", []):
            if step["status"] == NodeState.SKIPPED:
                self._line(f"{step['step_name']} SKIPPED")
        self._line(
            f"pipeline {data['pipeline_name']} {data['status']} in {data['duration_ms']} ms: "
            f"{data['success_count']}/{len(data.get('steps', []))} steps succeeded"
        )

    on_pipeline_complete = _close
    on_pipeline_error = _close
