"""Faults: hooks that raise, hang or exit; a process killed in the middle of a Delta write
or of the audit write (``ODIBI_FAULT``); SIGTERM to a running ``odibi run``.

After a kill every table must be readable and no half-written run presented as complete:
the target is at its old version (or fully written) and ``odibi_runs`` has no row for the
killed run.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from odibi_core import Step
from odibi_core.core import faults
from odibi_core.events.bus import EventBus
from odibi_core.orchestrator import Orchestrator
from tests.reliability.conftest import delta_versions, listing, odibi_process

CSV = "id,name\n" + "".join(f"{i},n{i}\n" for i in range(200))
CALLS: dict[str, int] = {}


def counted(data: pd.DataFrame, key: str) -> pd.DataFrame:
    CALLS[key] = CALLS.get(key, 0) + 1
    return data


# --------------------------------------------------------------------------- the setting


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ("kill_after:node_complete:3", faults.Fault("kill_after", "node_complete", 3)),
        ("term_after:node_start", faults.Fault("term_after", "node_start", 1)),
        ("kill_during:delta_write:2", faults.Fault("kill_during", "delta_write", 2)),
        ("kill_during:audit_write:1", faults.Fault("kill_during", "audit_write", 1)),
    ],
)
def test_a_fault_is_parsed(text, fault):
    assert faults.parse(text) == fault


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kill", "must be <action>:<point>[:<n>]"),
        ("explode:node_start", "actions: kill_after, term_after, kill_during"),
        ("kill_after:delta_write", "kill_after works at node_start, node_complete"),
        ("kill_during:node_start", "kill_during works at delta_write, audit_write"),
        ("kill_after:node_start:0", "n must be a whole number >= 1"),
    ],
)
def test_a_wrong_fault_says_what_is_allowed(text, message):
    with pytest.raises(faults.FaultSpecError, match=message.replace("[", r"\[")):
        faults.parse(text)


def test_an_unset_fault_costs_one_check(monkeypatch):
    monkeypatch.delenv(faults.ENV_VAR, raising=False)
    monkeypatch.setattr(faults, "_fault", faults._UNREAD)
    faults.reached("node_complete")
    assert faults._fault is None  # read once; later calls return at the first line
    with faults.during("delta_write", watch="/nonexistent"):
        pass


# --------------------------------------------------------------------------- hooks


def _steps(tag: str) -> list[Step]:
    fn = f"{__name__}:counted"
    return [
        Step(layer="ingest", name="a", value="in.csv", outputs={"data": "a"}),
        Step(
            layer="transform",
            name="b",
            type="function",
            value=fn,
            params={"key": f"{tag}b"},
            inputs={"data": "a"},
            outputs={"data": "b"},
        ),
        Step(
            layer="transform",
            name="c",
            type="function",
            value=fn,
            params={"key": f"{tag}c"},
            inputs={"data": "b"},
            outputs={"data": "c"},
        ),
    ]


def _raise(event):
    raise RuntimeError("hook broke")


def _hang(event):
    time.sleep(30)


def _exit(event):
    sys.exit(4)


@pytest.mark.parametrize("hook", [_raise, _hang, _exit], ids=["raises", "hangs", "exits"])
def test_a_bad_hook_neither_stops_nor_repeats_the_run(hook, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.csv").write_text(CSV)
    bus = EventBus(hook_timeout=0.3)
    for event in ("node_start", "node_complete"):
        bus.register_hook(event, hook)
    tag = hook.__name__
    started = time.monotonic()
    result = Orchestrator(
        steps=_steps(tag), engine_type="pandas", event_bus=bus, max_retries=2, retry_delay=0.01
    ).execute()
    elapsed = time.monotonic() - started
    assert result.success, result.error
    assert CALLS[f"{tag}b"] == 1 and CALLS[f"{tag}c"] == 1  # each step ran once
    assert [r.attempts for r in result.tracker.step_executions] == [1, 1, 1]
    # 3 steps x (start, complete): each failure recorded once, under the hook's name.
    assert sorted((f.hook_name, f.event_type) for f in bus.hook_errors) == sorted(
        [(tag, "node_complete"), (tag, "node_start")] * 3
    )
    assert all(f.timed_out == (hook is _hang) for f in bus.hook_errors)
    assert elapsed < 15, f"hooks held the run {elapsed:.1f} s"


# --------------------------------------------------------------------------- real processes

PIPELINE = """\
pipeline: faulty
engine: {engine}
steps:
  - {{layer: ingest, name: read, value: in.csv, outputs: {{data: raw}}}}
  - {{layer: transform, name: slow, type: function, value: "slow_fn:fn", inputs: {{data: raw}}, outputs: {{data: done}}}}
  - {{layer: store, name: save, value: {target}, params: {{format: {fmt}}}, inputs: {{data: done}}}}
"""
SLOW_FN = """\
import pathlib
import time


def fn(data, seconds=0):
    pathlib.Path("slow.started").write_text("started")
    time.sleep(float(seconds))
    return data
"""


def _work(tmp_path: Path, *, engine="pandas", target="out/result.csv", fmt="csv") -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "in.csv").write_text(CSV)
    (folder / "slow_fn.py").write_text(SLOW_FN)
    text = PIPELINE.format(engine=engine, target=target, fmt=fmt)
    (folder / "pipeline.yaml").write_text(text)
    return folder


def _no_state_env(tmp_path: Path, fault: str | None = None) -> dict[str, str]:
    env = {"ODIBI_WAREHOUSE": str(tmp_path / "warehouse"), "PYTHONPATH": str(tmp_path / "work")}
    return {**env, faults.ENV_VAR: fault} if fault else env


def test_kill_after_a_node_event_kills_the_run_before_its_store(tmp_path, run_process):
    folder = _work(tmp_path)
    code, out, err = run_process(
        ["run", "pipeline.yaml", "--no-state", "--quiet"],
        folder,
        env=_no_state_env(tmp_path, "kill_after:node_complete:2"),
        timeout=120,
    )
    assert code == -signal.SIGKILL, err
    assert "odibi fault: ODIBI_FAULT=kill_after:node_complete:2 fired" in err
    assert "slow SUCCESS" in err and "save RUNNING" not in err
    assert not (folder / "out").exists()


def test_term_after_a_node_start_stops_the_run_with_143(tmp_path, run_process):
    folder = _work(tmp_path)
    code, out, err = run_process(
        ["run", "pipeline.yaml", "--no-state", "--quiet"],
        folder,
        env=_no_state_env(tmp_path, "term_after:node_start:2"),
        timeout=120,
    )
    assert code == 143, err
    assert "terminated (SIGTERM)" in err and "Traceback" not in err
    assert not (folder / "out").exists()


def test_sigterm_ends_a_running_odibi_run_with_143_and_a_message(tmp_path):
    folder = _work(tmp_path)
    text = (
        (folder / "pipeline.yaml")
        .read_text()
        .replace('value: "slow_fn:fn"', 'value: "slow_fn:fn", params: {seconds: 60}')
    )
    (folder / "pipeline.yaml").write_text(text)
    process = odibi_process(
        ["run", "pipeline.yaml", "--no-state", "--quiet"], folder, env=_no_state_env(tmp_path)
    )
    deadline = time.monotonic() + 120
    while not (folder / "slow.started").exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the slow step never started"
        time.sleep(0.05)
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 143, err
    assert time.monotonic() - started < 15  # not held by the 60 s step
    assert "terminated (SIGTERM): no new step was started" in err
    assert "Traceback" not in out + err
    assert not (folder / "out").exists()


def _state(spark, warehouse: Path):
    from odibi_core.orchestrator import state_location_of
    from odibi_core.state.audit import AuditStore

    return AuditStore(
        state_location_of("odibi_state"), spark_provider=lambda: spark, warehouse=warehouse
    )


def _delta_rows(spark, table: Path) -> int:
    return spark.read.format("delta").load(str(table)).count()


@pytest.mark.slow  # a JVM of its own: runs under `make test-slow` and `make stress`
@pytest.mark.spark
def test_sigkill_during_a_delta_write_leaves_the_old_version(spark, tmp_path, monkeypatch, capsys):
    from tests.reliability.conftest import cli

    folder = _work(tmp_path, engine="spark", target="out/t", fmt="delta")
    table = folder / "out" / "t"
    (folder / "in.csv").write_text("id,name\n1,old\n2,old\n")
    monkeypatch.chdir(folder)
    monkeypatch.syspath_prepend(str(folder))
    assert cli(capsys, "run", "pipeline.yaml", "--no-state", "--quiet")[0] == 0
    (folder / "in.csv").write_text(CSV)
    versions, files = delta_versions(table), set(listing(table))

    code, out, err = _run_killed(tmp_path, folder, "kill_during:delta_write:1")

    assert "commit pending" in err, err  # killed after a data file appeared, before the commit
    assert delta_versions(table) == versions
    assert {f for f in listing(table) if f.endswith(".parquet")} - files  # the orphaned file
    assert _delta_rows(spark, table) == 2  # readable, and still the old version
    state = _state(spark, tmp_path / "warehouse")
    assert state.runs.read() == [] and state.audit.read() == []


@pytest.mark.slow  # a JVM of its own: runs under `make test-slow` and `make stress`
@pytest.mark.spark
def test_sigkill_during_the_audit_write_presents_no_run_as_complete(
    spark, tmp_path, monkeypatch, capsys
):
    from tests.reliability.conftest import cli

    folder = _work(tmp_path, engine="spark", target="out/t", fmt="delta")
    table = folder / "out" / "t"

    code, out, err = _run_killed(tmp_path, folder, "kill_during:audit_write:1")

    assert "odibi fault: ODIBI_FAULT=kill_during:audit_write:1 fired" in err
    assert _delta_rows(spark, table) == 200  # the store finished before the audit write
    state = _state(spark, tmp_path / "warehouse")
    assert {r["step_name"] for r in state.audit.read()} == {"read", "slow", "save"}
    assert state.runs.read() == []  # the run row, the one that says "complete", never landed
    monkeypatch.setenv("ODIBI_WAREHOUSE", str(tmp_path / "warehouse"))
    code, out, err = cli(capsys, "lineage")
    assert code == 1 and "no runs recorded" in err


def _run_killed(tmp_path: Path, folder: Path, fault: str) -> tuple[int, str, str]:
    process = odibi_process(
        ["run", "pipeline.yaml", "--quiet"], folder, env=_no_state_env(tmp_path, fault)
    )
    out, err = process.communicate(timeout=600)
    assert process.returncode == -signal.SIGKILL, err
    return process.returncode, out, err
