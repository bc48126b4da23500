"""Where a run's Spark session comes from, decided without starting (or importing) Spark."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from odibi_core.core.config import PipelineConfig
from odibi_core.core.step import Step
from odibi_core.engine import session
from odibi_core.engine.session import SessionHandle, session_source
from odibi_core.execution.plan import build_plan


@pytest.fixture
def clean_environment(monkeypatch):
    for variable in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED", "DATABRICKS_RUNTIME_VERSION"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(session, "_databricks_connect_installed", lambda: False)
    monkeypatch.setattr(session, "_classic_session_running", lambda: False)
    # As in a fresh process: the suite's own session (built earlier in it) is not this one's.
    monkeypatch.setattr(session, "_session", None)


def test_the_rules_in_their_order(clean_environment, monkeypatch):
    given = object()
    assert session_source(given) == "given"
    assert session_source() == "local"

    monkeypatch.setattr(session, "_classic_session_running", lambda: True)
    assert session_source() == "active"
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "16.4")
    assert session_source() == "databricks"
    monkeypatch.setenv("SPARK_REMOTE", "sc://127.0.0.1:15002")
    assert session_source() == "connect"
    assert session_source(given) == "given"  # a session passed in always wins


def test_databricks_connect_is_used_off_the_cluster_only(clean_environment, monkeypatch):
    monkeypatch.setattr(session, "_databricks_connect_installed", lambda: True)
    assert session_source() == "databricks-connect"
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "16.4")
    assert session_source() == "databricks"


def test_deciding_the_rule_imports_no_pyspark():
    probe = (
        "import sys\n"
        "from odibi_core.engine.session import SessionHandle\n"
        "print(SessionHandle().source, 'pyspark' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["local", "False"]


def test_a_session_given_is_handed_out_as_it_is_from_any_thread(clean_environment):
    given = object()
    handle = SessionHandle(given)
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(handle.get())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == [given] * 8


def test_a_failed_background_start_is_raised_where_the_session_is_needed(
    clean_environment, monkeypatch
):
    calls = []

    def failing(source, given=None, *, warehouse=None):
        calls.append((source, threading.current_thread().name))
        raise RuntimeError("the JVM did not start")

    monkeypatch.setattr(session, "obtain_session", failing)
    handle = SessionHandle()
    handle.start()
    with pytest.raises(RuntimeError, match="the JVM did not start"):
        handle.get()
    with pytest.raises(RuntimeError, match="the JVM did not start"):
        handle.get()
    assert calls == [("local", "odibi-spark-start")]  # built once, in the background
    assert not handle.obtained


def _plan(*steps, engine="pandas"):
    return build_plan(PipelineConfig(name="p", steps=list(steps), engine=engine))


def test_the_plan_names_the_steps_that_need_spark_whatever_their_size(tmp_path):
    read = Step(layer="ingest", name="read", value="in.csv", outputs={"data": "raw"})
    keep = Step(
        layer="transform",
        name="keep",
        value="SELECT * FROM r",
        inputs={"r": "raw"},
        outputs={"data": "kept"},
    )
    save_csv = Step(layer="store", name="save_csv", value="out.csv", inputs={"data": "kept"})
    assert _plan(read, keep, save_csv).spark_steps == ()
    assert _plan(read, keep, save_csv, engine="auto").spark_steps == ()

    save_delta = Step(
        layer="store",
        name="save_delta",
        value="out",
        params={"format": "delta"},
        inputs={"data": "kept"},
    )
    big = Step(
        layer="transform",
        name="big",
        value="SELECT * FROM r",
        inputs={"r": "raw"},
        outputs={"data": "b"},
        engine="spark",
    )
    assert _plan(read, keep, save_delta, big).spark_steps == ("save_delta", "big")
    assert _plan(read, keep, engine="spark").spark_steps == ("read", "keep")


def test_only_the_session_built_here_counts_as_built_here(monkeypatch):
    ours, theirs = object(), object()
    monkeypatch.setattr(session, "_session", ours)
    assert session.built_here(ours)
    assert not session.built_here(theirs)  # a cluster's: MERGE commits are not tagged by conf
