"""Files a run leaves behind (lineage, metrics, reports), written so a reader never sees
half of one: the text goes to a temp file beside the target, then replaces it in one step.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["write_atomically", "write_json_atomically"]

# mkstemp creates a file private to its owner; what a run writes is shared like any file.
SHARED_FILE_MODE = 0o644


def write_atomically(path: str | os.PathLike[str], text: str) -> Path:
    """Replace ``path`` with ``text`` (UTF-8) at once, creating missing parent folders.

    The temp file sits in the target's folder, so ``os.replace`` is a same-filesystem,
    atomic rename; it is synced first, so a crash never leaves an empty target behind.
    A failure at any point leaves the previous file as it was and no temp file. A file
    that exists keeps its permissions; a new one is readable by all.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temp_name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, _mode_for(target))
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return target


def write_json_atomically(path: str | os.PathLike[str], document: Mapping[str, Any]) -> Path:
    """``document`` as indented JSON (values JSON cannot hold as their text), atomically."""
    return write_atomically(path, json.dumps(document, indent=2, default=str) + "\n")


def _mode_for(target: Path) -> int:
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        return SHARED_FILE_MODE
