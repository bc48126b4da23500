"""How big is what a step would read: answered from metadata, never by scanning data.

From file sizes, Parquet footers, the Delta log (the last checkpoint plus later commits),
or a table's files. Where an ingest step's ``value`` lives and in which format comes from
:mod:`odibi_core.core.locations`, the same answer the ingest and store nodes use. These
are facts; which engine runs the step is decided by
:mod:`odibi_core.execution.engine_policy`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from odibi_core.core.location_kind import LocationKind, location_kind
from odibi_core.core.locations import (
    DataLocation,
    data_files,
    live_delta_files,
    path_exists,
)
from odibi_core.core.step import Step
from odibi_core.core.step_params import io_options
from odibi_core.core.tables import local_table_path, on_databricks

DEFAULT_MAX_ROWS = 1_000_000
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
_PEEK_BYTES = 64 * 1024
_EXACT_LINE_COUNT_FILES = 16


# --------------------------------------------------------------------------- estimates


@dataclass(frozen=True)
class SizeEstimate:
    """What is known about a step's input without scanning it."""

    rows: int | None
    bytes: int | None
    source: str  # "csv", "delta", "upstream", ...
    note: str = ""  # why a figure is missing, for the reason text


def estimate_source(
    location: DataLocation,
    *,
    step: Step,
    max_bytes: int = DEFAULT_MAX_BYTES,
    warehouse: str | Path | None = None,
) -> SizeEstimate:
    """Size of what an ingest step would read, from metadata only."""
    if location.is_table:
        if on_databricks():
            return SizeEstimate(
                None, None, "table", note=f"table '{location.target}' is sized by Spark only"
            )
        path = local_table_path(location.target, warehouse)
        return _delta_estimate(path, "table")
    path = location.path
    if path is None or not _sized_here(location.target, path):
        return _not_sized_here(location)
    if not path_exists(path):
        return SizeEstimate(0, 0, location.format, note=f"'{location.target}' does not exist")
    if location.format == "delta":
        return _delta_estimate(path, "delta")
    files = data_files(path)
    total_bytes = sum(f.stat().st_size for f in files)
    if location.format == "parquet":
        if total_bytes >= max_bytes:
            return SizeEstimate(None, total_bytes, "parquet")
        return SizeEstimate(_parquet_footer_rows(files), total_bytes, "parquet")
    header = location.format == "csv" and io_options(step).get("header", True) not in (
        False,
        "false",
    )
    rows = _estimate_line_rows(files, total_bytes, header=header)
    return SizeEstimate(rows, total_bytes, location.format)


def _sized_here(target: str, path: Path) -> bool:
    """False for a Volumes path not mounted on this machine (a Connect client, say)."""
    return location_kind(target) is not LocationKind.VOLUMES_PATH or path_exists(path)


def _not_sized_here(location: DataLocation) -> SizeEstimate:
    """No size for a place Python cannot look at here: only Spark reaches it."""
    if location.path is None:
        kind = location_kind(location.target).value
        note = f"'{location.target}' is remote (a {kind}) and its size is not known locally"
    else:
        note = f"'{location.target}' is a Volumes path not mounted on this machine"
    return SizeEstimate(None, None, location.format, note=note)


# --------------------------------------------------------------------------- file formats


def _estimate_line_rows(files: list[Path], total_bytes: int, *, header: bool) -> int | None:
    """Rows of a line-based file set: exact for a few small files, else from the first 64 KB.

    A JSON document that is not one record per line (it starts with ``[``) gives None.
    """
    if not files:
        return 0
    small = len(files) <= _EXACT_LINE_COUNT_FILES and all(
        f.stat().st_size <= _PEEK_BYTES for f in files
    )
    if small:
        rows = 0
        for file in files:
            head = file.read_bytes()
            if head.lstrip().startswith(b"["):
                return None
            rows += max(_line_count(head) - (1 if header else 0), 0)
        return rows
    with files[0].open("rb") as handle:
        head = handle.read(_PEEK_BYTES)
    if head.lstrip().startswith(b"["):
        return None
    lines_in_head = head.count(b"\n")
    if lines_in_head == 0:
        return None
    bytes_per_line = len(head) / lines_in_head
    return max(round(total_bytes / bytes_per_line) - (len(files) if header else 0), 0)


def _line_count(content: bytes) -> int:
    stripped = content.rstrip(b"\r\n")
    return stripped.count(b"\n") + 1 if stripped else 0


def _parquet_footer_rows(files: Iterable[Path]) -> int:
    import pyarrow.parquet as pq

    return sum(pq.read_metadata(file).num_rows for file in files)


# --------------------------------------------------------------------------- delta log


def _delta_estimate(table_path: Path, source: str) -> SizeEstimate:
    log_dir = table_path / "_delta_log"
    if not log_dir.is_dir():
        return SizeEstimate(0, 0, source, note=f"no Delta table at {table_path}")
    live = live_delta_files(log_dir)
    if live is None:
        return SizeEstimate(None, None, source, note=f"the Delta log at {log_dir} is unreadable")
    total_bytes = sum(size for size, _ in live.values())
    counts = [rows for _, rows in live.values()]
    rows = None if any(r is None for r in counts) else sum(counts)  # type: ignore[misc]
    note = "" if rows is not None else "the Delta log has no row stats"
    return SizeEstimate(rows, total_bytes, source, note=note)
