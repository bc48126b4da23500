"""Which engine runs a step: the step's own ``engine``, the pipeline default, or ``auto``.

``auto`` picks pandas when a step's input is small and Spark otherwise. The size is
estimated without scanning data: from file sizes, Parquet footers, the Delta log (the
last checkpoint plus later commits), or the known row counts of upstream outputs. Where
an ingest step's ``value`` lives and in which format comes from
:mod:`odibi_core.engine.locations`, the same answer the ingest and store nodes use.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from odibi_core.engine.locations import (
    DataLocation,
    data_files,
    human_bytes,
    live_delta_files,
    locate,
    path_exists,
)
from odibi_core.engine.tables import local_table_path, on_databricks
from odibi_core.errors import PipelineConfigError, did_you_mean
from odibi_core.step import ENGINES, Step
from odibi_core.step_params import io_options

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


@dataclass(frozen=True)
class EngineChoice:
    name: str  # "pandas" or "spark"
    reason: str
    estimated_rows: int | None = None
    estimated_bytes: int | None = None


def choose_engine(
    step: Step,
    default: str,
    *,
    base_dir: str | Path | None,
    upstream_rows: Mapping[str, int | None],
    max_rows: int = DEFAULT_MAX_ROWS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    warehouse: str | Path | None = None,
) -> EngineChoice:
    """Pick the engine for ``step``. ``upstream_rows`` maps its input data keys to row counts."""
    if default not in ENGINES:
        raise PipelineConfigError(
            f"default engine '{default}' is not one of {', '.join(ENGINES)}"
            f"{did_you_mean(str(default), ENGINES)}"
        )
    requested = step.engine or default
    if requested != "auto":
        origin = "step sets" if step.engine else "pipeline default"
        return EngineChoice(requested, f"{origin} engine: {requested}")
    if step.layer == "ingest":
        estimate = estimate_source(
            locate(step, base_dir), step=step, max_bytes=max_bytes, warehouse=warehouse
        )
    else:
        estimate = estimate_upstream(step, upstream_rows)
    return _decide(estimate, max_rows, max_bytes)


def estimate_upstream(step: Step, upstream_rows: Mapping[str, int | None]) -> SizeEstimate:
    if not step.inputs:
        return SizeEstimate(rows=0, bytes=None, source="no inputs")
    unknown = [key for key in step.inputs.values() if upstream_rows.get(key) is None]
    if unknown:
        listed = ", ".join(f"'{key}'" for key in unknown)
        return SizeEstimate(
            rows=None,
            bytes=None,
            source="upstream",
            note=f"row count of {listed} is unknown (a Spark output)",
        )
    total = sum(upstream_rows[key] or 0 for key in step.inputs.values())
    return SizeEstimate(rows=total, bytes=None, source="upstream")


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
    if location.path is None:
        return SizeEstimate(None, None, location.format, note=f"'{location.target}' is remote")
    path = location.path
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


def _decide(estimate: SizeEstimate, max_rows: int, max_bytes: int) -> EngineChoice:
    limits = f"{max_rows:,} rows / {human_bytes(max_bytes)}"
    if estimate.rows is None and estimate.bytes is None:
        why = estimate.note or f"size of the {estimate.source} input is unknown"
        return EngineChoice("spark", f"auto: {why}, so spark")
    under_rows = estimate.rows is None or estimate.rows < max_rows
    under_bytes = estimate.bytes is None or estimate.bytes < max_bytes
    name = "pandas" if under_rows and under_bytes else "spark"
    size = _describe(estimate)
    direction = "under" if name == "pandas" else "over"
    return EngineChoice(
        name,
        f"auto: {size} {direction} {limits}",
        estimated_rows=estimate.rows,
        estimated_bytes=estimate.bytes,
    )


def _describe(estimate: SizeEstimate) -> str:
    if estimate.source == "upstream":
        return f"{estimate.rows:,} rows from upstream"
    if estimate.source == "no inputs":
        return "no inputs"
    detail = f"{human_bytes(estimate.bytes or 0)} {estimate.source}"
    if estimate.note:
        detail = f"{detail}; {estimate.note}"
    if estimate.rows is None:
        return f"unknown rows ({detail})"
    return f"~{estimate.rows:,} rows ({detail})"


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
