"""Functions and hooks that fail the ways user code does (``tests.reliability.error_funcs:<name>``)."""

from __future__ import annotations

import sys
import threading
import time

import pandas as pd

_calls: dict[str, int] = {}
_lock = threading.Lock()


def rows(n: int = 3) -> pd.DataFrame:
    return pd.DataFrame({"n": list(range(n))})


def divide(data: pd.DataFrame) -> pd.DataFrame:
    share = 1 / (len(data) - len(data))  # ZeroDivisionError, on this line
    return data.assign(share=share)


def exit_three(data: pd.DataFrame) -> pd.DataFrame:
    _count("exit_three")
    sys.exit(3)


def sleep_long(seconds: float = 30.0) -> pd.DataFrame:
    time.sleep(seconds)
    return rows()


def count(key: str) -> int:
    with _lock:
        return _calls.get(key, 0)


def _count(key: str) -> None:
    with _lock:
        _calls[key] = _calls.get(key, 0) + 1


def sigterm_own_thread_then_sleep(seconds: float = 60.0) -> pd.DataFrame:
    """SIGTERM delivered to this step's thread, not the main one (as the kernel may choose
    for a signal sent to the process), then a long sleep."""
    import signal

    signal.pthread_kill(threading.get_ident(), signal.SIGTERM)
    time.sleep(seconds)
    return rows()
