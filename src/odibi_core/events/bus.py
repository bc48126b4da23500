"""EventBus: lifecycle events of a pipeline run, delivered to registered hooks.

The orchestrator emits the six lifecycle events with their payloads; user hooks (alerts,
metrics, lineage) subscribe to them. Hooks run in priority order, then in registration
order. A hook that fails never fails the pipeline: its error (an exception, or a call to
``sys.exit``) is logged and recorded in ``hook_errors``, and the next hook runs. Each hook
call is time-bounded, by default to ``DEFAULT_HOOK_TIMEOUT`` seconds.

Pure Python: no pandas or pyspark import.
"""

from __future__ import annotations

import enum
import functools
import inspect
import itertools
import logging
import queue
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from odibi_core.core.config import DEFAULT_HOOK_TIMEOUT
from odibi_core.core.errors import OdibiError, did_you_mean
from odibi_core.core.waiting import event_set
from odibi_core.events.hooks import (
    create_metrics_export_hook,
    create_quality_alert_hook,
    create_summary_hook,
)

logger = logging.getLogger(__name__)

Hook = Callable[[dict[str, Any]], Any]


class EventPriority(enum.IntEnum):
    """Hooks of a higher priority run first; equal priorities run in registration order."""

    CRITICAL = 0
    HIGH = 1
    MEDIUM = 2
    LOW = 3


@dataclass(frozen=True)
class LifecycleEvents:
    """Names of the events the orchestrator emits, as constants (``events.NODE_COMPLETE``)."""

    PIPELINE_START: str = "pipeline_start"
    PIPELINE_COMPLETE: str = "pipeline_complete"
    PIPELINE_ERROR: str = "pipeline_error"
    NODE_START: str = "node_start"
    NODE_COMPLETE: str = "node_complete"
    NODE_ERROR: str = "node_error"

    def __iter__(self) -> Iterator[str]:
        return iter(
            (
                self.PIPELINE_START,
                self.PIPELINE_COMPLETE,
                self.PIPELINE_ERROR,
                self.NODE_START,
                self.NODE_COMPLETE,
                self.NODE_ERROR,
            )
        )


events = LifecycleEvents()
LIFECYCLE_EVENTS: tuple[str, ...] = tuple(events)


class UnknownEventError(OdibiError, ValueError):
    """An event name was neither a lifecycle event nor declared with ``register_event``."""


class InvalidHookError(OdibiError, TypeError):
    """A hook cannot be called with the event payload as its one positional argument."""


class HookTimeoutError(OdibiError):
    """A hook ran longer than the bus's ``hook_timeout`` and was abandoned."""


@dataclass(frozen=True)
class HookFailure:
    """One failed hook call, as kept in ``EventBus.hook_errors``."""

    event_type: str
    hook_name: str
    error_type: str
    error_message: str
    traceback: str
    timed_out: bool = False


@dataclass(frozen=True)
class _Registration:
    hook: Hook
    priority: EventPriority
    sequence: int

    @property
    def order(self) -> tuple[int, int]:
        return (int(self.priority), self.sequence)


def hook_name(hook: Callable[..., Any]) -> str:
    """A readable name for a hook: its qualified name, or its class's for callable objects."""
    if isinstance(hook, functools.partial):
        return f"partial({hook_name(hook.func)})"
    name = getattr(hook, "__qualname__", None) or getattr(hook, "__name__", None)
    return name if isinstance(name, str) else type(hook).__qualname__


class EventBus:
    """Delivers lifecycle events to hooks; safe to use from many threads at once.

    ``strict=True`` re-raises a hook's error instead of recording it (useful in tests).
    ``hook_timeout`` (seconds, default 30) runs each hook call on a daemon thread and
    abandons calls that take longer, recording them as timeouts; ``None`` calls hooks on
    the emitting thread with no bound.
    """

    events = events

    def __init__(self, strict: bool = False, hook_timeout: float | None = DEFAULT_HOOK_TIMEOUT):
        if hook_timeout is not None and not hook_timeout > 0:
            raise ValueError(
                f"EventBus hook_timeout must be a positive number of seconds or None, "
                f"got {hook_timeout!r}"
            )
        self.strict = strict
        self.hook_timeout = hook_timeout
        self.hook_errors: list[HookFailure] = []
        self._lock = threading.Lock()
        self._known_events: set[str] = set(LIFECYCLE_EVENTS)
        # Each event maps to an immutable, already-sorted tuple, replaced on every change,
        # so emit can take a snapshot under the lock and call hooks outside it.
        self._hooks: dict[str, tuple[_Registration, ...]] = {}
        self._sequence = itertools.count()

    @property
    def event_types(self) -> tuple[str, ...]:
        """Every event hooks may subscribe to: the lifecycle events, then custom ones."""
        with self._lock:
            custom = sorted(self._known_events - set(LIFECYCLE_EVENTS))
        return LIFECYCLE_EVENTS + tuple(custom)

    def register_event(self, name: str) -> None:
        """Declare a custom event so hooks can subscribe to it and it can be emitted."""
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"an event name must be a non-empty string, got {name!r}")
        with self._lock:
            self._known_events.add(name)

    def register_hook(
        self,
        event_type: str,
        hook_func: Hook,
        priority: EventPriority = EventPriority.MEDIUM,
    ) -> None:
        """Call ``hook_func(payload)`` each time ``event_type`` is emitted."""
        self._check_event(event_type, action="register a hook for")
        _check_hook(hook_func, event_type)
        if not isinstance(priority, EventPriority):
            raise ValueError(
                f"hook '{hook_name(hook_func)}' for '{event_type}' has priority {priority!r}; "
                f"use one of EventPriority.{', EventPriority.'.join(p.name for p in EventPriority)}"
            )
        with self._lock:
            current = self._hooks.get(event_type, ())
            if any(r.hook == hook_func for r in current):
                raise ValueError(
                    f"hook '{hook_name(hook_func)}' is already registered for '{event_type}'; "
                    f"unregister it first to change its priority"
                )
            added = _Registration(hook_func, priority, next(self._sequence))
            self._hooks[event_type] = tuple(sorted((*current, added), key=lambda r: r.order))

    def unregister_hook(self, event_type: str, hook_func: Hook) -> bool:
        """Stop calling ``hook_func`` for ``event_type``. Returns whether it was registered."""
        self._check_event(event_type, action="unregister a hook from")
        with self._lock:
            current = self._hooks.get(event_type, ())
            remaining = tuple(r for r in current if r.hook != hook_func)
            if len(remaining) == len(current):
                return False
            self._hooks[event_type] = remaining
            return True

    def hooks_for(self, event_type: str) -> list[Hook]:
        """The hooks of ``event_type`` in the order ``emit`` calls them."""
        self._check_event(event_type, action="list the hooks of")
        with self._lock:
            return [r.hook for r in self._hooks.get(event_type, ())]

    def emit(self, event_type: str, data: Mapping[str, Any] | None = None) -> None:
        """Call every hook of ``event_type`` with a shallow copy of ``data``.

        Hooks registered or unregistered while an emit is running take effect from the
        next emit.
        """
        self._check_event(event_type, action="emit")
        with self._lock:
            registrations = self._hooks.get(event_type, ())
        payload = dict(data) if data is not None else {}
        for registration in registrations:
            self._call(event_type, registration.hook, dict(payload))

    def _check_event(self, event_type: str, action: str) -> None:
        with self._lock:
            if event_type in self._known_events:
                return
            known = sorted(self._known_events)
        raise UnknownEventError(
            f"cannot {action} unknown event {event_type!r}{did_you_mean(str(event_type), known)}; "
            f"known events: {', '.join(known)}. Declare a custom event first with "
            f"event_bus.register_event({event_type!r})"
        )

    def _call(self, event_type: str, hook: Hook, payload: dict[str, Any]) -> None:
        try:
            if self.hook_timeout is None:
                hook(payload)
            else:
                self._call_with_timeout(event_type, hook, payload)
        except (Exception, SystemExit) as exc:  # sys.exit in a hook ends the hook, not the run
            if self.strict:
                raise
            self._record_failure(event_type, hook, payload, exc)

    def _call_with_timeout(self, event_type: str, hook: Hook, payload: dict[str, Any]) -> None:
        raised: list[BaseException] = []
        finished = threading.Event()

        def run() -> None:
            try:
                hook(payload)
            except (Exception, SystemExit) as exc:
                raised.append(exc)
            finally:
                finished.set()

        worker = _WORKERS.take()
        worker.submit(run)
        if not event_set(finished, self.hook_timeout):
            worker.abandon()
            name = hook_name(hook)
            if self.strict:
                raise HookTimeoutError(
                    f"hook '{name}' on event '{event_type}'{_step_suffix(payload)} ran longer "
                    f"than hook_timeout={self.hook_timeout}s and was abandoned"
                )
            self._record_timeout(event_type, name, payload, worker.thread)
            return
        _WORKERS.give_back(worker)
        if raised:
            raise raised[0]

    def _record_failure(
        self, event_type: str, hook: Hook, payload: Mapping[str, Any], exc: BaseException
    ) -> None:
        name = hook_name(hook)
        message = (
            f"the hook called sys.exit({exc.code!r})" if isinstance(exc, SystemExit) else str(exc)
        )
        failure = HookFailure(
            event_type=event_type,
            hook_name=name,
            error_type=type(exc).__name__,
            error_message=message,
            traceback="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        )
        with self._lock:
            self.hook_errors.append(failure)
        logger.error(
            "hook '%s' failed on event '%s'%s: %s: %s; the pipeline goes on",
            name,
            event_type,
            _step_suffix(payload),
            failure.error_type,
            failure.error_message,
        )
        logger.debug("hook '%s' failed on event '%s'", name, event_type, exc_info=exc)

    def _record_timeout(
        self, event_type: str, name: str, payload: Mapping[str, Any], thread: threading.Thread
    ) -> None:
        # Where the abandoned hook is stuck is the useful traceback for a timeout.
        frame = sys._current_frames().get(thread.ident) if thread.ident is not None else None
        stuck_at = "".join(traceback.format_stack(frame)) if frame is not None else ""
        failure = HookFailure(
            event_type=event_type,
            hook_name=name,
            error_type=HookTimeoutError.__name__,
            error_message=f"hook ran longer than hook_timeout={self.hook_timeout}s",
            traceback=stuck_at,
            timed_out=True,
        )
        with self._lock:
            self.hook_errors.append(failure)
        logger.error(
            "hook '%s' on event '%s'%s ran longer than hook_timeout=%ss and was abandoned; "
            "it is still running at:\n%s",
            name,
            event_type,
            _step_suffix(payload),
            self.hook_timeout,
            stuck_at,
        )


class _HookWorker:
    """A daemon thread that runs hook calls one at a time.

    Reused while its calls end in time, so a time-bounded hook costs a queue hand-off, not
    a new thread per call; a call that overruns abandons the worker, which ends after it.
    """

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._abandoned = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="odibi-hook", daemon=True)
        self.thread.start()

    def submit(self, call: Callable[[], None]) -> None:
        self._calls.put(call)

    def abandon(self) -> None:
        self._abandoned.set()

    def _loop(self) -> None:
        while not self._abandoned.is_set():
            self._calls.get()()


class _HookWorkers:
    """Idle hook workers, shared by every bus and every thread that emits events."""

    def __init__(self) -> None:
        self._idle: list[_HookWorker] = []
        self._lock = threading.Lock()

    def take(self) -> _HookWorker:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return _HookWorker()

    def give_back(self, worker: _HookWorker) -> None:
        with self._lock:
            self._idle.append(worker)


_WORKERS = _HookWorkers()


def _check_hook(hook_func: Any, event_type: str) -> None:
    if not callable(hook_func):
        raise InvalidHookError(
            f"hook {hook_func!r} for event '{event_type}' is not callable; pass a function "
            f"that takes the event payload dict, e.g. def on_event(event_data): ..."
        )
    try:
        signature = inspect.signature(hook_func)
    except (TypeError, ValueError):
        return  # some builtins have no introspectable signature; trust them
    try:
        signature.bind({})
    except TypeError as exc:
        raise InvalidHookError(
            f"hook '{hook_name(hook_func)}{signature}' for event '{event_type}' cannot be "
            f"called with the event payload as its one positional argument ({exc}); "
            f"define it as def {hook_name(hook_func).rsplit('.', 1)[-1]}(event_data): ..."
        ) from exc


def _step_suffix(payload: Mapping[str, Any]) -> str:
    step = payload.get("step_name")
    return f" (step '{step}')" if step else ""


__all__ = [
    "DEFAULT_HOOK_TIMEOUT",
    "LIFECYCLE_EVENTS",
    "EventBus",
    "EventPriority",
    "Hook",
    "HookFailure",
    "HookTimeoutError",
    "InvalidHookError",
    "LifecycleEvents",
    "UnknownEventError",
    "create_metrics_export_hook",
    "create_quality_alert_hook",
    "create_summary_hook",
    "events",
    "hook_name",
]
