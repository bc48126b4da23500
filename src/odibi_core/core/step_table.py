"""The per-step table: one row per step with its status, duration and rows.

The tracker's summary, ``odibi lineage`` and the summary hook all show it, from the same
step records: a lineage step (``Tracker.to_lineage``) or a ``pipeline_complete`` payload
step. Each picks its columns; the cells and their alignment are made here, once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

__all__ = ["Column", "format_duration", "step_cells", "step_table"]

Column = Literal[
    "step",
    "layer",
    "engine",
    "status",
    "duration",
    "rows",
    "rows before",
    "rows after",
    "delta",
    "row change",
    "schema change",
]
# Columns of numbers, aligned to the right.
NUMERIC_COLUMNS: frozenset[str] = frozenset(
    {"duration", "rows", "rows before", "rows after", "delta"}
)


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


def step_cells(step: Mapping[str, Any], columns: Sequence[Column]) -> list[str]:
    """The text of ``columns`` for one step record; ``-`` where the record has no value."""
    return [_CELLS[column](step) for column in columns]


def step_table(
    steps: Iterable[Mapping[str, Any]],
    columns: Sequence[Column],
    *,
    header: bool = True,
    indent: str = "",
    notes: Callable[[Mapping[str, Any]], list[str]] | None = None,
) -> str:
    """Aligned plain text: a header row and a rule (unless ``header`` is false), then a row
    per step. ``notes`` gives lines to print under a step's row (an error, a write)."""
    steps = list(steps)
    rows = [step_cells(step, columns) for step in steps]
    titles = [list(columns)] if header else []
    widths = [max((len(row[i]) for row in titles + rows), default=0) for i in range(len(columns))]
    lines = [_line(titles[0], columns, widths, indent) for _ in titles]
    if header:
        lines.append(indent + "  ".join("-" * width for width in widths))
    for step, row in zip(steps, rows):
        lines.append(_line(row, columns, widths, indent))
        lines.extend(f"{indent}    {note}" for note in (notes(step) if notes else ()))
    return "\n".join(lines)


def _line(cells: list[str], columns: Sequence[Column], widths: list[int], indent: str) -> str:
    aligned = [
        cell.rjust(width) if column in NUMERIC_COLUMNS else cell.ljust(width)
        for cell, column, width in zip(cells, columns, widths)
    ]
    return (indent + "  ".join(aligned)).rstrip()


def _count(value: Any) -> str:
    return "-" if value is None else f"{value:,}"


def _snapshot_rows(step: Mapping[str, Any], which: str) -> Any:
    return (step.get(which) or {}).get("row_count")


def _rows(step: Mapping[str, Any]) -> str:
    """A payload step's ``row_count``, else the lineage step's count after it ran."""
    if "row_count" in step:
        return _count(step["row_count"])
    return _count(_snapshot_rows(step, "after_snapshot"))


def _row_change(step: Mapping[str, Any]) -> str:
    before, after = _snapshot_rows(step, "before_snapshot"), _snapshot_rows(step, "after_snapshot")
    return f"rows {_count(before)} -> {_count(after)}"


def _schema_change(step: Mapping[str, Any]) -> str:
    diff = step.get("schema_diff") or {}
    changes = []
    if diff.get("added"):
        changes.append("+" + ",".join(diff["added"]))
    if diff.get("removed"):
        changes.append("-" + ",".join(diff["removed"]))
    return " ".join(changes)


def _text(key: str) -> Callable[[Mapping[str, Any]], str]:
    def cell(step: Mapping[str, Any]) -> str:
        value = step.get(key)
        return "-" if value is None else str(getattr(value, "value", value))  # NodeState

    return cell


_CELLS: Mapping[str, Callable[[Mapping[str, Any]], str]] = {
    "step": _text("step_name"),
    "layer": _text("layer"),
    "engine": _text("engine"),
    "status": _text("status"),
    "duration": lambda step: format_duration(step.get("duration_ms")),
    "rows": _rows,
    "rows before": lambda step: _count(_snapshot_rows(step, "before_snapshot")),
    "rows after": lambda step: _count(_snapshot_rows(step, "after_snapshot")),
    "delta": lambda step: _count(step.get("row_delta")),
    "row change": _row_change,
    "schema change": _schema_change,
}
