"""An exclusive lock around commits to one local state table.

Delta on a plain file system is only safe within one JVM, so local commits to a state
table are serialised across processes with ``fcntl.flock`` on a lock file beside the table
(``<table path>.lock``). A process-local ``threading.Lock`` per table comes first: it keeps
threads of one process queued cheaply and in order, and makes exclusion between threads
independent of how the operating system treats locks taken twice by one process.

Unity Catalog tables need no lock (their commits are serialised by the catalog), so
``table_lock(None)`` does nothing.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from odibi_core.core.errors import StateError

DEFAULT_LOCK_TIMEOUT = 120.0
LOCK_TIMEOUT_ENV = "ODIBI_STATE_LOCK_TIMEOUT"
LOCK_SUFFIX = ".lock"
# flock has no timeout, so waiting for another process means retrying a non-blocking
# attempt; the interval bounds both the added latency and the wasted wake-ups.
_RETRY_INTERVAL = 0.05

_registry_lock = threading.Lock()
_thread_locks: dict[str, threading.Lock] = {}


def lock_file_for(table_path: str | Path) -> Path:
    """The lock file of a local table: a sibling named ``<table folder>.lock``."""
    path = Path(table_path).resolve()
    return path.with_name(path.name + LOCK_SUFFIX)


def lock_timeout(timeout: float | None = None) -> float:
    """``timeout`` if given, else ``$ODIBI_STATE_LOCK_TIMEOUT``, else 120 seconds."""
    if timeout is not None:
        return timeout
    raw = os.environ.get(LOCK_TIMEOUT_ENV)
    if raw is None:
        return DEFAULT_LOCK_TIMEOUT
    try:
        return float(raw)
    except ValueError:
        raise StateError(
            f"{LOCK_TIMEOUT_ENV}={raw!r} is not a number of seconds; set it to e.g. 120"
        ) from None


@contextmanager
def table_lock(table_path: str | Path | None, *, timeout: float | None = None) -> Iterator[None]:
    """Hold the exclusive commit lock of the local table at ``table_path``.

    Raises ``StateError`` when the lock cannot be taken within ``timeout`` seconds.
    ``None`` (a Unity Catalog table) takes no lock.
    """
    if table_path is None:
        yield
        return
    seconds = lock_timeout(timeout)
    lock_path = lock_file_for(table_path)
    deadline = time.monotonic() + seconds
    thread_lock = _thread_lock_for(lock_path)
    if not thread_lock.acquire(timeout=max(seconds, 0.0)):
        raise _timeout_error(table_path, lock_path, seconds, "another thread of this process")
    try:
        with _file_lock(table_path, lock_path, deadline, seconds):
            yield
    finally:
        thread_lock.release()


def _thread_lock_for(lock_path: Path) -> threading.Lock:
    key = str(lock_path)
    with _registry_lock:
        lock = _thread_locks.get(key)
        if lock is None:
            lock = _thread_locks[key] = threading.Lock()
        return lock


@contextmanager
def _file_lock(
    table_path: str | Path, lock_path: Path, deadline: float, seconds: float
) -> Iterator[None]:
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StateError(
            f"cannot open lock file {lock_path} of state table {table_path}: {exc.strerror}; "
            "check that the warehouse folder is writable"
        ) from exc
    try:
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise _timeout_error(
                        table_path, lock_path, seconds, "another process"
                    ) from None
                time.sleep(min(_RETRY_INTERVAL, max(deadline - time.monotonic(), 0.0)))
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


def _timeout_error(
    table_path: str | Path, lock_path: Path, seconds: float, holder: str
) -> StateError:
    return StateError(
        f"timed out after {seconds:g}s waiting for the lock on state table {table_path}: "
        f"{holder} is committing to it (lock file {lock_path}); wait for that run to finish, "
        f"or allow more time with {LOCK_TIMEOUT_ENV}"
    )
