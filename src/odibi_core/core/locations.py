"""Where a step's ``value`` points: a local path, a URI or a table name, and its format.

The auto engine choice sizes what a step reads from these answers and the ingest/store
nodes read and write through them, so both agree on the target and the format. The
Delta log replay lists a table's live files without opening them.
"""

from __future__ import annotations

import glob
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from odibi_core.core.errors import EngineError, PipelineConfigError, did_you_mean
from odibi_core.core.location_kind import LocationKind, file_uri_path, location_kind
from odibi_core.core.step import Step
from odibi_core.core.step_params import FILE_EXTENSIONS, FORMATS
from odibi_core.core.tables import TABLE_NAME, validate_table_name

_GLOB_CHARS = re.compile(r"[*?\[]")


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
    """The target an engine gets for ``value``, and its path on this machine if it has one.

    A relative path resolves against ``base_dir`` (or the working directory). Everything
    else is returned exactly as written, since Spark must get it unchanged: a URI
    (``s3://bucket/x``, ``dbfs:/x``; a ``file:`` URI with its local path) and a
    ``/Volumes/...`` path, which is never resolved through the FUSE mount it may sit on.
    """
    kind = location_kind(value)
    if kind is LocationKind.FILE_URI:
        return value, file_uri_path(value).resolve()
    if kind.is_uri:
        return value, None
    if kind is LocationKind.VOLUMES_PATH:
        return value, Path(value)
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = (Path(base_dir) if base_dir is not None else Path.cwd()) / path
    path = path.resolve()
    return str(path), path


def local_path(target: str) -> Path | None:
    """The path Python's file functions reach ``target`` by: a path, Volumes or ``file:``."""
    kind = location_kind(target)
    if kind is LocationKind.FILE_URI:
        return file_uri_path(target)
    return None if kind.is_uri else Path(target)


def local_disk_path(target: str) -> Path | None:
    """The path of ``target`` on this machine's own disk; None for Volumes and URIs.

    Checks that list a folder before Spark reads or writes it run only here: Spark lists a
    Volume or a bucket itself, and a Connect client does not even see them.
    """
    return local_path(target) if location_kind(target).on_local_disk else None


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


# Names Spark and Databricks leave beside the data files of a file write.
_SIDE_FILE = re.compile(r"^(_SUCCESS|_started_.*|_committed_.*|.*\.crc)$")
_PARTITION_FOLDER = re.compile(r"^[^=]+=.*$")
_SIDE_FOLDERS = ("_temporary",)  # Spark's working folder, left behind by a failed job
_FORMAT_EXTENSIONS = {"csv": (".csv",), "json": (".json", ".jsonl"), "parquet": (".parquet",)}
_COMPRESSIONS = ("", ".gz", ".bz2", ".deflate", ".lz4", ".snappy", ".zst", ".zstd", ".xz", ".br")


def check_replaceable(target: Path, fmt: str, *, step: str, limit: int = 5) -> None:
    """Refuse a file write that would delete more than an earlier write of ``fmt`` left.

    A file write replaces its target folder whole. That is only safe when the folder holds
    nothing but ``part-*`` files of the same format, Spark's side files and ``col=value``
    partition folders of such files; anything else (a pipeline's YAML, its inputs, a Delta
    table) is refused before anything is deleted. An existing regular file is replaced
    only when its name says it is of the same format.
    """
    if target.is_dir() and not target.is_symlink():
        unexpected = unexpected_entries(target, fmt, limit=limit)
        if not unexpected:
            return
        listed = ", ".join(unexpected) + (", ..." if len(unexpected) >= limit else "")
        raise PipelineConfigError(
            f"step '{step}': refusing to overwrite '{target}' with {fmt} files: the folder "
            f"holds more than the output of an earlier {fmt} write ({listed}), and "
            "nothing was deleted. Write to a new or empty folder, or remove those entries "
            "yourself if they may go"
        )
    if target.exists() and not _is_format_file(target.name, fmt):
        raise PipelineConfigError(
            f"step '{step}': refusing to overwrite '{target}' with {fmt} files: it is an "
            f"existing file that is not {fmt}, and nothing was deleted. Write to a new "
            "folder, e.g. a name without that file's extension"
        )


def unexpected_entries(directory: Path, fmt: str, *, limit: int = 5) -> list[str]:
    """Up to ``limit`` entries of ``directory`` that no earlier ``fmt`` write left there."""
    found: list[str] = []
    pending = [directory]
    while pending and len(found) < limit:
        folder = pending.pop(0)
        for entry in sorted(folder.iterdir()):
            is_folder = entry.is_dir() and not entry.is_symlink()
            if is_folder and entry.name in _SIDE_FOLDERS:
                continue
            if is_folder and _PARTITION_FOLDER.match(entry.name):
                pending.append(entry)
                continue
            if not is_folder and entry.is_file() and _is_written_file(entry.name, fmt):
                continue
            found.append(entry.relative_to(directory).as_posix() + ("/" if is_folder else ""))
            if len(found) >= limit:
                break
    return found


def _is_written_file(name: str, fmt: str) -> bool:
    """A data file (``part-*``) of ``fmt`` or a side file of a Spark or pandas write."""
    return bool(_SIDE_FILE.match(name)) or (name.startswith("part-") and _is_format_file(name, fmt))


def _is_format_file(name: str, fmt: str) -> bool:
    lowered = name.lower()
    return any(
        lowered.endswith(extension + compression)
        for extension in _FORMAT_EXTENSIONS.get(fmt, ())
        for compression in _COMPRESSIONS
    )


def in_subfolders(root: Path, files: Iterable[Path]) -> bool:
    """True when ``root`` is a folder holding some of ``files`` in folders of their own:
    partition folders, whose names add columns the files do not hold."""
    return root.is_dir() and any(len(file.relative_to(root).parts) > 1 for file in files)


def files_with_data(path: Path, fmt: str, *, step: str) -> list[Path]:
    """The data files a read of ``path`` sees, without empty (0-byte) ones.

    None at all (an empty folder, an empty file) is the reading step's error on both
    engines: it would read as a table without columns, which no later step can use.
    """
    files = data_files(path)
    with_data = [file for file in files if file.stat().st_size > 0]
    if with_data:
        return with_data
    if path.is_file():
        what = "the file is empty (0 bytes)"
    elif files:
        what = f"its {fmt} data files are all empty (0 bytes)"
    else:
        what = f"it holds no {fmt} data files"
    raise EngineError(
        f"step '{step}': cannot read {fmt} '{path}': {what}; check the step's value, "
        "or that the step writing it ran",
        retryable=False,
    )


def path_exists(path: Path) -> bool:
    """True when ``path`` (or, for a glob, at least one match) exists."""
    if _GLOB_CHARS.search(str(path)):
        return bool(glob.glob(str(path)))
    return path.exists()


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


# --------------------------------------------------------------------------- delta log


def latest_delta_version(log_dir: Path) -> int | None:
    """The newest committed version of a local Delta table, from its log's file names."""
    try:
        versions = [int(m.group(1)) for e in log_dir.iterdir() if (m := _COMMIT.match(e.name))]
    except OSError:
        return None
    return max(versions, default=None)


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
