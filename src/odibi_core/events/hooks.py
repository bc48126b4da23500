"""Built-in hooks for the EventBus: a console run summary, a JSON metrics file and a data
quality alert.

The first two are built for ``pipeline_complete`` and also work on ``pipeline_error``; the
quality alert for ``node_complete`` and ``node_error``. They read
the payload defensively, so a payload with fewer keys still gives a useful result.
Re-exported from ``odibi_core.events.bus``.
"""

from __future__ import annotations

import logging
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

log = logging.getLogger(__name__)

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


def create_quality_alert_hook(
    threshold: float,
    on_alert: Callable[[dict[str, Any]], Any] | None = None,
) -> Callable[[dict[str, Any]], None]:
    """A hook that fires when a step's expectation fails too many rows.

    Register it on ``node_complete``, and on ``node_error`` to hear of the rules that failed
    a step too (that payload carries ``quality`` only then).

    It fires when any rule's failure share, ``failed / (passed + failed)``, is above
    ``threshold`` (``0.05``: more than 5% of the rows checked broke it; a broken
    ``min_rows`` or ``max_rows`` counts 1 of 1). ``on_alert`` is called once per such step with a
    ``quality_alert`` dict: the run, the step, ``threshold``, ``message`` and ``rules``
    (the rules above it, each with its ``failed_share``). Without ``on_alert`` the message
    is logged as a warning. Rules whose counts are unknown never fire.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise ValueError(
            f"create_quality_alert_hook: threshold must be a number from 0 to 1, got "
            f"{threshold!r}; e.g. 0.05 fires when more than 5% of a rule's rows fail"
        )
    if not 0 <= threshold < 1:
        raise ValueError(
            f"create_quality_alert_hook: threshold {threshold!r} is outside [0, 1); it is a "
            "share of rows, e.g. 0.05 fires when more than 5% of a rule's rows fail"
        )

    def quality_alert_hook(event_data: dict[str, Any]) -> None:
        alert = quality_alert(event_data, threshold)
        if alert is None:
            return
        if on_alert is None:
            log.warning("%s", alert["message"])
        else:
            on_alert(alert)

    return quality_alert_hook


def quality_alert(event_data: Mapping[str, Any], threshold: float) -> dict[str, Any] | None:
    """What the quality alert hook reports for one ``node_complete`` payload, if anything."""
    over = []
    for check in event_data.get("quality") or ():
        share = failed_share(check)
        if share is not None and share > threshold:
            over.append({**check, "failed_share": share})
    if not over:
        return None
    step = event_data.get("step_name")
    broken = "; ".join(
        f"{rule.get('name')} ({rule.get('rule')}, {rule.get('on_violation')}) failed "
        f"{rule['failed']:,} of {rule['passed'] + rule['failed']:,} rows "
        f"({rule['failed_share']:.1%})"
        for rule in over
    )
    return {
        "pipeline_name": event_data.get("pipeline_name"),
        "run_id": event_data.get("run_id"),
        "execution_id": event_data.get("execution_id"),
        "step_name": step,
        "threshold": threshold,
        "rules": over,
        "message": (
            f"data quality of step '{step}' (pipeline {event_data.get('pipeline_name')}, run "
            f"{event_data.get('run_id')}) is below the {threshold:.1%} failure threshold: {broken}"
        ),
    }


def failed_share(check: Mapping[str, Any]) -> float | None:
    """A rule's ``failed / (passed + failed)``; None when a count is unknown or no row was
    checked."""
    passed, failed = check.get("passed"), check.get("failed")
    if passed is None or failed is None or passed + failed == 0:
        return None
    return failed / (passed + failed)


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
    "create_quality_alert_hook",
    "create_summary_hook",
    "failed_share",
    "format_duration",
    "quality_alert",
    "run_metrics",
]
