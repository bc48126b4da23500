"""Built-in hooks for the EventBus: a console run summary and a JSON metrics file.

Both are built for ``pipeline_complete`` and also work on ``pipeline_error``. They read
the payload defensively, so a payload with fewer keys still gives a useful result.
Re-exported from ``odibi_core.event_bus``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from odibi_core.files import write_json_atomically

if TYPE_CHECKING:
    from rich.console import Console

_SUCCESSFUL = ("SUCCESS", "CACHED")
_STATUS_STYLES = {
    "SUCCESS": "green",
    "CACHED": "cyan",
    "FAILED": "bold red",
    "SKIPPED": "yellow",
}


def create_summary_hook(console: Console | None = None) -> Callable[[dict[str, Any]], None]:
    """A hook that prints the run's status, duration and a table of its steps.

    Prints to ``console`` (a ``rich.console.Console``), or to standard output.
    """

    def summary_hook(event_data: dict[str, Any]) -> None:
        from rich.console import Console

        target = console if console is not None else Console()
        for renderable in _summary_renderables(event_data):
            target.print(renderable)

    return summary_hook


def create_metrics_export_hook(
    output_path: str | os.PathLike[str] = "metrics.json",
) -> Callable[[dict[str, Any]], None]:
    """A hook that writes the run's metrics and per-step list to a JSON file.

    The file is replaced atomically, so a reader never sees half of it; missing parent
    folders are created.
    """
    target = Path(output_path)

    def metrics_export_hook(event_data: dict[str, Any]) -> None:
        write_json_atomically(target, run_metrics(event_data))

    return metrics_export_hook


def run_metrics(event_data: Mapping[str, Any]) -> dict[str, Any]:
    """The metrics document written by the metrics export hook."""
    steps = [dict(step) for step in event_data.get("steps") or ()]
    metrics: dict[str, Any] = {
        "pipeline_name": event_data.get("pipeline_name"),
        "run_id": event_data.get("run_id"),
        "execution_id": event_data.get("execution_id"),
        "timestamp": event_data.get("timestamp"),
        "status": event_data.get("status"),
        "duration_ms": event_data.get("duration_ms"),
        "nodes_executed": event_data.get("nodes_executed", _executed_count(steps)),
        "success_count": event_data.get("success_count", _success_count(steps)),
    }
    for key in ("error_message", "failed_step", "failed_steps"):
        if key in event_data:
            metrics[key] = event_data[key]
    metrics["steps"] = steps
    return metrics


def format_duration(duration_ms: float | None) -> str:
    """``850 ms``, ``12.35 s`` or ``2m 05.0s``; ``-`` when unknown."""
    if duration_ms is None:
        return "-"
    if duration_ms < 1000:
        return f"{duration_ms:.0f} ms"
    seconds = duration_ms / 1000
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, seconds = divmod(seconds, 60)
    return f"{int(minutes)}m {seconds:04.1f}s"


def _summary_renderables(event_data: Mapping[str, Any]) -> list[Any]:
    from rich.table import Table
    from rich.text import Text

    steps: Sequence[Mapping[str, Any]] = event_data.get("steps") or ()
    status = str(event_data.get("status") or ("FAILED" if "error_message" in event_data else "-"))
    executed = event_data.get("nodes_executed", _executed_count(steps))
    succeeded = event_data.get("success_count", _success_count(steps))

    header = Text()
    header.append(f"Pipeline {event_data.get('pipeline_name', '-')}: ", style="bold")
    header.append(status, style=_STATUS_STYLES.get(status, "bold"))
    header.append(f" in {format_duration(event_data.get('duration_ms'))}")
    header.append(f"  ({succeeded}/{executed} steps succeeded")
    if event_data.get("run_id"):
        header.append(f", run {event_data['run_id']}")
    header.append(")")
    renderables: list[Any] = [header]

    if "error_message" in event_data:
        failed = event_data.get("failed_step")
        where = f"step '{failed}': " if failed else ""
        renderables.append(Text(f"Error in {where}{event_data['error_message']}", style="red"))

    if steps:
        table = Table(title=None, show_lines=False, header_style="bold")
        table.add_column("Step")
        table.add_column("Status")
        table.add_column("Duration", justify="right")
        table.add_column("Rows", justify="right")
        for step in steps:
            step_status = str(step.get("status", "-"))
            rows = step.get("row_count")
            # Text cells: a step name such as "[raw]" must not be read as rich markup.
            table.add_row(
                Text(str(step.get("step_name", "-"))),
                Text(step_status, style=_STATUS_STYLES.get(step_status, "")),
                Text(format_duration(step.get("duration_ms"))),
                Text("-" if rows is None else f"{rows:,}"),
            )
        renderables.append(table)
    return renderables


def _executed_count(steps: Sequence[Mapping[str, Any]]) -> int:
    return sum(1 for s in steps if s.get("status") not in ("SKIPPED", "PENDING", None))


def _success_count(steps: Sequence[Mapping[str, Any]]) -> int:
    return sum(1 for s in steps if s.get("status") in _SUCCESSFUL)


__all__ = [
    "create_metrics_export_hook",
    "create_summary_hook",
    "format_duration",
    "run_metrics",
]
