"""Where a run writes: targets no step may replace, and steps that clash over one target.

Checked when a pipeline is validated, before anything runs, so a mistyped ``value: "."``
is one clear message instead of a deleted folder. Pure apart from resolving paths: no
directory is listed here (the engines check what a folder holds just before they write),
and neither pandas nor pyspark is imported.

Three rules:

- a store never targets a place that holds more than its own output: a filesystem,
  bucket, container, DBFS, Volume or Workspace root, the pipeline's folder, the current
  directory, the warehouse, or a folder holding one of the run's inputs;
- a path read as files is never overwritten in the same run (a lazy Spark read would find
  it emptied); Delta reads may share a target with a write, because they are pinned to
  the version current at ingest;
- two writes of one target must not race or replace each other: neither may overwrite,
  and a dependency must order them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from odibi_core.core.errors import PipelineConfigError
from odibi_core.core.locations import locate, resolve_path
from odibi_core.core.step import Step
from odibi_core.core.tables import default_warehouse, qualify
from odibi_core.core.write_spec import FILE_FORMATS

READ_LAYERS = ("ingest",)
WRITE_LAYERS = ("store", "publish")
_PARAM_REF = "${params."


@dataclass(frozen=True)
class Place:
    """What one step reads or writes, in a form two steps can be compared by."""

    step: Step
    ref: str
    key: str  # a resolved local path, a normalised URI, or a lower-cased catalog.schema.table
    format: str | None  # None when it cannot be told before the run
    path: Path | None = None  # the local path
    is_table: bool = False

    @property
    def mode(self) -> str:
        params = self.step.params if isinstance(self.step.params, Mapping) else {}
        return str(params.get("mode", "overwrite")).lower()

    @property
    def as_files(self) -> bool:
        """Read or written as plain files (or of a format not known yet): never pinned."""
        return self.format is None or self.format in FILE_FORMATS

    def contains(self, other: Place) -> bool:
        """True when ``other`` lies strictly inside this place."""
        if self.is_table or other.is_table:
            return False
        if self.path is not None and other.path is not None:
            return self.path in other.path.parents
        return other.key.startswith(self.key.rstrip("/") + "/")


def check_targets(
    steps: Sequence[Step],
    refs: Sequence[str] | None = None,
    *,
    base_dir: str | Path | None = None,
    where: str = "<steps>",
) -> list[str]:
    """Every problem with where ``steps`` write (empty when safe). Never raises.

    Relative paths resolve against ``base_dir``, the pipeline file's folder, or the
    current directory for steps built in Python. Values still holding ``${params.x}``
    are checked once the parameters are resolved.
    """
    refs = (
        list(refs) if refs else [f"{where}, step {i + 1} '{s.name}'" for i, s in enumerate(steps)]
    )
    base = Path(base_dir).resolve() if base_dir is not None else None
    reads = _places(steps, refs, base, READ_LAYERS)
    writes = _places(steps, refs, base, WRITE_LAYERS)
    problems: list[str] = []
    for write in writes:
        problems.extend(_forbidden(write, reads, base))
    problems.extend(_read_and_overwritten(reads, writes))
    problems.extend(_written_twice(writes, steps))
    return problems


def raise_on_unsafe_targets(
    steps: Sequence[Step], *, base_dir: str | Path | None = None, where: str = "<steps>"
) -> None:
    """``check_targets``, raising every problem as one ``PipelineConfigError``."""
    problems = check_targets(steps, base_dir=base_dir, where=where)
    if problems:
        raise PipelineConfigError(problems)


# --------------------------------------------------------------------------- places


def _places(
    steps: Sequence[Step], refs: Sequence[str], base: Path | None, layers: tuple[str, ...]
) -> list[Place]:
    places = []
    for step, ref in zip(steps, refs):
        if isinstance(step, Step) and isinstance(step.name, str) and step.layer in layers:
            place = place_of(step, ref, base)
            if place is not None:
                places.append(place)
    return places


def place_of(step: Step, ref: str, base_dir: Path | None) -> Place | None:
    """Where ``step.value`` points, or None when that cannot be known before the run."""
    value = step.value
    if not isinstance(value, str) or not value.strip() or _PARAM_REF in value:
        return None
    if not isinstance(step.params, Mapping):
        return None
    try:
        location = locate(step, base_dir)
        fmt: str | None = location.format
    except (PipelineConfigError, TypeError, ValueError):
        if str(step.params.get("format", "")).lower() == "table":
            return None  # not a valid table name: the node says so when it runs
        location, fmt = None, None  # a format not known yet: still a path to compare
    if location is not None and location.is_table:
        return Place(step, ref, ".".join(qualify(location.target)).lower(), fmt, is_table=True)
    target, path = resolve_path(value, base_dir)
    if path is not None:
        return Place(step, ref, str(path), fmt, path=path)
    return Place(step, ref, _normalise_uri(target), fmt)


def _normalise_uri(uri: str) -> str:
    parts = urlsplit(uri)
    path = PurePosixPath(parts.path or "/").as_posix()
    netloc = f"//{parts.netloc.lower()}" if parts.netloc else ""
    return f"{parts.scheme.lower()}:{netloc}{path}"


# --------------------------------------------------------------------------- forbidden targets


def _forbidden(write: Place, reads: Sequence[Place], base: Path | None) -> list[str]:
    if write.is_table:
        return []
    reason = _root_reason(write) or _local_reason(write, base)
    if reason is None:
        for read in reads:
            if write.contains(read):
                reason = f"it contains '{read.key}', which step '{read.step.name}' reads"
                break
    if reason is None:
        return []
    return [
        f"{write.ref}: refusing to write to '{write.key}': {reason}; a {write.step.layer} "
        f"replaces everything at its target, so give it a folder of its own, "
        f"e.g. value: {_suggestion(write)}"
    ]


def _root_reason(write: Place) -> str | None:
    """Filesystem, bucket, container, DBFS, Volume and Workspace roots."""
    if write.path is not None:
        parts = write.path.parts
        if write.path.parent == write.path:
            return "it is a filesystem root"
        return _databricks_root(parts[1:])
    parts = urlsplit(write.key)
    segments = [s for s in parts.path.split("/") if s]
    if parts.scheme == "dbfs":
        return "it is the DBFS root" if not segments else _databricks_root(segments)
    if not segments:
        what = "container" if "@" in parts.netloc else "bucket"
        return f"it is the root of the {what} '{parts.netloc}'"
    return None


def _databricks_root(segments: Sequence[str]) -> str | None:
    if segments and segments[0] == "Volumes" and len(segments) <= 4:
        return "it is a Unity Catalog Volume root; write to a folder inside a volume"
    if segments and segments[0] == "Workspace" and len(segments) <= 2:
        return "it is the Workspace root or one of its top folders"
    if segments and segments[0] == "dbfs" and len(segments) == 1:
        return "it is the DBFS root"
    return None


def _local_reason(write: Place, base: Path | None) -> str | None:
    path = write.path
    if path is None:
        return None
    for what, folder in (
        ("the pipeline's folder", base),
        ("the current directory", Path.cwd().resolve()),
        ("the warehouse", default_warehouse().resolve()),
    ):
        if folder is None:
            continue
        if path == folder:
            return f"it is {what}"
        if path in folder.parents:
            return f"it contains {what} ('{folder}')"
    return None


def _suggestion(write: Place) -> str:
    name = write.step.name if isinstance(write.step.name, str) else "output"
    return f"{str(write.step.value).rstrip('/')}/{name}"


# --------------------------------------------------------------------------- clashes between steps


def _read_and_overwritten(reads: Sequence[Place], writes: Sequence[Place]) -> list[str]:
    problems = []
    for write in writes:
        for read in reads:
            if read.key != write.key or not (read.as_files or write.as_files):
                continue
            problems.append(
                f"{write.ref}: writes '{write.key}', which step '{read.step.name}' "
                f"({read.ref}) reads in the same run; a read of files is lazy on Spark and "
                "would find them replaced or deleted. Write to another path, or keep the data "
                "in Delta (format: delta or table), whose reads are pinned to the version "
                "read at ingest"
            )
    return problems


def _written_twice(writes: Sequence[Place], steps: Sequence[Step]) -> list[str]:
    if len(writes) < 2:
        return []  # the common case: no pair to compare, so no graph closure to build
    upstream = _upstream(steps)
    problems = []
    for index, first in enumerate(writes):
        for second in writes[index + 1 :]:
            problem = _clash(first, second, upstream)
            if problem:
                problems.append(problem)
    return problems


def _clash(first: Place, second: Place, upstream: Mapping[str, set[str]]) -> str | None:
    a, b = first.step.name, second.step.name
    if first.contains(second) or second.contains(first):
        outer, inner = (first, second) if first.contains(second) else (second, first)
        return (
            f"{inner.ref}: writes '{inner.key}', inside '{outer.key}', which step "
            f"'{outer.step.name}' ({outer.ref}) writes in the same run; writing one would "
            "replace or mix with the other. Give each step a target of its own"
        )
    if first.key != second.key:
        return None
    overwriting = [p.step.name for p in (first, second) if p.mode == "overwrite"]
    if overwriting:
        return (
            f"{second.ref}: writes '{second.key}', which step '{a}' ({first.ref}) also writes, "
            f"and step '{overwriting[0]}' overwrites it, so one write would replace the "
            "other. Give each step a target of its own, or let both append or merge with "
            "one step reading the other's output"
        )
    if a not in upstream.get(b, set()) and b not in upstream.get(a, set()):
        return (
            f"{second.ref}: writes '{second.key}', which step '{a}' ({first.ref}) also writes, "
            "and no dependency orders the two, so they may run at the same time and conflict. "
            f"Make step '{b}' depend on step '{a}' (read one of its outputs), or give each "
            "step a target of its own"
        )
    return None


def _upstream(steps: Sequence[Step]) -> dict[str, set[str]]:
    """Step name -> every step it depends on, directly or not."""
    producers: dict[str, str] = {}
    direct: dict[str, set[str]] = {}
    for step in steps:
        if isinstance(step, Step) and isinstance(step.outputs, Mapping):
            for key in step.outputs.values():
                producers.setdefault(str(key), step.name)
    for step in steps:
        if isinstance(step, Step) and isinstance(step.inputs, Mapping):
            direct[step.name] = {
                producers[str(k)] for k in step.inputs.values() if str(k) in producers
            }
    closed: dict[str, set[str]] = {}
    for name in direct:
        seen: set[str] = set()
        stack = list(direct[name])
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(direct.get(current, ()))
        closed[name] = seen
    return closed
