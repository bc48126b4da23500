"""Files a run leaves behind (lineage, metrics, reports), written so a reader never sees
half of one: the text goes to a temp file beside the target, then replaces it in one step.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from odibi_core.core.errors import PipelineConfigError
from odibi_core.core.location_kind import location_kind
from odibi_core.core.locations import local_path

__all__ = ["write_atomically", "write_json_atomically"]

log = logging.getLogger(__name__)

# mkstemp creates a file private to its owner; what a run writes is shared like any file.
SHARED_FILE_MODE = 0o644
# What file systems without rename or fsync (Databricks workspace files, Volumes through
# FUSE) answer; a full disk or a missing permission is still an error.
_UNSUPPORTED = {
    errno.ENOTSUP,
    errno.EOPNOTSUPP,
    errno.ENOSYS,
    errno.EINVAL,
    errno.EPERM,
    errno.EXDEV,
}


def write_atomically(path: str | os.PathLike[str], text: str) -> Path:
    """Replace ``path`` with ``text`` (UTF-8) at once, creating missing parent folders.

    The temp file sits in the target's folder, so ``os.replace`` is a same-filesystem,
    atomic rename; it is synced first, so a crash never leaves an empty target behind.
    A failure at any point leaves the previous file as it was and no temp file. A file
    that exists keeps its permissions; a new one is readable by all.
    """
    target = _local_target(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temp_name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            _unless_unsupported(os.fsync, handle.fileno())
        _unless_unsupported(os.chmod, temp_name, _mode_for(target))
        if not _unless_unsupported(os.replace, temp_name, target):
            _write_in_place(target, text)
    finally:
        Path(temp_name).unlink(missing_ok=True)
    return target


def _local_target(path: str | os.PathLike[str]) -> Path:
    """``path`` as Python's file functions reach it (``file:`` URIs too); never a mangled URI."""
    text = os.fspath(path)
    target = local_path(text)
    if target is None:
        raise PipelineConfigError(
            f"cannot write '{text}': it is a {location_kind(text).value}, and lineage, "
            "metrics and reports are written by Python, not Spark; give a local path, a "
            "/Volumes/... path or a file: URI"
        )
    return target


def _unless_unsupported(operation: Any, *args: Any) -> bool:
    """Run ``operation``; False when the file system does not support it."""
    try:
        operation(*args)
    except OSError as exc:
        if exc.errno not in _UNSUPPORTED:
            raise
        log.debug("%s is not supported here (%s); going on without it", operation.__name__, exc)
        return False
    return True


def _write_in_place(target: Path, text: str) -> None:
    """The plain write, where the file system cannot rename over a file."""
    log.warning("cannot replace %s atomically on this file system; writing it in place", target)
    target.write_text(text, encoding="utf-8")


def write_json_atomically(path: str | os.PathLike[str], document: Mapping[str, Any]) -> Path:
    """``document`` as indented JSON (values JSON cannot hold as their text), atomically."""
    return write_atomically(path, json.dumps(document, indent=2, default=str) + "\n")


def _mode_for(target: Path) -> int:
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        return SHARED_FILE_MODE
