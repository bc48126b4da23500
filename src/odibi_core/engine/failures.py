"""What a Spark or Delta failure means: its root cause, where it happened, whether to retry.

Failures are classified by SQLSTATE, not by Python class: the classic (py4j) client and
Spark Connect raise different classes for the same error, and Delta's commit conflicts
arrive as classes of their own on each. The SQLSTATE comes from ``getSqlState()`` where
the client keeps it, and otherwise from the message and the JVM's ``Caused by`` chain,
where Spark 4 writes ``SQLSTATE: 22018`` after every error of its own.

Nothing here imports pyspark at import time.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from odibi_core.core.errors import EngineError

log = logging.getLogger(__name__)

T = TypeVar("T")

# Delta's commit conflicts (DELTA_CONCURRENT_APPEND, DELTA_CONCURRENT_WRITE,
# DELTA_METADATA_CHANGED, DELTA_PROTOCOL_CHANGED, ... in delta-spark's
# error/delta-error-classes.json) all carry SQLSTATE 2D521; 40001 is a serialization failure.
COMMIT_CONFLICT_SQLSTATES = ("2D521", "40001")
# The classic client rebuilds Delta's conflicts without the JVM error, so getSqlState()
# says nothing there; their conditions still lead their messages.
_DELTA_CONFLICT_CONDITIONS = (
    "DELTA_CONCURRENT_APPEND",
    "DELTA_CONCURRENT_DELETE_DELETE",
    "DELTA_CONCURRENT_DELETE_READ",
    "DELTA_CONCURRENT_TRANSACTION",
    "DELTA_CONCURRENT_WRITE",
    "DELTA_METADATA_CHANGED",
    "DELTA_PROTOCOL_CHANGED",
)
# Connection exceptions: the cluster, the metastore or the storage could not be reached.
TRANSIENT_SQLSTATE_CLASSES = ("08",)
# Errors that recur on retry: cardinality (a MERGE source row matching twice), data
# (division by zero, bad casts), integrity constraints, syntax and analysis.
DETERMINISTIC_SQLSTATE_CLASSES = ("21", "22", "23", "42")

# "org.apache.spark.SparkException: message", as a JVM stack trace names each link.
_JAVA_LINK = re.compile(r"^([A-Za-z_$][\w$]*(?:\.[\w$]+)+): ?(.*)$", re.MULTILINE)
_CONDITION = re.compile(r"^\[([A-Z][A-Z0-9_]*(?:\.[A-Z0-9_]+)*)\]")
_SQLSTATE = re.compile(r"SQLSTATE: ([0-9A-Z]{5})")
# Links of a chain that only say that something below them failed.
_WRAPPER_CONDITIONS = frozenset({"TASK_WRITE_FAILED"})
_WRAPPER_TEXT = (
    "Job aborted due to stage failure",
    "Exception thrown in awaitResult",
    "An error occurred while calling",
)


class SparkError(EngineError):
    """An ``EngineError`` raised by Spark, with what its cause chain says."""

    def __init__(self, message: str, failure: SparkFailure, *, retryable: bool):
        super().__init__(message, retryable=retryable)
        self.failure = failure


@dataclass(frozen=True)
class Cause:
    """One link of an error's cause chain."""

    message: str  # its first line
    condition: str | None = None
    sqlstate: str | None = None

    @property
    def is_wrapper(self) -> bool:
        if self.condition in _WRAPPER_CONDITIONS:
            return True
        return not self.message or any(text in self.message for text in _WRAPPER_TEXT)


@dataclass(frozen=True)
class SparkFailure:
    """A failure raised by Spark or Delta, read once: causes outermost first."""

    causes: tuple[Cause, ...]
    fragments: tuple[str, ...] = ()  # the failing SQL text, from the query context

    @property
    def sqlstates(self) -> tuple[str, ...]:
        return tuple(c.sqlstate for c in self.causes if c.sqlstate)

    @property
    def root(self) -> Cause | None:
        """The innermost link that says more than "something below failed"."""
        meaningful = [c for c in self.causes if not c.is_wrapper]
        return meaningful[-1] if meaningful else None

    @property
    def commit_conflict(self) -> bool:
        return any(state in COMMIT_CONFLICT_SQLSTATES for state in self.sqlstates)

    @property
    def transient(self) -> bool:
        return self.commit_conflict or any(
            state[:2] in TRANSIENT_SQLSTATE_CLASSES for state in self.sqlstates
        )

    @property
    def deterministic(self) -> bool:
        return not self.transient and any(
            state[:2] in DETERMINISTIC_SQLSTATE_CLASSES for state in self.sqlstates
        )

    def root_cause_text(self) -> str | None:
        """``[CONDITION] message`` of the root cause, and of the first named cause above it.

        ``None`` when the error's own first line already is the root cause.
        """
        root = self.root
        if root is None or not self.causes or root == self.causes[0]:
            return None
        named = next(
            (c for c in self.causes[1:] if c.condition and not c.is_wrapper and c != root), None
        )
        parts = [_cause_text(c) for c in (named, root) if c is not None]
        return "; ".join(parts)


def describe_failure(exc: BaseException) -> SparkFailure:
    """Read ``exc`` and everything it wraps: the Python chain, the client's, the JVM's."""
    causes: list[Cause] = []
    fragments: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        causes.extend(_causes_of(current))
        fragments.extend(_fragments_of(current))
        current = getattr(current, "_cause", None) or current.__cause__
    return SparkFailure(causes=_unique(causes), fragments=tuple(dict.fromkeys(fragments)))


def is_commit_conflict(exc: BaseException) -> bool:
    """True for Delta's concurrent-commit conflicts (SQLSTATE 2D521), which a retry resolves."""
    return describe_failure(exc).commit_conflict


def retry_commit_conflicts(
    action: Callable[[], T],
    *,
    what: str,
    attempts: int = 4,
    delay: float = 0.2,
    backoff: float = 2.0,
    jitter: float = 0.5,
    sleep: Callable[[float], Any] = time.sleep,
) -> T:
    """Run ``action``, again after a Delta commit conflict, up to ``attempts`` times in all.

    Only commit conflicts are retried: whatever else goes wrong is raised at once.
    """
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except Exception as exc:
            if attempt == attempts or not is_commit_conflict(exc):
                raise
            # Jitter, so writers that conflicted with each other do not retry in step.
            wait = delay * backoff ** (attempt - 1) * random.uniform(1 - jitter, 1 + jitter)
            log.info(
                "%s hit a concurrent Delta commit (attempt %d of %d), retrying in %.2fs: %s",
                what,
                attempt,
                attempts,
                wait,
                _first_line(str(exc)),
            )
            sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


# ---------------------------------------------------------------------- reading one error


def _causes_of(exc: BaseException) -> list[Cause]:
    """The links ``exc`` describes: itself, then the JVM ``Caused by`` lines of its text."""
    message = _head(_message_of(exc))
    first = Cause(
        message=_first_line(_strip_condition(message)) or type(exc).__name__,
        condition=_call(exc, "getCondition") or _condition_in(message),
        sqlstate=_call(exc, "getSqlState") or _sqlstate_in(message),
    )
    return [first, *_chain_in(_jvm_text(exc))]


def _message_of(exc: BaseException) -> str:
    desc = getattr(exc, "_desc", None)  # classic: the message without the JVM stack trace
    if isinstance(desc, str) and desc:
        return desc
    text = str(exc)
    if text.startswith("An error occurred while calling"):  # a raw Py4JJavaError
        lines = text.splitlines()
        text = "\n".join(lines[1:]).lstrip(": ") if len(lines) > 1 else text
        match = _JAVA_LINK.match(text)
        if match:
            text = match.group(2) + text[match.end(2) :]
    return text


def _head(message: str) -> str:
    """A message without the stack trace and causes that may follow it."""
    kept = []
    for line in message.splitlines():
        if line.lstrip().startswith(("at ", "Caused by:", "JVM stacktrace")):
            break
        kept.append(line)
    return "\n".join(kept)


def _jvm_text(exc: BaseException) -> str:
    """The JVM stack trace with its ``Caused by`` chain, wherever the client keeps it."""
    for attribute in ("_stackTrace", "_stacktrace"):
        value = getattr(exc, attribute, None)
        if isinstance(value, str) and value:
            return value
    text = str(exc)
    return text if "Caused by:" in text else ""


def _chain_in(text: str) -> list[Cause]:
    """Each ``Caused by: class: message`` block of a JVM stack trace, as a link."""
    causes = []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if not line.startswith("Caused by: "):
            continue
        match = _JAVA_LINK.match(line.removeprefix("Caused by: "))
        if not match:
            continue
        block = [match.group(2)]
        for following in lines[index + 1 : index + 8]:
            if following.lstrip().startswith(("at ", "Caused by", "...")):
                break
            block.append(following)
        message = "\n".join(block)
        java_class = match.group(1).rsplit(".", 1)[-1]
        first = _first_line(_strip_condition(message))
        causes.append(
            Cause(
                message=first if _condition_in(message) else f"{java_class}: {first}",
                condition=_condition_in(message),
                sqlstate=_sqlstate_in(message),
            )
        )
    return causes


def _fragments_of(exc: BaseException) -> list[str]:
    """The SQL text each of the error's query contexts points at."""
    fragments = []
    for context in _call(exc, "getQueryContext") or []:
        fragment = _call(context, "fragment")
        if isinstance(fragment, str) and fragment.strip():
            fragments.append(fragment.strip())
    return fragments or _caret_fragments(_message_of(exc) + "\n" + _jvm_text(exc))


def _caret_fragments(text: str) -> list[str]:
    """Fragments underlined with ``^^^`` under an ``== SQL ... ==`` header."""
    fragments = []
    lines = text.splitlines()
    for index, line in enumerate(lines[:-2]):
        if not line.startswith("== SQL"):
            continue
        sql, carets = lines[index + 1], lines[index + 2]
        start = carets.find("^")
        if start >= 0:
            end = len(carets.rstrip())
            fragments.append(sql[start:end].strip())
    return [f for f in fragments if f]


def _condition_in(message: str) -> str | None:
    match = _CONDITION.match(message.lstrip())
    return match.group(1) if match else None


def _sqlstate_in(message: str) -> str | None:
    match = _SQLSTATE.search(message)
    if match:
        return match.group(1)
    condition = _condition_in(message) or ""
    if condition.split(".")[0] in _DELTA_CONFLICT_CONDITIONS:
        return COMMIT_CONFLICT_SQLSTATES[0]
    return None


def _strip_condition(message: str) -> str:
    return _CONDITION.sub("", message.lstrip(), count=1).lstrip()


def _cause_text(cause: Cause) -> str:
    text = _SQLSTATE.sub("", cause.message).rstrip(" .")
    text = text if len(text) <= 300 else text[:300] + " ..."
    return f"[{cause.condition}] {text}" if cause.condition else text


def _unique(causes: list[Cause]) -> tuple[Cause, ...]:
    return tuple(dict.fromkeys(causes))


def _first_line(text: str) -> str:
    stripped = text.strip()
    return stripped.splitlines()[0].strip() if stripped else ""


def _call(obj: Any, method: str) -> Any:
    getter = getattr(obj, method, None)
    if not callable(getter):
        return None
    try:
        return getter()
    except Exception:  # noqa: BLE001 - a client without a JVM or a server cannot say
        return None
