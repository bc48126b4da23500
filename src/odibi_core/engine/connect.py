"""Spark Connect (what Databricks serverless runs): telling it apart, and what differs there.

A Connect session or DataFrame lives in the client process and talks to a server over
gRPC: it has no JVM, so ``sparkContext``, ``_jvm``, ``_jsc``, ``_jdf``, RDDs and
``persist`` are not available. Every code path that differs asks ``is_connect`` first.

Observed metrics also arrive differently. On a classic session a finished action fills
every ``Observation`` in its plan, through the JVM. Over Connect the client fills only the
observations of the DataFrame whose action ran, and lists the others (those reached
through ``spark.sql`` arguments) in the action's ``executionInfo.flows``; ``deliver_flows``
hands those to the counts waiting for them.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Protocol

_CONNECT_MODULE = "pyspark.sql.connect."


def is_connect(session_or_frame: Any) -> bool:
    """True for a Spark Connect session or DataFrame (databricks-connect's too).

    Looks at the object's class only: imports nothing and touches no JVM.
    """
    if session_or_frame is None:
        return False
    module = type(session_or_frame).__module__ or ""
    return module.startswith(_CONNECT_MODULE)


class _Waiting(Protocol):
    def deliver(self, metrics: dict[str, Any]) -> None: ...


_lock = threading.Lock()
# Observation name -> the count waiting for it. Names are unique per observation (they
# carry a random suffix), and a count no one holds any more is dropped with it.
_waiting: weakref.WeakValueDictionary[str, _Waiting] = weakref.WeakValueDictionary()


def wait_for_flow(name: str, count: _Waiting) -> None:
    """Let ``count`` receive the observed metrics named ``name`` from a later action."""
    with _lock:
        _waiting[name] = count


def deliver_flows(frame: Any) -> None:
    """Hand the observed metrics of the action that just ran on ``frame`` to their counts.

    Call it only after an action that reads all of ``frame`` (a write, a full collect, a
    count): metrics of an action that stopped early (``limit``) would be partial.
    """
    info = getattr(frame, "executionInfo", None) if is_connect(frame) else None
    if info is None:
        return
    for name, metrics in info.flows:
        with _lock:
            count = _waiting.get(name)
        if count is not None:
            count.deliver(dict(metrics))
