"""Waits on the main thread that Ctrl-C and SIGTERM can end.

CPython runs signal handlers on the main thread only, but the kernel hands a signal sent to
the process to any thread that does not block it: a step's worker thread, a hook worker.
The handler then runs when the main thread next executes Python code. A main thread blocked
in a lock acquire with no timeout (``Event.wait()``, ``concurrent.futures.wait``) is not woken
by a signal another thread received, so it would notice only when a step ended, minutes
later. These waits block in short slices instead, so the handler runs within one slice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection
from concurrent.futures import FIRST_COMPLETED, Future, wait

SLICE_SECONDS = 0.2  # how late a signal may be acted on, at most


def first_completed(futures: Collection[Future]) -> set[Future]:
    """The futures of ``futures`` that are done, once at least one is."""
    while True:
        done, _ = wait(futures, timeout=SLICE_SECONDS, return_when=FIRST_COMPLETED)
        if done:
            return done


def event_set(event: threading.Event, timeout: float | None = None) -> bool:
    """``event.wait(timeout)``, in slices: True once it is set, False if ``timeout`` passed."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = (
            SLICE_SECONDS if deadline is None else min(SLICE_SECONDS, deadline - time.monotonic())
        )
        if left <= 0:
            return event.is_set()
        if event.wait(left):
            return True
