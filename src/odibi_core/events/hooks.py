"""Built-in hooks for the EventBus: a console run summary and a JSON metrics file.

Both are built for ``pipeline_complete`` and also work on ``pipeline_error``. They read
the payload defensively, so a payload with fewer keys still gives a useful result.
Re-exported from ``odibi_core.events.bus``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from odibi_core.core.files import write_json_atomically
from odibi_core.core.run_summary import RunSummary
from odibi_core.core.step import NodeState
from odibi_core.core.step_table import NUMERIC_COLUMNS, Column, format_duration, step_cells

if TYPE_CHECKING:
    from rich.console import Console

_COLUMNS: tuple[Column, ...] = ("step", "status", "duration", "rows")
_STATUS_STYLES = {
    NodeState.SUCCESS.value: "green",
    NodeState.CACHED.value: "cyan",
    NodeState.FAILED.value: "bold red",
    NodeState.SKIPPED.value: "yellow",
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
    summary = RunSummary.of_steps(steps)
    metrics: dict[str, Any] = {
        "pipeline_name": event_data.get("pipeline_name"),
        "run_id": event_data.get("run_id"),
        "execution_id": event_data.get("execution_id"),
        "timestamp": event_data.get("timestamp"),
        "status": event_data.get("status"),
        "duration_ms": event_data.get("duration_ms"),
        "nodes_executed": event_data.get("nodes_executed", summary.nodes_executed),
        "success_count": event_data.get("success_count", summary.success_count),
    }
    for key in ("error_message", "failed_step", "failed_steps"):
        if key in event_data:
            metrics[key] = event_data[key]
    metrics["steps"] = steps
    return metrics


def _summary_renderables(event_data: Mapping[str, Any]) -> list[Any]:
    from rich.text import Text

    steps: Sequence[Mapping[str, Any]] = event_data.get("steps") or ()
    status = str(event_data.get("status") or ("FAILED" if "error_message" in event_data else "-"))
    summary = RunSummary.of_steps(steps)
    executed = event_data.get("nodes_executed", summary.nodes_executed)
    succeeded = event_data.get("success_count", summary.success_count)

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
        renderables.append(_step_table(steps))
    return renderables


def _step_table(steps: Sequence[Mapping[str, Any]]) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=None, show_lines=False, header_style="bold")
    for column in _COLUMNS:
        table.add_column(
            column.capitalize(), justify="right" if column in NUMERIC_COLUMNS else "left"
        )
    for step in steps:
        cells = step_cells(step, _COLUMNS)
        # Text cells: a step name such as "[raw]" must not be read as rich markup.
        table.add_row(
            *(Text(cell, style=_cell_style(column, cell)) for column, cell in zip(_COLUMNS, cells))
        )
    return table


def _cell_style(column: str, cell: str) -> str:
    return _STATUS_STYLES.get(cell, "") if column == "status" else ""


__all__ = [
    "create_metrics_export_hook",
    "create_summary_hook",
    "format_duration",
    "run_metrics",
]
