"""Functions that test pipelines reference as ``tests.funcs:<name>``."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pandas as pd

_calls: Counter[str] = Counter()
_lock = threading.Lock()


def sleep_then_rows(seconds: float = 1.0, rows: int = 3) -> pd.DataFrame:
    time.sleep(seconds)
    return pd.DataFrame({"n": list(range(rows))})


def flaky(key: str, failures: int = 2) -> pd.DataFrame:
    """Fails with a transient error ``failures`` times per key, then succeeds."""
    with _lock:
        _calls[key] += 1
        attempt = _calls[key]
    if attempt <= failures:
        raise ConnectionError(f"transient failure {attempt} of {key}")
    return pd.DataFrame({"attempt": [attempt]})


def explode(data: pd.DataFrame) -> pd.DataFrame:
    raise ValueError("the middle step broke on purpose")


def calls(key: str) -> int:
    with _lock:
        return _calls[key]


def peek_first_row(data):
    """Runs an action of its own that reads only one row, then passes the frame on."""
    data.limit(1).collect()
    return data


def reject_first_email(data):
    """Fails the way engines do: quoting the offending value."""
    raise ValueError(f"cannot use value '{data['email'].iloc[0]}' as an id")


def fail_while_flagged(data: pd.DataFrame, flag: str) -> pd.DataFrame:
    """Fails while the file ``flag`` exists (a fault the user then fixes); else adds a column."""
    import os

    if os.path.exists(flag):
        raise ValueError(f"the upstream system is down ({flag} exists)")
    return data.assign(doubled=data["total"] * 2)
