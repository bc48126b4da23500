from __future__ import annotations

import logging
import threading
import time

import pytest

from odibi_core.core.errors import OdibiError
from odibi_core.events.bus import (
    LIFECYCLE_EVENTS,
    EventBus,
    EventPriority,
    HookTimeoutError,
    InvalidHookError,
    UnknownEventError,
    create_metrics_export_hook,
    create_summary_hook,
    events,
)


class Recorder:
    """Collects (label, payload) pairs in call order; safe across threads."""

    def __init__(self):
        self.calls: list[tuple[str, dict]] = []
        self._lock = threading.Lock()

    def hook(self, label):
        def record(event_data):
            with self._lock:
                self.calls.append((label, event_data))

        record.__qualname__ = f"record_{label}"
        return record

    @property
    def labels(self):
        return [label for label, _ in self.calls]


def test_lifecycle_event_constants_name_the_six_events():
    assert LIFECYCLE_EVENTS == (
        "pipeline_start",
        "pipeline_complete",
        "pipeline_error",
        "node_start",
        "node_complete",
        "node_error",
    )
    assert events.NODE_COMPLETE == "node_complete"
    assert EventBus.events.PIPELINE_ERROR == "pipeline_error"
    assert EventBus().event_types == LIFECYCLE_EVENTS


def test_hooks_run_by_priority_then_registration_order():
    bus = EventBus()
    recorder = Recorder()
    bus.register_hook("node_complete", recorder.hook("low-1"), priority=EventPriority.LOW)
    bus.register_hook("node_complete", recorder.hook("medium-1"))
    bus.register_hook("node_complete", recorder.hook("critical-1"), EventPriority.CRITICAL)
    bus.register_hook("node_complete", recorder.hook("high-1"), priority=EventPriority.HIGH)
    bus.register_hook("node_complete", recorder.hook("medium-2"), EventPriority.MEDIUM)
    bus.register_hook("node_complete", recorder.hook("critical-2"), EventPriority.CRITICAL)
    bus.register_hook("node_complete", recorder.hook("low-2"), EventPriority.LOW)

    bus.emit("node_complete", {"step_name": "s"})

    assert recorder.labels == [
        "critical-1",
        "critical-2",
        "high-1",
        "medium-1",
        "medium-2",
        "low-1",
        "low-2",
    ]
    assert [h.__qualname__ for h in bus.hooks_for("node_complete")] == [
        f"record_{label}" for label in recorder.labels
    ]


def test_hooks_only_receive_their_own_event():
    bus = EventBus()
    recorder = Recorder()
    bus.register_hook("node_start", recorder.hook("start"))
    bus.register_hook("node_complete", recorder.hook("complete"))

    bus.emit("node_complete", {"step_name": "a"})
    bus.emit("node_start", {"step_name": "b"})
    bus.emit("pipeline_start", {"pipeline_name": "p"})

    assert recorder.calls == [("complete", {"step_name": "a"}), ("start", {"step_name": "b"})]


def test_each_hook_gets_its_own_shallow_copy_of_the_payload():
    bus = EventBus()
    seen = []

    def vandal(event_data):
        event_data["step_name"] = "overwritten"
        event_data["extra"] = 1

    def observer(event_data):
        seen.append(dict(event_data))

    bus.register_hook("node_start", vandal, EventPriority.HIGH)
    bus.register_hook("node_start", observer, EventPriority.LOW)
    payload = {"step_name": "load", "layer": "ingest"}

    bus.emit("node_start", payload)

    assert seen == [{"step_name": "load", "layer": "ingest"}]
    assert payload == {"step_name": "load", "layer": "ingest"}


def test_misspelled_event_names_the_closest_event():
    bus = EventBus()
    with pytest.raises(ValueError) as raised:
        bus.register_hook("node_compelte", print)
    assert "unknown event 'node_compelte' (did you mean 'node_complete'?)" in str(raised.value)
    assert "event_bus.register_event('node_compelte')" in str(raised.value)
    assert isinstance(raised.value, OdibiError)

    with pytest.raises(UnknownEventError, match=r"did you mean 'pipeline_start'\?"):
        bus.emit("pipline_start", {})


def test_custom_event_must_be_declared_before_use():
    bus = EventBus()
    recorder = Recorder()
    with pytest.raises(UnknownEventError, match="Declare a custom event first"):
        bus.register_hook("quality_check", recorder.hook("qc"))

    bus.register_event("quality_check")
    bus.register_hook("quality_check", recorder.hook("qc"))
    bus.emit("quality_check", {"passed": True})

    assert recorder.calls == [("qc", {"passed": True})]
    assert bus.event_types == (*LIFECYCLE_EVENTS, "quality_check")


def test_register_event_rejects_an_empty_name():
    with pytest.raises(ValueError, match="non-empty string, got ''"):
        EventBus().register_event("")


def test_hooks_are_validated_when_registered():
    bus = EventBus()

    def needs_two(event_data, other):
        return None

    with pytest.raises(InvalidHookError) as raised:
        bus.register_hook("node_error", needs_two)
    message = str(raised.value)
    assert "hook 'test_hooks_are_validated_when_registered.<locals>.needs_two" in message
    assert "for event 'node_error'" in message
    assert isinstance(raised.value, TypeError)

    with pytest.raises(InvalidHookError, match="hook 'not a function' for event 'node_start'"):
        bus.register_hook("node_start", "not a function")

    with pytest.raises(ValueError, match="has priority 'HIGH'"):
        bus.register_hook("node_start", print, priority="HIGH")
    assert bus.hooks_for("node_error") == []


def test_a_hook_with_extra_optional_parameters_is_accepted():
    bus = EventBus()
    calls = []

    def hook(event_data, verbose=False, *rest):
        calls.append((event_data["step_name"], verbose, rest))

    bus.register_hook("node_start", hook)
    bus.emit("node_start", {"step_name": "a"})

    assert calls == [("a", False, ())]


def test_registering_the_same_hook_twice_is_refused():
    bus = EventBus()
    recorder = Recorder()
    hook = recorder.hook("once")
    bus.register_hook("node_start", hook)
    with pytest.raises(ValueError, match="hook 'record_once' is already registered for"):
        bus.register_hook("node_start", hook, EventPriority.HIGH)

    bus.emit("node_start", {})
    assert recorder.labels == ["once"]


def test_unregister_reports_whether_the_hook_was_registered():
    bus = EventBus()
    recorder = Recorder()
    keep, drop = recorder.hook("keep"), recorder.hook("drop")
    bus.register_hook("node_complete", keep)
    bus.register_hook("node_complete", drop)

    assert bus.unregister_hook("node_complete", drop) is True
    assert bus.unregister_hook("node_complete", drop) is False
    assert bus.unregister_hook("node_start", keep) is False
    bus.emit("node_complete", {})

    assert recorder.labels == ["keep"]


def test_a_raising_hook_is_recorded_and_later_hooks_still_run(caplog):
    bus = EventBus()
    recorder = Recorder()

    def explode(event_data):
        raise RuntimeError(f"cannot reach slack for {event_data['step_name']}")

    bus.register_hook("node_complete", explode, EventPriority.HIGH)
    bus.register_hook("node_complete", recorder.hook("after"), EventPriority.LOW)

    with caplog.at_level(logging.DEBUG, logger="odibi_core.events.bus"):
        bus.emit("node_complete", {"step_name": "load"})
        bus.emit("node_complete", {"step_name": "join"})

    assert recorder.labels == ["after", "after"]
    assert [
        (f.event_type, f.hook_name, f.error_type, f.error_message) for f in bus.hook_errors
    ] == [
        (
            "node_complete",
            "test_a_raising_hook_is_recorded_and_later_hooks_still_run.<locals>.explode",
            "RuntimeError",
            "cannot reach slack for load",
        ),
        (
            "node_complete",
            "test_a_raising_hook_is_recorded_and_later_hooks_still_run.<locals>.explode",
            "RuntimeError",
            "cannot reach slack for join",
        ),
    ]
    assert "Traceback (most recent call last)" in bus.hook_errors[0].traceback
    assert "raise RuntimeError" in bus.hook_errors[0].traceback
    assert bus.hook_errors[0].timed_out is False
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) == 2
    assert (
        failures[0]
        .getMessage()
        .startswith(
            "hook 'test_a_raising_hook_is_recorded_and_later_hooks_still_run.<locals>.explode' "
            "failed on event 'node_complete' (step 'load'): RuntimeError: cannot reach slack for load"
        )
    )
    # One line at ERROR (the CLI shows it); the traceback only at DEBUG (``--debug``).
    assert failures[0].exc_info is None
    tracebacks = [r for r in caplog.records if r.levelno == logging.DEBUG and r.exc_info]
    assert len(tracebacks) == 2


def test_strict_mode_reraises_the_hook_error():
    bus = EventBus(strict=True)
    recorder = Recorder()

    def explode(event_data):
        raise KeyError("step_name")

    bus.register_hook("node_error", explode, EventPriority.HIGH)
    bus.register_hook("node_error", recorder.hook("after"), EventPriority.LOW)

    with pytest.raises(KeyError, match="step_name"):
        bus.emit("node_error", {})
    assert recorder.calls == []
    assert bus.hook_errors == []


def test_hook_timeout_abandons_a_slow_hook_and_goes_on():
    bus = EventBus(hook_timeout=0.2)
    recorder = Recorder()
    release = threading.Event()

    def hang(event_data):
        release.wait(10)

    bus.register_hook("pipeline_complete", hang, EventPriority.HIGH)
    bus.register_hook("pipeline_complete", recorder.hook("after"), EventPriority.LOW)
    try:
        started = time.monotonic()
        bus.emit("pipeline_complete", {"pipeline_name": "p"})
        elapsed = time.monotonic() - started
    finally:
        release.set()

    assert 0.2 <= elapsed < 2.0
    assert recorder.labels == ["after"]
    assert len(bus.hook_errors) == 1
    failure = bus.hook_errors[0]
    assert failure.timed_out is True
    assert failure.error_type == "HookTimeoutError"
    assert failure.hook_name.endswith("<locals>.hang")
    assert failure.error_message == "hook ran longer than hook_timeout=0.2s"
    assert "release.wait(10)" in failure.traceback


def test_hook_timeout_still_records_errors_of_fast_hooks():
    bus = EventBus(hook_timeout=5)

    def explode(event_data):
        raise ValueError("bad payload")

    bus.register_hook("node_start", explode)
    bus.emit("node_start", {"step_name": "a"})

    assert [(f.error_type, f.error_message, f.timed_out) for f in bus.hook_errors] == [
        ("ValueError", "bad payload", False)
    ]


def test_a_hook_raising_hook_timeout_error_itself_is_recorded_as_a_failure():
    bus = EventBus(hook_timeout=5)

    def nested(event_data):
        raise HookTimeoutError("inner bus gave up")

    bus.register_hook("node_start", nested)
    bus.emit("node_start", {})

    assert [(f.error_type, f.error_message, f.timed_out) for f in bus.hook_errors] == [
        ("HookTimeoutError", "inner bus gave up", False)
    ]


def test_strict_mode_raises_on_timeout():
    bus = EventBus(strict=True, hook_timeout=0.1)
    release = threading.Event()
    bus.register_hook("node_start", lambda event_data: release.wait(10))
    try:
        with pytest.raises(HookTimeoutError) as raised:
            bus.emit("node_start", {"step_name": "slow"})
    finally:
        release.set()
    assert str(raised.value) == (
        "hook 'test_strict_mode_raises_on_timeout.<locals>.<lambda>' on event 'node_start' "
        "(step 'slow') ran longer than hook_timeout=0.1s and was abandoned"
    )
    assert bus.hook_errors == []


def test_hook_timeout_must_be_positive():
    with pytest.raises(ValueError, match="got 0"):
        EventBus(hook_timeout=0)


def test_a_hook_may_register_and_unregister_hooks_while_running():
    bus = EventBus()
    recorder = Recorder()
    late = recorder.hook("late")

    def register_late(event_data):
        recorder.calls.append(("register", event_data))
        bus.register_hook("node_start", late, EventPriority.LOW)
        bus.unregister_hook("node_start", register_late)

    bus.register_hook("node_start", register_late)
    bus.emit("node_start", {"n": 1})
    bus.emit("node_start", {"n": 2})

    assert recorder.calls == [("register", {"n": 1}), ("late", {"n": 2})]


def test_concurrent_emits_lose_no_call_while_hooks_churn():
    bus = EventBus()
    counts = {"stable": 0, "first": 0, "churn": 0}
    lock = threading.Lock()

    def counter(key):
        def count(event_data):
            with lock:
                counts[key] += 1

        return count

    bus.register_hook("node_complete", counter("stable"), EventPriority.LOW)
    bus.register_hook("node_complete", counter("first"), EventPriority.CRITICAL)
    churn = counter("churn")
    stop = threading.Event()
    churn_cycles = []

    def churner():
        cycles = 0
        while not stop.is_set():
            bus.register_hook("node_complete", churn, EventPriority.MEDIUM)
            assert bus.unregister_hook("node_complete", churn) is True
            cycles += 1
        churn_cycles.append(cycles)

    def emitter(worker):
        for i in range(200):
            bus.emit("node_complete", {"step_name": f"w{worker}-{i}"})

    churn_thread = threading.Thread(target=churner)
    churn_thread.start()
    workers = [threading.Thread(target=emitter, args=(w,)) for w in range(16)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    stop.set()
    churn_thread.join()

    assert counts["stable"] == 16 * 200
    assert counts["first"] == 16 * 200
    assert 0 <= counts["churn"] <= 16 * 200
    assert churn_cycles[0] > 0
    assert bus.hook_errors == []
    assert len(bus.hooks_for("node_complete")) == 2


SEED_STEP_PAYLOADS = [
    {
        "pipeline_name": "customer_pipeline",
        "run_id": "r1",
        "execution_id": "r1.1",
        "timestamp": "2024-05-01T10:00:01",
        "step_name": "read_customers",
        "layer": "ingest",
        "duration_ms": 120.5,
        "row_count": 1000,
        "status": "SUCCESS",
        "engine": "pandas",
        "outputs": {"data": "raw_customers"},
        "schema": ["customer_id: int64", "email: string"],
    },
]


def test_seed_registering_hooks_snippet_runs_as_written(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # --- seed: "Registering Hooks" and "Built-in Hook Helpers" ---
    from odibi_core.events.bus import EventBus, EventPriority

    # Create EventBus
    event_bus = EventBus()

    # Define custom hook function
    def send_slack_alert(event_data):
        print(f"[SLACK] Pipeline started: {event_data['pipeline_name']}")
        # In production: send actual Slack message

    def log_node_completion(event_data):
        print(f"[LOG] Node {event_data['step_name']} completed in {event_data['duration_ms']}ms")

    # Register hooks
    event_bus.register_hook(
        event_type="pipeline_start", hook_func=send_slack_alert, priority=EventPriority.HIGH
    )

    event_bus.register_hook(
        event_type="node_complete", hook_func=log_node_completion, priority=EventPriority.MEDIUM
    )

    # Create summary hook (prints execution summary)
    summary_hook = create_summary_hook()
    event_bus.register_hook("pipeline_complete", summary_hook)

    # Create metrics export hook (saves metrics to file)
    metrics_hook = create_metrics_export_hook(output_path="metrics.json")
    event_bus.register_hook("pipeline_complete", metrics_hook)
    # --- end of seed ---

    common = {"pipeline_name": "customer_pipeline", "run_id": "r1", "execution_id": "r1.1"}
    event_bus.emit(
        "pipeline_start",
        {
            **common,
            "timestamp": "2024-05-01T10:00:00",
            "start_time": "2024-05-01T10:00:00",
            "total_steps": 1,
        },
    )
    event_bus.emit(
        "node_start",
        {**common, "step_name": "read_customers", "layer": "ingest", "attempt": 1},
    )
    event_bus.emit("node_complete", SEED_STEP_PAYLOADS[0])
    event_bus.emit(
        "pipeline_complete",
        {
            **common,
            "timestamp": "2024-05-01T10:00:02",
            "duration_ms": 1500.0,
            "nodes_executed": 1,
            "success_count": 1,
            "status": "SUCCESS",
            "steps": [
                {
                    "step_name": "read_customers",
                    "status": "SUCCESS",
                    "duration_ms": 120.5,
                    "row_count": 1000,
                }
            ],
        },
    )

    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "[SLACK] Pipeline started: customer_pipeline"
    assert lines[1] == "[LOG] Node read_customers completed in 120.5ms"
    assert "Pipeline customer_pipeline: SUCCESS in 1.50 s" in lines[2]
    assert "read_customers" in out and "1,000" in out
    assert (tmp_path / "metrics.json").exists()
    assert event_bus.hook_errors == []
