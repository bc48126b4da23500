"""Fault injection for reliability tests: ``ODIBI_FAULT=<action>:<point>[:<n>]``.

The variable is read once per process, on the first point reached; when it is unset every
call here is one dictionary-free check of a module global. It exists so that tests (and
anyone reproducing a crash) can make a real ``odibi run`` die at a chosen moment:

- ``kill_after:<point>:<n>`` SIGKILLs the process right after the n-th time ``point`` is
  reached; ``term_after:<point>:<n>`` sends it SIGTERM instead (a graceful stop).
  Points: ``node_start`` (a step's attempt has started and its event was emitted) and
  ``node_complete`` (a step succeeded and its event was emitted).
- ``kill_during:<point>:<n>`` SIGKILLs the process in the middle of the n-th operation:
  ``delta_write``: a Delta write (overwrite, append or merge) of a step whose target is a
  local path: the kill comes as soon as the first new data file of the write appears in
  the table's folder, while Spark's write job is running, and before Delta's commit
  (the ``_delta_log`` entry) is written. A watcher thread polls the folder every
  millisecond; if the write commits before a data file was seen (which would make the kill
  come after the commit), a line on stderr says so, so a test can tell. A target with no
  local path (a Unity Catalog table) is killed just before the write starts.
  ``audit_write``: between the commit of a run's ``odibi_audit`` rows and the commit of
  its ``odibi_runs`` row.

``n`` defaults to 1. A kill also kills the process's children (the local Spark JVM), as
when a container or machine dies, so that no commit can land after the driver is gone.
Every fault prints one ``odibi fault:`` line on stderr before it fires.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ENV_VAR = "ODIBI_FAULT"
Action = Literal["kill_after", "term_after", "kill_during"]
AFTER_POINTS = ("node_start", "node_complete")
DURING_POINTS = ("delta_write", "audit_write")
_POINTS = {"kill_after": AFTER_POINTS, "term_after": AFTER_POINTS, "kill_during": DURING_POINTS}
_POLL_SECONDS = 0.001


class FaultSpecError(ValueError):
    """``ODIBI_FAULT`` does not say ``<action>:<point>[:<n>]`` with a known action and point."""


@dataclass(frozen=True)
class Fault:
    action: Action
    point: str
    n: int = 1

    def __str__(self) -> str:
        return f"{self.action}:{self.point}:{self.n}"


def parse(text: str) -> Fault:
    """``"kill_after:node_complete:3"`` -> ``Fault("kill_after", "node_complete", 3)``."""
    parts = text.strip().split(":")
    usage = (
        f"{ENV_VAR}={text!r} must be <action>:<point>[:<n>], e.g. kill_after:node_complete:3; "
        f"actions: {', '.join(_POINTS)}"
    )
    if len(parts) not in (2, 3):
        raise FaultSpecError(usage)
    action, point = parts[0], parts[1]
    if action not in _POINTS:
        raise FaultSpecError(usage)
    if point not in _POINTS[action]:
        raise FaultSpecError(
            f"{ENV_VAR}={text!r}: {action} works at {', '.join(_POINTS[action])}, not {point!r}"
        )
    n = 1
    if len(parts) == 3:
        if not parts[2].isdigit() or int(parts[2]) < 1:
            raise FaultSpecError(f"{ENV_VAR}={text!r}: n must be a whole number >= 1")
        n = int(parts[2])
    return Fault(action, point, n)  # type: ignore[arg-type]


_UNREAD = object()
_fault: Fault | None | object = _UNREAD
_hits: dict[str, int] = {}
_lock = threading.Lock()


def _configured() -> Fault | None:
    global _fault
    if _fault is _UNREAD:
        text = os.environ.get(ENV_VAR)
        _fault = parse(text) if text else None
    return _fault  # type: ignore[return-value]


def _is_nth(point: str, action_kinds: tuple[str, ...]) -> Fault | None:
    """The fault, when it targets ``point`` and this is the n-th time ``point`` is reached."""
    fault = _configured()
    if fault is None or fault.point != point or fault.action not in action_kinds:
        return None
    with _lock:
        _hits[point] = _hits.get(point, 0) + 1
        return fault if _hits[point] == fault.n else None


def reached(point: str) -> None:
    """Mark that ``point`` was reached; fires a configured ``*_after`` fault or an
    ``audit_write`` ``kill_during`` fault (that call sits between the two commits)."""
    if _fault is None:
        return
    kinds = ("kill_during",) if point in DURING_POINTS else ("kill_after", "term_after")
    fault = _is_nth(point, kinds)
    if fault is not None:
        _fire(fault, "term" if fault.action == "term_after" else "kill")


@contextmanager
def during(point: str, watch: str | Path | None = None) -> Iterator[None]:
    """Wrap an operation that writes data files under ``watch`` and then commits.

    With ``kill_during:<point>`` configured for this occurrence, a watcher thread kills the
    process as soon as a new data file appears under ``watch`` (see the module docstring).
    """
    fault = None if _fault is None else _is_nth(point, ("kill_during",))
    if fault is None:
        yield
        return
    folder = Path(watch) if watch is not None else None
    if folder is None or "://" in str(watch):
        _fire(fault, "kill", "before the write started (the target has no local folder)")
    before = _data_files(folder)
    stop = threading.Event()
    watcher = threading.Thread(
        target=_watch, args=(fault, folder, before, stop), name="odibi-fault", daemon=True
    )
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join()
    _fire(fault, "kill", "after the write returned: no new data file was seen before the commit")


def _watch(fault: Fault, folder: Path, before: set[str], stop: threading.Event) -> None:
    while not stop.is_set():
        new = _data_files(folder) - before
        if new:
            _fire(fault, "kill", f"data file {sorted(new)[0]} written, commit pending")
        stop.wait(_POLL_SECONDS)


def _data_files(folder: Path) -> set[str]:
    """Parquet data files under ``folder`` (partition folders included, the log excluded)."""
    if not folder.is_dir():
        return set()
    found = set()
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(("_", "."))]
        found.update(
            os.path.join(root, f)
            for f in files
            if f.endswith(".parquet") and not f.startswith((".", "_"))
        )
    return found


def _fire(fault: Fault, how: Literal["kill", "term"], detail: str = "") -> None:
    suffix = f": {detail}" if detail else ""
    print(f"odibi fault: {ENV_VAR}={fault} fired in process {os.getpid()}{suffix}", file=sys.stderr)
    sys.stderr.flush()
    sys.stdout.flush()
    if how == "term":
        os.kill(os.getpid(), signal.SIGTERM)
        return
    for child in _children(os.getpid()):
        with suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def _children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (Linux /proc; elsewhere none are found)."""
    children = []
    proc = Path("/proc")
    if not proc.is_dir():
        return children
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Field 4 (ppid) follows the command name, which is in parentheses and may hold spaces.
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1 and fields[1] == str(pid):
            children.append(int(entry.name))
    return children
