"""Fingerprints of data on this machine: text that changes whenever the data does.

The cache keys an ingest step on its source's fingerprint, and uses a store only while its
target's fingerprint is the one it left. Files are known by path, size and modification
time (or, asked for, by a hash of their bytes); a local Delta table by its version and the
time its latest commit was written, which a dropped and re-created table does not share.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from odibi_core.core.locations import data_files, latest_delta_version

_CHUNK = 1 << 20


def files_fingerprint(path: Path, *, content: bool = False) -> str | None:
    """The fingerprint of the files a read of ``path`` sees; None when there are none."""
    files = data_files(path)
    if not files:
        return None
    digest = hashlib.sha256()
    try:
        for file in files:
            stat = file.stat()
            digest.update(f"{file}\0{stat.st_size}\0".encode())
            if content:
                digest.update(_content_hash(file).encode())
            else:
                digest.update(str(stat.st_mtime_ns).encode())
    except OSError:  # a file vanished while listed: no fingerprint, so no cache hit
        return None
    return ("content:" if content else "stat:") + digest.hexdigest()[:32]


def delta_fingerprint(path: Path) -> str | None:
    """``delta:<version>:<commit time>`` of a local Delta table; None when it has none."""
    log_dir = path / "_delta_log"
    version = latest_delta_version(log_dir)
    if version is None:
        return None
    try:
        written = (log_dir / f"{version:020d}.json").stat().st_mtime_ns
    except OSError:
        return None
    return f"delta:{version}:{written}"


def _content_hash(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
