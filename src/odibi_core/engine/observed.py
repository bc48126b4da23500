"""Row counts from ``Observation``: read only once the action carrying them has returned.

``Observation.get`` is the only way a count is read, on classic and Connect sessions
alike. What differs is how to tell, without waiting, that an action has run:

- Over Spark Connect ``get`` never blocks: it is ``{}`` until an action over the observed
  frame returns (or ``deliver_flows`` passes the metrics on). No JVM exists to ask.
- On a classic session ``get`` blocks forever when no action ran, so the classic path
  asks the Observation's JVM future first (``_jo``, ``_jvm``), with a bounded wait. That
  is private pyspark API, used only when the Observation is a classic one.

Which observations sit below a limit or sample (an action may then stop early and leave a
partial count) is read from the analysed plan's text: the JVM's on classic, that of
``explain`` over Connect. Neither runs a job.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

from odibi_core.engine.connect import is_connect, wait_for_flow

log = logging.getLogger(__name__)

PARTIAL_READ_NODES = frozenset(
    {"GlobalLimit", "LocalLimit", "Tail", "Sample", "Offset", "GlobalLimitAndOffset"}
)
_CONNECT_PENDING = (
    "no action over this output returned its metrics to odibi_core (over Spark Connect an "
    "observation is only filled by an action the framework runs or one over this very "
    "DataFrame), so it was not counted"
)


class ObservedCount:
    """A ``DeferredCount`` backed by a ``pyspark.sql.Observation``."""

    def __init__(self, observation: Any, name: str, *, connect: bool = False):
        self._observation = observation
        self.name = name
        self._connect = connect
        self._lock = threading.Lock()
        self._rows: int | None = None
        self._reason: str | None = None
        self._delivered: int | None = None
        if connect:
            wait_for_flow(name, self)

    def deliver(self, metrics: dict[str, Any]) -> None:
        """Metrics passed on from another DataFrame's action (Spark Connect only)."""
        if "rows" in metrics and metrics["rows"] is not None:
            self._delivered = int(metrics["rows"])

    def fired(self) -> bool:
        """True once an action over the observed frame has finished (no waiting)."""
        if self._connect:
            return self._connect_rows() is not None
        return _classic_fired(self._observation)

    @property
    def reason(self) -> str | None:
        return self._reason

    def get(self, timeout: float) -> int | None:
        """The count, waiting up to ``timeout`` seconds for the action to finish."""
        with self._lock:
            if self._rows is None:
                self._rows, self._reason = self._wait(timeout)
            return self._rows

    def _wait(self, timeout: float) -> tuple[int | None, str | None]:
        if self._connect:
            rows = self._connect_rows()
            return (rows, None) if rows is not None else (None, _CONNECT_PENDING)
        if not _classic_completed(self._observation, timeout):
            return None, f"no action ran over the observed frame within {timeout:g}s"
        try:
            metrics = self._observation.get
        except Exception as exc:
            return None, f"the action over the observed frame failed: {exc}"
        if "rows" not in metrics:
            return None, "no action has run over the observed frame"
        return int(metrics["rows"]), None

    def _connect_rows(self) -> int | None:
        """Over Connect ``get`` returns at once: ``{}`` until an action has returned."""
        try:
            metrics = self._observation.get
        except Exception:  # never attached: nothing can have filled it
            metrics = {}
        if metrics.get("rows") is not None:
            return int(metrics["rows"])
        return self._delivered


def observations_under_limits(frame: Any) -> set[str]:
    """Names of observations in ``frame``'s plan that sit below a limit or a sample."""
    if is_connect(frame):
        return _connect_under_limits(frame)
    return _classic_under_limits(frame)


def _connect_under_limits(frame: Any) -> set[str]:
    """From the analysed plan's text: one analyse call to the server, no job."""
    try:
        # The text ``explain(extended=True)`` prints; pyspark keeps no public way to
        # receive it as a string instead of on stdout, which parallel steps share.
        text = frame._explain_string(extended=True)  # noqa: SLF001
    except Exception as exc:
        log.debug("could not read the plan to check for limits: %s", exc)
        return set()
    return under_limits_in_plan_text(text)


_ANALYZED = "== Analyzed Logical Plan =="
_NODE = re.compile(r"^(?P<indent>[\s:+\-|]*)(?P<name>[A-Za-z]\w*)(?P<rest>.*)$")


def under_limits_in_plan_text(text: str) -> set[str]:
    """The ``CollectMetrics`` names below a limit or sample in an analysed plan's text."""
    lines = text.split(_ANALYZED, 1)[-1].split("\n== ", 1)[0].splitlines()
    found: set[str] = set()
    stack: list[tuple[int, bool]] = []  # (indent, limited) of the open ancestors
    for line in lines:
        match = _NODE.match(line)
        if match is None:
            continue
        indent, name = len(match["indent"]), match["name"]
        while stack and stack[-1][0] >= indent:
            stack.pop()
        limited = (stack[-1][1] if stack else False) or name in PARTIAL_READ_NODES
        if name == "CollectMetrics" and limited:
            found.add(match["rest"].strip().split(",", 1)[0])
        stack.append((indent, limited))
    return found


# --------------------------------------------------------------------------- classic only


def _classic_under_limits(frame: Any) -> set[str]:
    """From the JVM's analysed plan (classic sessions only: a Connect frame has no _jdf).

    The plan's text comes back in one call to the JVM; walking its nodes one by one from
    Python costs several calls per node.
    """
    try:
        text = frame._jdf.queryExecution().analyzed().treeString()  # noqa: SLF001 - no public plan API
    except Exception as exc:
        log.debug("could not read the plan to check for limits: %s", exc)
        return set()
    return under_limits_in_plan_text(text)


def _classic_fired(observation: Any) -> bool:
    """Whether the classic Observation's JVM future completed, without blocking.

    ``Observation.get`` would block forever when no action ran, hence the private JVM
    handle (set once the Observation is attached to a frame).
    """
    java_observation = getattr(observation, "_jo", None)
    if java_observation is None:
        return False
    _drain_listener_bus(observation)
    return bool(java_observation.future().isCompleted())


def _classic_completed(observation: Any, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for the classic Observation's action to finish."""
    java_observation = getattr(observation, "_jo", None)
    if java_observation is None:
        return True  # ``get`` reports what is known
    future = java_observation.future()
    if future.isCompleted():
        return True
    jvm = observation._jvm  # noqa: SLF001 - set by Observation when it is attached
    duration = jvm.scala.concurrent.duration.Duration.create(max(int(timeout * 1000), 1), "ms")
    try:
        jvm.scala.concurrent.Await.ready(future, duration)
    except Exception as exc:
        if "TimeoutException" in str(exc):
            return False
        raise
    return True


def _drain_listener_bus(observation: Any) -> None:
    """Let Spark deliver finished queries' metrics, which arrive on its listener bus."""
    try:
        jvm_spark = observation._jvm.org.apache.spark.SparkContext.getOrCreate()  # noqa: SLF001
        jvm_spark.listenerBus().waitUntilEmpty()
    except Exception as exc:  # best effort: without it a just-finished action may look pending
        log.debug("could not drain the Spark listener bus: %s", exc)
