"""Errors that must not mislead: retried only when a retry can help, naming the real cause,
the user's own line and the step whose plan failed; hooks, exits and signals that cannot
hold, kill or re-run a run; and a state write failure that is not hidden.
"""

from __future__ import annotations

import inspect
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from odibi_core.cli import main
from odibi_core.core.config import Settings, load_pipeline
from odibi_core.events.bus import EventBus
from odibi_core.orchestrator import Orchestrator, RunContext
from tests.reliability import error_funcs

ROOT = Path(__file__).resolve().parents[2]
FUNCS = "tests.reliability.error_funcs"


def write_pipeline(folder: Path, text: str) -> Path:
    path = folder / "pipeline.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def line_of(function, text: str) -> int:
    """The line number of ``text`` inside ``function``'s source."""
    lines, first = inspect.getsourcelines(function)
    return first + next(i for i, line in enumerate(lines) if text in line)


DIVIDE_PIPELINE = f"""
pipeline: broken
settings: {{max_retries: 0}}
steps:
  - {{layer: transform, name: source, value: "{FUNCS}:rows", outputs: {{data: src}}}}
  - {{layer: transform, name: divide, value: "{FUNCS}:divide", inputs: {{data: src}}, outputs: {{data: out}}}}
"""


# ------------------------------------------------------------------ 13: user code errors


def test_a_function_error_names_the_users_file_and_line(tmp_path, monkeypatch, capsys):
    path = write_pipeline(tmp_path, DIVIDE_PIPELINE)
    monkeypatch.chdir(ROOT)
    assert main(["run", str(path), "--no-state", "--quiet"]) == 1
    err = capsys.readouterr().err
    line = line_of(error_funcs.divide, "1 / (len(data)")
    assert (
        f"step 'divide' failed: tests/reliability/error_funcs.py, line {line}, in divide: "
        "ZeroDivisionError: division by zero"
    ) in err
    assert "Traceback" not in err


def test_debug_logs_the_full_traceback_of_a_failed_step(tmp_path, monkeypatch, caplog):
    path = write_pipeline(tmp_path, DIVIDE_PIPELINE)
    monkeypatch.chdir(ROOT)
    with caplog.at_level(logging.DEBUG, logger="odibi_core.execution.observers"):
        assert main(["--debug", "run", str(path), "--no-state", "--quiet"]) == 1
    failed = [r for r in caplog.records if r.exc_info and "step 'divide' failed" in r.getMessage()]
    assert failed, "the step's traceback is logged at DEBUG"
    text = logging.Formatter().formatException(failed[0].exc_info)
    assert "Traceback (most recent call last)" in text
    assert "share = 1 / (len(data) - len(data))" in text


def test_sys_exit_in_a_function_fails_that_step_once_and_the_run_goes_on(tmp_path):
    path = write_pipeline(
        tmp_path,
        f"""
        pipeline: exits
        settings: {{max_retries: 2, retry_delay: 0.01}}
        steps:
          - {{layer: transform, name: source, value: "{FUNCS}:rows", outputs: {{data: src}}}}
          - {{layer: transform, name: quits, value: "{FUNCS}:exit_three", inputs: {{data: src}}, outputs: {{data: out}}}}
          - {{layer: transform, name: other, value: "{FUNCS}:rows", outputs: {{data: other}}}}
        """,
    )
    before = error_funcs.count("exit_three")
    result = Orchestrator(pipeline=path).execute()
    assert result.failed_nodes == ["quits"]
    assert result.node_states["other"].value == "SUCCESS"
    assert result.attempts["quits"] == 1
    assert error_funcs.count("exit_three") == before + 1
    line = line_of(error_funcs.exit_three, "sys.exit(3)")
    assert result.errors["quits"].endswith(
        f"error_funcs.py, line {line}, in exit_three: the function called sys.exit(3)"
    )


@pytest.mark.parametrize("hook_timeout", [None, 5.0], ids=["same-thread", "time-bounded"])
def test_sys_exit_in_a_hook_never_reruns_a_finished_step(tmp_path, hook_timeout):
    calls = []
    path = write_pipeline(
        tmp_path,
        f"""
        pipeline: hooked
        settings: {{max_retries: 2, retry_delay: 0.01}}
        steps:
          - {{layer: transform, name: a, value: "{FUNCS}:rows", outputs: {{data: a}}}}
          - {{layer: transform, name: b, value: "SELECT n + 1 AS n FROM d", inputs: {{d: a}}, outputs: {{data: b}}}}
          - {{layer: transform, name: c, value: "SELECT n FROM d", inputs: {{d: b}}, outputs: {{data: c}}}}
        """,
    )
    bus = EventBus(hook_timeout=hook_timeout)
    bus.register_hook("node_start", lambda e: calls.append(e["step_name"]))
    bus.register_hook("node_complete", lambda e: sys.exit(1))
    result = Orchestrator(pipeline=path, event_bus=bus).execute()
    assert result.success
    assert calls == ["a", "b", "c"]
    assert result.attempts == {"a": 1, "b": 1, "c": 1}
    assert [(f.error_type, f.error_message) for f in bus.hook_errors] == [
        ("SystemExit", "the hook called sys.exit(1)")
    ] * 3


def test_sigterm_ends_a_run_like_ctrl_c_with_exit_143(tmp_path):
    path = write_pipeline(
        tmp_path,
        f"""
        pipeline: slow
        steps:
          - {{layer: transform, name: slow, value: "{FUNCS}:sleep_long", params: {{seconds: 60}}, outputs: {{data: out}}}}
        """,
    )
    log = tmp_path / "stderr.txt"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "odibi_core.cli", "run", str(path), "--no-state", "--quiet"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            cwd=tmp_path,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
        try:
            deadline = time.monotonic() + 60
            while "slow RUNNING" not in log.read_text() and time.monotonic() < deadline:
                assert process.poll() is None, log.read_text()
                time.sleep(0.1)
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
    assert code == 143
    assert time.monotonic() - started < 10
    err = log.read_text()
    assert "terminated (SIGTERM): no new step was started" in err
    assert "Traceback" not in err


def test_sigterm_received_by_a_step_thread_still_ends_the_run_at_once(tmp_path):
    """The kernel may hand a signal sent to the process to any thread; the main thread,
    waiting for the step, must still act on it (it waits in short slices)."""
    path = write_pipeline(
        tmp_path,
        f"""
        pipeline: slow
        steps:
          - {{layer: transform, name: slow, value: "{FUNCS}:sigterm_own_thread_then_sleep", outputs: {{data: out}}}}
        """,
    )
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "odibi_core.cli", "run", str(path), "--no-state", "--quiet"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            timeout=45,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the run did not end on SIGTERM:\n{exc.stderr}") from None
    assert done.returncode == 143, done.stderr
    assert time.monotonic() - started < 30  # the step sleeps 60 s
    assert "terminated (SIGTERM): no new step was started" in done.stderr
    assert "Traceback" not in done.stderr


# ------------------------------------------------------------------ 14: hooks are time-bounded


def test_hooks_are_time_bounded_by_default_to_30_seconds(tmp_path):
    assert Settings().hook_timeout == 30.0
    assert EventBus().hook_timeout == 30.0
    path = write_pipeline(
        tmp_path,
        f"""
        pipeline: plain
        steps:
          - {{layer: transform, name: a, value: "{FUNCS}:rows", outputs: {{data: a}}}}
        """,
    )
    assert load_pipeline(path).settings.hook_timeout == 30.0
    assert Orchestrator(pipeline=path).event_bus.hook_timeout == 30.0


def test_a_slow_hook_does_not_hold_the_run(tmp_path):
    path = write_pipeline(
        tmp_path,
        f"""
        pipeline: slow_hooks
        settings: {{hook_timeout: 0.2, parallel: false}}
        steps:
          - {{layer: transform, name: a, value: "{FUNCS}:rows", outputs: {{data: a}}}}
          - {{layer: transform, name: b, value: "SELECT n FROM d", inputs: {{d: a}}, outputs: {{data: b}}}}
          - {{layer: transform, name: c, value: "SELECT n FROM d", inputs: {{d: b}}, outputs: {{data: c}}}}
        """,
    )
    release = threading.Event()
    orchestrator = Orchestrator(pipeline=path)
    orchestrator.event_bus.register_hook("node_complete", lambda e: release.wait(20))
    started = time.monotonic()
    try:
        result = orchestrator.execute()
    finally:
        release.set()
    assert result.success
    assert time.monotonic() - started < 6  # three 20 s hooks, abandoned after 0.2 s each
    timeouts = [f for f in orchestrator.event_bus.hook_errors if f.timed_out]
    assert len(timeouts) == 3


# ------------------------------------------------------------------ 9, 10: Spark errors


@pytest.mark.spark
def test_a_bad_cast_is_tried_once_and_names_its_step_and_cause(spark, tmp_path, capsys):
    pd.DataFrame({"id": [1, 2, 3], "amount": ["1", "x", "3"]}).to_csv(
        tmp_path / "in.csv", index=False
    )
    path = write_pipeline(
        tmp_path,
        """
        pipeline: casts
        engine: spark
        settings: {max_retries: 3, retry_delay: 0.01}
        steps:
          - {layer: ingest, name: load, value: in.csv, outputs: {data: raw}}
          - layer: transform
            name: clean
            value: "SELECT id, CAST(amount AS INT) AS amount FROM raw"
            inputs: {raw: raw}
            outputs: {data: clean}
          - {layer: store, name: save, value: out, params: {format: parquet}, inputs: {data: clean}}
        """,
    )
    result = Orchestrator(pipeline=path, spark=spark).execute()
    assert result.failed_nodes == ["save"]
    assert result.attempts["save"] == 1
    error = result.errors["save"]
    assert "CAST_INVALID_INPUT" in error
    blame = "the failing expression `CAST(amount AS INT)` is in the SQL of transform step 'clean'"
    assert blame in error
    # The failed write fired the upstream observations on a partial read: no count, a reason.
    for name in ("load", "clean"):
        after = result.tracker.get(name).after_snapshot
        assert after.row_count is None, name
        assert "the action of step 'save' that counted it failed" in after.count_reason
    capsys.readouterr()
    assert main(["run", str(path), "--no-state", "--quiet", "--retries", "3"]) == 1
    err = capsys.readouterr().err
    assert "save FAILED: step 'save': Spark could not write parquet" in err
    assert len(err.splitlines()) < 40, err  # one attempt, no JVM stack trace
    assert "Traceback" not in err


@pytest.mark.spark
def test_a_corrupt_parquet_file_names_the_root_cause(spark, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "part-0.parquet").write_text("hello")
    steps_yaml = """
        pipeline: corrupt
        engine: spark
        steps:
          - {layer: ingest, name: load, value: in, params: {format: parquet}, outputs: {data: raw}}
          - {layer: store, name: save, value: out, params: {format: parquet}, inputs: {data: raw}}
        """
    result = Orchestrator(pipeline=write_pipeline(tmp_path, steps_yaml), spark=spark).execute()
    assert not result.success
    error = next(iter(result.errors.values()))
    assert "is not a Parquet file" in error
    assert "\tat " not in error


# ------------------------------------------------------------------ 15: state write failures

STORE_PIPELINE = f"""
pipeline: kept
steps:
  - {{layer: transform, name: make, value: "{FUNCS}:rows", outputs: {{data: rows}}}}
  - {{layer: store, name: save, value: out, params: {{format: csv}}, inputs: {{data: rows}}}}
"""


@pytest.mark.spark
def test_a_failed_state_write_is_in_the_result_and_the_targets_stay(spark, tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a regular file: nothing can be created under it")
    path = write_pipeline(tmp_path, STORE_PIPELINE)
    result = Orchestrator(
        pipeline=path,
        state_schema="odibi_state",
        context=RunContext(warehouse=blocker / "wh"),
        spark=spark,
    ).execute()
    assert result.success
    assert any((tmp_path / "out").iterdir())
    assert result.state_error is not None
    assert "the pipeline's targets were written" in result.state_error
    assert "odibi_state.odibi_audit" in result.state_error


@pytest.mark.spark
def test_the_cli_exits_1_when_the_state_tables_cannot_be_written(
    spark, tmp_path, monkeypatch, capsys
):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a regular file")
    monkeypatch.setenv("ODIBI_WAREHOUSE", str(blocker / "wh"))
    path = write_pipeline(tmp_path, STORE_PIPELINE)
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(path), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "2/2 steps succeeded" in captured.out
    assert "error: the pipeline's targets were written, but run " in captured.err
    assert "state tables odibi_state.odibi_audit and odibi_state.odibi_runs" in captured.err
    assert any((tmp_path / "out").iterdir())
