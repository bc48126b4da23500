"""DAGExecutor: runs steps as soon as their inputs exist, with retries and failure isolation.

The scheduler keeps a ready set and waits on running steps with ``FIRST_COMPLETED``; there
is no level barrier. What a step *does* is the runner's business (engines, tracker, cache);
the executor owns only order, states, retries and skipping.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from odibi_core.core.dag import DAG
from odibi_core.core.step import NodeState, Step
from odibi_core.core.waiting import first_completed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepOutcome:
    """What one successful run of a step reports back to the executor."""

    status: NodeState = NodeState.SUCCESS  # SUCCESS, or CACHED when restored
    row_count: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


class StepRunner(Protocol):
    def __call__(self, step: Step, attempt: int, mark_executing: Callable[[], None]) -> StepOutcome:
        """Run one attempt of ``step``; raise on failure. Call ``mark_executing`` on a cache miss."""


class ExecutionObserver(Protocol):
    """Told about every state change; the orchestrator turns these into events."""

    def state_changed(self, step: Step, state: NodeState) -> None: ...

    def step_started(self, step: Step, attempt: int) -> None: ...

    def step_succeeded(
        self, step: Step, outcome: StepOutcome, attempts: int, duration_ms: int
    ) -> None: ...

    def step_failed(
        self, step: Step, error: BaseException, attempt: int, will_retry: bool, duration_ms: int
    ) -> None: ...

    def step_skipped(self, step: Step, reason: str) -> None: ...


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 0
    retry_delay: float = 1.0
    retry_backoff: float = 2.0
    jitter: float = 0.1  # +/- 10% spreads retries of parallel steps apart
    # A job task leaves errors of unknown kind (user code) to the task's own retries, so
    # a step is not retried in process and again by the job.
    transient_only: bool = False

    def delay(self, failed_attempts: int) -> float:
        base = self.retry_delay * self.retry_backoff ** (failed_attempts - 1)
        return max(0.0, base * random.uniform(1 - self.jitter, 1 + self.jitter))

    def retries_for(self, step: Step) -> int:
        return self.max_retries if step.retries is None else step.retries


def is_retryable(error: BaseException, *, unknown: bool = True) -> bool:
    """Errors say whether retrying can help; an error that does not say (user code) may be
    transient, and is retried when ``unknown``. Connection and timeout errors always are.

    ``sys.exit`` in a step is deliberate: running the step again would only exit again.
    """
    if isinstance(error, SystemExit):
        return False
    if isinstance(error, (ConnectionError, TimeoutError)):
        return True
    return bool(getattr(error, "retryable", unknown))


@dataclass
class ExecutionReport:
    states: dict[str, NodeState]
    attempts: dict[str, int]
    errors: dict[str, BaseException]
    completion_order: list[str]
    skipped_because: dict[str, str]

    @property
    def failed(self) -> list[str]:
        return [n for n in self.completion_order if self.states[n] is NodeState.FAILED]


class DAGExecutor:
    """Executes a DAG with a runner. ``parallel=False`` runs in topological order on one thread."""

    def __init__(
        self,
        dag: DAG,
        runner: StepRunner,
        observer: ExecutionObserver,
        *,
        max_workers: int = 4,
        parallel: bool = True,
        retry: RetryPolicy | None = None,
        fail_fast: bool = False,
    ):
        self.dag = dag
        self.runner = runner
        self.observer = observer
        self.max_workers = max(1, int(max_workers))
        self.parallel = parallel
        self.retry = retry or RetryPolicy()
        self.fail_fast = fail_fast
        self._positions = {n: i for i, n in enumerate(dag.topological_order())}
        self._lock = threading.Lock()
        self._cancelled = threading.Event()
        self._states: dict[str, NodeState] = {}
        self._attempts: dict[str, int] = {}
        self._errors: dict[str, BaseException] = {}
        self._order: list[str] = []
        self._skipped_because: dict[str, str] = {}

    # ----------------------------------------------------------------- public

    def execute(self) -> ExecutionReport:
        for name in self.dag.topological_order():
            self._set_state(name, NodeState.PENDING)
        if self.parallel and self.max_workers > 1:
            self._execute_parallel()
        else:
            self._execute_sequential()
        return ExecutionReport(
            states=dict(self._states),
            attempts=dict(self._attempts),
            errors=dict(self._errors),
            completion_order=list(self._order),
            skipped_because=dict(self._skipped_because),
        )

    def cancel(self) -> None:
        """Start nothing new; steps already running finish."""
        self._cancelled.set()

    # ----------------------------------------------------------------- scheduling

    def _execute_sequential(self) -> None:
        for name in self.dag.topological_order():
            if self._states[name] is not NodeState.PENDING:
                continue
            if self._cancelled.is_set():
                self._skip(name, "the run was cancelled after a failure (fail_fast)")
                continue
            self._set_state(name, NodeState.READY)
            self._finish(name, self._run_with_retries(name))

    def _execute_parallel(self) -> None:
        remaining = {n: len(self.dag.dependencies(n)) for n in self.dag.topological_order()}
        ready = deque(n for n, count in remaining.items() if count == 0)
        for name in ready:
            self._set_state(name, NodeState.READY)
        running: dict[Future, str] = {}
        pool = ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="odibi-step")
        try:
            while ready or running:
                while ready and len(running) < self.max_workers and not self._cancelled.is_set():
                    name = ready.popleft()
                    running[pool.submit(self._run_with_retries, name)] = name
                if self._cancelled.is_set():
                    for name in ready:
                        self._skip(name, "the run was cancelled after a failure (fail_fast)")
                    ready.clear()
                if not running:
                    break
                for future in first_completed(running):
                    name = running.pop(future)
                    if self._finish(name, future.result()):
                        ready.extend(self._released_by(name, remaining))
        except BaseException:
            # Ctrl-C (or a bug): start nothing new, stop retry waits, do not wait for the pool.
            self.cancel()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        for name, state in list(self._states.items()):
            if state is NodeState.PENDING:
                self._skip(name, "the run was cancelled after a failure (fail_fast)")

    def _released_by(self, name: str, remaining: dict[str, int]) -> list[str]:
        """Dependents of the succeeded step ``name`` that have no unfinished dependency left."""
        released = []
        for dependent in sorted(self.dag.dependents(name), key=self._position):
            remaining[dependent] -= 1
            if remaining[dependent] == 0 and self._states[dependent] is NodeState.PENDING:
                self._set_state(dependent, NodeState.READY)
                released.append(dependent)
        return released

    def _position(self, name: str) -> int:
        return self._positions[name]

    def _finish(self, name: str, error: BaseException | None) -> bool:
        """Record the end of a step; on failure skip everything downstream of it."""
        with self._lock:
            self._order.append(name)
        if error is None:
            return True
        for downstream in sorted(self.dag.downstream_of(name), key=self._position):
            if self._states[downstream] in (NodeState.PENDING, NodeState.READY):
                self._skip(downstream, f"upstream step '{name}' failed")
        if self.fail_fast:
            self.cancel()
        return False

    def _skip(self, name: str, reason: str) -> None:
        with self._lock:
            if self._states.get(name) not in (NodeState.PENDING, NodeState.READY):
                return
            self._skipped_because[name] = reason
            self._order.append(name)
        self._set_state(name, NodeState.SKIPPED)
        self.observer.step_skipped(self.dag.step(name), reason)

    # ----------------------------------------------------------------- one step

    def _run_with_retries(self, name: str) -> BaseException | None:
        """Run a step until it succeeds, fails for good, or the run is cancelled.

        Never raises (except on Ctrl-C): whatever goes wrong while the step runs, hooks
        included, ends the step as FAILED, so the scheduler loop and the run's closing events
        always happen. Once the step's work succeeded, nothing (a failing ``node_complete``
        hook, a ``sys.exit`` in one) turns it into a failure or runs it again.
        """
        step = self.dag.step(name)
        allowed = self.retry.retries_for(step)
        attempt = 0
        started = time.perf_counter()
        while True:
            attempt += 1
            with self._lock:
                self._attempts[name] = attempt
            attempt_started = time.perf_counter()
            try:
                self._set_state(name, NodeState.RUNNING)
                self.observer.step_started(step, attempt)
                outcome = self.runner(
                    step, attempt, lambda: self._set_state(name, NodeState.EXECUTING)
                )
            except KeyboardInterrupt as error:
                self.cancel()
                self._fail_for_good(step, error, attempt, attempt_started)
                raise
            except (Exception, SystemExit) as error:  # noqa: BLE001 - recorded, not raised
                if not self._retry_after(step, error, attempt, allowed, attempt_started):
                    return self._fail_for_good(step, error, attempt, attempt_started)
            else:
                self._succeed(step, outcome, attempt, started)
                return None

    def _retry_after(
        self, step: Step, error: BaseException, attempt: int, allowed: int, started: float
    ) -> bool:
        """Whether ``step`` runs again after ``error``; waits out the retry delay if so."""
        retryable = is_retryable(error, unknown=not self.retry.transient_only)
        if attempt > allowed or not retryable or self._cancelled.is_set():
            return False
        self._set_state(step.name, NodeState.FAILED)
        self._notify_failure(step, error, attempt, True, started)
        delay = self.retry.delay(attempt)
        log.info(
            "step '%s' failed (attempt %d), retrying in %.2fs: %s", step.name, attempt, delay, error
        )
        # A run cancelled while this step waited makes its failure final.
        return not self._cancelled.wait(delay)

    def _succeed(self, step: Step, outcome: StepOutcome, attempt: int, started: float) -> None:
        """Record a finished step. What goes wrong after its work is done never re-runs it."""
        try:
            self._set_state(step.name, outcome.status)
            self.observer.step_succeeded(step, outcome, attempt, _ms_since(started))
        except (Exception, SystemExit):  # noqa: BLE001 - the step's work is done and kept
            with self._lock:
                self._states[step.name] = outcome.status
            log.exception("reporting the success of step '%s' failed", step.name)

    def _fail_for_good(
        self, step: Step, error: BaseException, attempt: int, attempt_started: float
    ) -> BaseException:
        with self._lock:
            self._errors[step.name] = error
        self._set_state(step.name, NodeState.FAILED)
        self._notify_failure(step, error, attempt, False, attempt_started)
        return error

    def _notify_failure(
        self,
        step: Step,
        error: BaseException,
        attempt: int,
        will_retry: bool,
        attempt_started: float,
    ) -> None:
        try:
            self.observer.step_failed(step, error, attempt, will_retry, _ms_since(attempt_started))
        except Exception:  # noqa: BLE001 - a failing observer must not hide the step's own error
            log.exception("reporting the failure of step '%s' failed", step.name)

    def _set_state(self, name: str, state: NodeState) -> None:
        with self._lock:
            self._states[name] = state
        self.observer.state_changed(self.dag.step(name), state)


def _ms_since(start: float) -> int:
    return int(round((time.perf_counter() - start) * 1000))
