"""Which engine runs a step: the step's own ``engine``, the pipeline default, or ``auto``.

``auto`` picks pandas when a step's input is small and Spark otherwise. The size is
estimated without scanning data: from file sizes, Parquet footers, the Delta log (the
last checkpoint plus later commits), or the known row counts of upstream outputs. The
same module says where a step's ``value`` lives and in which format, because both the
estimate and the ingest/store nodes need that answer and must agree on it.
"""

from __future__ import annotations

import glob
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from odibi_core.engine.tables import (
    TABLE_NAME,
    local_table_path,
    on_databricks,
    validate_table_name,
)
from odibi_core.errors import PipelineConfigError, did_you_mean
from odibi_core.step import ENGINES, Step

FORMATS = ("csv", "json", "parquet", "delta", "table")
FILE_EXTENSIONS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
DEFAULT_MAX_ROWS = 1_000_000
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")
_GLOB_CHARS = re.compile(r"[*?\[]")
_PEEK_BYTES = 64 * 1024
_EXACT_LINE_COUNT_FILES = 16


# --------------------------------------------------------------------------- locations


@dataclass(frozen=True)
class DataLocation:
    """Where a step's ``value`` points: a resolved path or URI, or a validated table name."""

    target: str
    format: str
    path: Path | None = None  # the local path, when the target is on this machine

    @property
    def is_table(self) -> bool:
        return self.format == "table"


def resolve_path(value: str, base_dir: str | Path | None) -> tuple[str, Path | None]:
    """Resolve a relative path against ``base_dir`` (or the working directory).

    URIs such as ``s3://bucket/x`` or ``dbfs:/x`` are returned unchanged, with no local path.
    """
    if _URI.match(value):
        return value, None
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = (Path(base_dir) if base_dir is not None else Path.cwd()) / path
    path = path.resolve()
    return str(path), path


def locate(step: Step, base_dir: str | Path | None) -> DataLocation:
    """Resolve ``step.value`` and its format: ``params.format``, the extension, or the content.

    A directory holding ``_delta_log`` is delta; a bare ``catalog.schema.table`` name that
    is no local path is a table. Anything else needs ``params.format``.
    """
    value = step.value
    if not isinstance(value, str) or not value.strip():
        raise PipelineConfigError(
            f"{step.describe()}: 'value' must be a path or table name, got {value!r}"
        )
    declared = step.params.get("format")
    if declared is not None:
        fmt = str(declared).lower()
        if fmt not in FORMATS:
            raise PipelineConfigError(
                f"{step.describe()}: format '{declared}' is not one of "
                f"{', '.join(FORMATS)}{did_you_mean(fmt, FORMATS)}"
            )
        if fmt == "table":
            return DataLocation(validate_table_name(value, step=step.name), "table")
        target, path = resolve_path(value, base_dir)
        return DataLocation(target, fmt, path)

    target, path = resolve_path(value, base_dir)
    suffix = Path(value).suffix.lower()
    if suffix in FILE_EXTENSIONS:
        return DataLocation(target, FILE_EXTENSIONS[suffix], path)
    if path is not None and (path / "_delta_log").is_dir():
        return DataLocation(target, "delta", path)
    if "/" not in value and value.count(".") == 2 and TABLE_NAME.fullmatch(value):
        return DataLocation(value, "table")
    raise PipelineConfigError(
        f"{step.describe()}: cannot tell the format of {value!r} from its extension; "
        f"set params.format to one of {', '.join(FORMATS)}"
    )


def data_files(path: Path) -> list[Path]:
    """The files a path-based read would see: the file, a glob's matches, or a folder's files.

    Hidden and bookkeeping files (``.crc``, ``_SUCCESS``, ``_delta_log``) are left out.
    """
    if _GLOB_CHARS.search(str(path)):
        return sorted(Path(p) for p in glob.glob(str(path)) if Path(p).is_file())
    if path.is_file():
        return [path]
    if not path.is_dir():
        return []
    return sorted(
        p
        for p in path.rglob("*")
        if p.is_file()
        and not any(part.startswith(("_", ".")) for part in p.relative_to(path).parts)
    )


def path_exists(path: Path) -> bool:
    """True when ``path`` (or, for a glob, at least one match) exists."""
    if _GLOB_CHARS.search(str(path)):
        return bool(glob.glob(str(path)))
    return path.exists()


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
    header = location.format == "csv" and step.params.get("header", True) not in (False, "false")
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


def human_bytes(size: int) -> str:
    """``18 KB``, ``256 MB``, ``1.2 GB`` (binary units)."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            break
        value /= 1024
    if unit == "B" or value >= 10:
        return f"{value:.0f} {unit}"
    return f"{value:.1f}".rstrip("0").rstrip(".") + f" {unit}"


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


def live_delta_files(log_dir: Path) -> dict[str, tuple[int, int | None]] | None:
    """``path -> (bytes, rows)`` of the table's current files, from the log alone.

    Replays the newest complete checkpoint and the JSON commits after it; data files are
    never opened. Returns None when the log cannot be read.
    """
    checkpoint_version, checkpoint_files = _latest_checkpoint(log_dir)
    live: dict[str, tuple[int, int | None]] = {}
    try:
        for file in checkpoint_files:
            for action in _checkpoint_actions(file, log_dir):
                _apply(live, action)
        for commit in _commits_after(log_dir, checkpoint_version):
            for line in commit.read_text().splitlines():
                if line.strip():
                    _apply(live, json.loads(line))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return live


def _apply(live: dict[str, tuple[int, int | None]], action: Mapping[str, Any]) -> None:
    if action.get("add"):
        add = action["add"]
        live[add["path"]] = (int(add.get("size") or 0), _record_count(add))
    elif action.get("remove"):
        live.pop(action["remove"]["path"], None)


def _record_count(add: Mapping[str, Any]) -> int | None:
    stats = add.get("stats")
    parsed = json.loads(stats) if isinstance(stats, str) and stats else add.get("stats_parsed")
    if not parsed or parsed.get("numRecords") is None:
        return None
    deleted = (add.get("deletionVector") or {}).get("cardinality") or 0
    return int(parsed["numRecords"]) - int(deleted)


_COMMIT = re.compile(r"^(\d{20})\.json$")
_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint(?:\.(\d{10})\.(\d{10})|\.[^.]+)?\.(parquet|json)$")


def _commits_after(log_dir: Path, version: int) -> list[Path]:
    commits = []
    for entry in log_dir.iterdir():
        match = _COMMIT.match(entry.name)
        if match and int(match.group(1)) > version:
            commits.append((int(match.group(1)), entry))
    return [path for _, path in sorted(commits)]


def _latest_checkpoint(log_dir: Path) -> tuple[int, list[Path]]:
    """The newest checkpoint whose parts are all present: ``(version, files)``, or ``(-1, [])``."""
    by_version: dict[int, list[tuple[re.Match[str], Path]]] = {}
    for entry in log_dir.iterdir():
        match = _CHECKPOINT.match(entry.name)
        if match:
            by_version.setdefault(int(match.group(1)), []).append((match, entry))
    for version in sorted(by_version, reverse=True):
        entries = by_version[version]
        multipart = [(m, p) for m, p in entries if m.group(2)]
        if multipart:
            expected = int(multipart[0][0].group(3))
            if len(multipart) == expected:
                return version, sorted(p for _, p in multipart)
            continue
        return version, [entries[0][1]]
    return -1, []


def _checkpoint_actions(file: Path, log_dir: Path) -> Iterable[Mapping[str, Any]]:
    """Add/remove actions of a checkpoint, following V2 checkpoint sidecars."""
    if file.suffix == ".json":
        actions = [json.loads(line) for line in file.read_text().splitlines() if line.strip()]
    else:
        actions = _parquet_actions(file, ("add", "remove", "sidecar"))
    for action in actions:
        sidecar = action.get("sidecar")
        if sidecar:
            yield from _parquet_actions(log_dir / "_sidecars" / sidecar["path"], ("add", "remove"))
        else:
            yield action


def _parquet_actions(file: Path, wanted: tuple[str, ...]) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    present = set(pq.read_schema(file).names)
    columns = [name for name in wanted if name in present]
    table = pq.read_table(file, columns=columns)
    return table.to_pylist()
