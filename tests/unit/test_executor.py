"""DAGExecutor scheduling, states and retries, with a runner that records what it is asked."""

import threading
import time

import pytest

from odibi_core.core.dag import DAGBuilder
from odibi_core.core.errors import EngineError
from odibi_core.core.step import NodeState, Step
from odibi_core.execution.executor import DAGExecutor, RetryPolicy, StepOutcome


def chain(*pairs):
    """Steps from (name, [input keys]) pairs; each step outputs a key named after itself."""
    return [
        Step(
            layer="transform" if ins else "ingest",
            name=name,
            value="SELECT 1" if ins else "x.csv",
            inputs={k: k for k in ins},
            outputs={"data": name},
        )
        for name, ins in pairs
    ]


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.log = []

    def _add(self, *entry):
        with self.lock:
            self.log.append(entry)

    def state_changed(self, step, state):
        self._add("state", step.name, state)

    def step_started(self, step, attempt):
        self._add("start", step.name, attempt)

    def step_succeeded(self, step, outcome, attempts, duration_ms):
        self._add("done", step.name, attempts)

    def step_failed(self, step, error, attempt, will_retry, duration_ms):
        self._add("error", step.name, attempt, will_retry)

    def step_skipped(self, step, reason):
        self._add("skip", step.name, reason)

    def states_of(self, name):
        return [e[2] for e in self.log if e[0] == "state" and e[1] == name]

    def events(self, kind):
        return [e for e in self.log if e[0] == kind]


class Runner:
    def __init__(self, delays=None, failures=None, error=RuntimeError):
        self.delays = delays or {}
        self.failures = dict(failures or {})
        self.error = error
        self.started = {}
        self.finished = {}
        self.lock = threading.Lock()

    def __call__(self, step, attempt, mark_executing):
        with self.lock:
            self.started.setdefault(step.name, time.perf_counter())
        mark_executing()
        time.sleep(self.delays.get(step.name, 0))
        with self.lock:
            if self.failures.get(step.name, 0) > 0:
                self.failures[step.name] -= 1
                raise self.error(f"{step.name} broke")
            self.finished[step.name] = time.perf_counter()
        return StepOutcome(row_count=1)


def test_lifecycle_states_in_order():
    dag = DAGBuilder(chain(("a", []))).build()
    rec = Recorder()
    report = DAGExecutor(dag, Runner(), rec).execute()
    assert rec.states_of("a") == [
        NodeState.PENDING,
        NodeState.READY,
        NodeState.RUNNING,
        NodeState.EXECUTING,
        NodeState.SUCCESS,
    ]
    assert report.states == {"a": NodeState.SUCCESS}


def test_no_level_barrier_fast_branch_finishes_first():
    dag = DAGBuilder(chain(("a", []), ("b", ["a"]), ("c", []), ("d", ["c"]))).build()
    runner = Runner(delays={"a": 0.6})
    DAGExecutor(dag, runner, Recorder(), max_workers=4).execute()
    assert runner.finished["d"] < runner.started["b"]


def test_retries_then_success_with_retry_counts():
    dag = DAGBuilder(chain(("a", []))).build()
    rec = Recorder()
    report = DAGExecutor(
        dag, Runner(failures={"a": 2}), rec, retry=RetryPolicy(max_retries=2, retry_delay=0.01)
    ).execute()
    assert report.states["a"] is NodeState.SUCCESS and report.attempts["a"] == 3
    assert rec.events("error") == [("error", "a", 1, True), ("error", "a", 2, True)]
    assert rec.states_of("a")[-3:] == [NodeState.RUNNING, NodeState.EXECUTING, NodeState.SUCCESS]
    assert NodeState.FAILED in rec.states_of(
        "a"
    )  # a failed attempt that will retry goes back to RUNNING


def test_per_step_retries_override_and_backoff_grows():
    policy = RetryPolicy(max_retries=5, retry_delay=1.0, retry_backoff=2.0, jitter=0.0)
    assert [policy.delay(k) for k in (1, 2, 3)] == [1.0, 2.0, 4.0]
    step = Step(layer="ingest", name="a", value="x", outputs={"data": "a"}, retries=1)
    assert policy.retries_for(step) == 1


def test_deterministic_errors_are_not_retried():
    dag = DAGBuilder(chain(("a", []))).build()
    rec = Recorder()
    report = DAGExecutor(
        dag,
        Runner(failures={"a": 5}, error=EngineError),
        rec,
        retry=RetryPolicy(max_retries=3, retry_delay=0.01),
    ).execute()
    assert report.states["a"] is NodeState.FAILED and report.attempts["a"] == 1
    assert rec.events("error") == [("error", "a", 1, False)]


@pytest.mark.parametrize("parallel", [True, False])
def test_failure_skips_downstream_and_independent_branch_completes(parallel):
    dag = DAGBuilder(chain(("a", []), ("b", ["a"]), ("c", ["b"]), ("x", []), ("y", ["x"]))).build()
    rec = Recorder()
    report = DAGExecutor(dag, Runner(failures={"b": 1}), rec, parallel=parallel).execute()
    assert report.states == {
        "a": NodeState.SUCCESS,
        "b": NodeState.FAILED,
        "c": NodeState.SKIPPED,
        "x": NodeState.SUCCESS,
        "y": NodeState.SUCCESS,
    }
    assert report.failed == ["b"]
    assert [e[1] for e in rec.events("skip")] == ["c"]
    assert "upstream step 'b' failed" in report.skipped_because["c"]


def test_fail_fast_cancels_what_has_not_started():
    steps = chain(("bad", []), ("slow", []), ("after_slow", ["slow"]), ("late", []))
    dag = DAGBuilder(steps).build()
    report = DAGExecutor(
        dag,
        Runner(failures={"bad": 1}, delays={"slow": 0.3}),
        Recorder(),
        max_workers=2,
        fail_fast=True,
    ).execute()
    assert report.states["bad"] is NodeState.FAILED
    assert report.states["slow"] is NodeState.SUCCESS  # already running: it finishes
    assert report.states["after_slow"] is NodeState.SKIPPED
    assert report.states["late"] is NodeState.SKIPPED


def test_many_steps_at_once_never_start_before_their_inputs():
    pairs = [(f"s{i}", []) for i in range(20)] + [
        (f"t{i}", [f"s{i}", f"s{(i + 1) % 20}"]) for i in range(20)
    ]
    dag = DAGBuilder(chain(*pairs)).build()
    runner = Runner(delays={f"s{i}": 0.01 * (i % 3) for i in range(20)})
    report = DAGExecutor(dag, runner, Recorder(), max_workers=8).execute()
    assert all(state is NodeState.SUCCESS for state in report.states.values())
    for i in range(20):
        assert runner.started[f"t{i}"] >= max(
            runner.finished[f"s{i}"], runner.finished[f"s{(i + 1) % 20}"]
        )


def test_a_retry_cancelled_by_fail_fast_is_a_final_failure():
    dag = DAGBuilder(chain(("bad", []), ("flaky", []))).build()
    rec = Recorder()

    class Slow(Runner):
        def __call__(self, step, attempt, mark_executing):
            if step.name == "bad":
                time.sleep(0.2)
                raise EngineError("bad broke")
            raise RuntimeError("transient")

    started = time.perf_counter()
    report = DAGExecutor(
        dag,
        Slow(),
        rec,
        max_workers=2,
        fail_fast=True,
        retry=RetryPolicy(max_retries=3, retry_delay=5.0),
    ).execute()
    assert time.perf_counter() - started < 2.0  # the 5 s retry wait was cut short
    assert report.states == {"bad": NodeState.FAILED, "flaky": NodeState.FAILED}
    assert ("error", "flaky", 1, True) in rec.events("error")
    assert ("error", "flaky", 1, False) in rec.events("error")  # the final word on flaky
    assert set(report.errors) == {"bad", "flaky"}


def test_an_observer_or_exit_error_fails_the_step_not_the_run():
    dag = DAGBuilder(chain(("a", []), ("b", []), ("c", ["b"]))).build()

    class Grumpy(Recorder):
        def step_started(self, step, attempt):
            super().step_started(step, attempt)
            if step.name == "a":
                raise RuntimeError("hook broke")

    class Exits(Runner):
        def __call__(self, step, attempt, mark_executing):
            if step.name == "b":
                raise SystemExit(3)
            return super().__call__(step, attempt, mark_executing)

    rec = Grumpy()
    report = DAGExecutor(dag, Exits(), rec).execute()
    assert report.states == {"a": NodeState.FAILED, "b": NodeState.FAILED, "c": NodeState.SKIPPED}
    assert isinstance(report.errors["b"], SystemExit)
    assert str(report.errors["a"]) == "hook broke"


@pytest.mark.parametrize(
    "error, attempts, state",
    [(RuntimeError, 1, NodeState.FAILED), (ConnectionError, 3, NodeState.SUCCESS)],
)
def test_a_job_task_retries_in_process_only_errors_known_to_be_transient(error, attempts, state):
    """In a job task an error of unknown kind is left to the task's own retries."""
    dag = DAGBuilder(chain(("a", []))).build()
    report = DAGExecutor(
        dag,
        Runner(failures={"a": 2}, error=error),
        Recorder(),
        retry=RetryPolicy(max_retries=2, retry_delay=0.01, transient_only=True),
    ).execute()
    assert (report.states["a"], report.attempts["a"]) == (state, attempts)


def test_an_error_without_a_message_is_named_by_its_type(tmp_path):
    from odibi_core.orchestrator import Orchestrator

    class BareAssert:
        """Framework code that fails with a bare ``assert``, outside the step's node."""

        def __init__(self, inner):
            self.inner = inner

        def __call__(self, call):
            raise AssertionError()

    (tmp_path / "ids.csv").write_text("id\n1\n")
    steps = [
        Step(layer="ingest", name="read", value=str(tmp_path / "ids.csv"), outputs={"data": "d"})
    ]
    result = Orchestrator(
        steps=steps, engine_type="pandas", max_retries=0, layers=[BareAssert]
    ).execute()
    assert not result.success
    assert result.error == "step 'read' failed: AssertionError"
