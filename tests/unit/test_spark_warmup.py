"""Which runs start their Spark session in the background as they begin, decided without
starting (or importing) Spark: those that will need it whatever their data's size."""

from __future__ import annotations

import threading
from dataclasses import replace

from odibi_core.core.config import PipelineConfig
from odibi_core.core.step import NodeState, Step
from odibi_core.engine import session
from odibi_core.events.bus import EventBus
from odibi_core.execution.messages import RunMessages
from odibi_core.execution.plan import build_plan
from odibi_core.execution.run import RunServices, needs_spark_session
from odibi_core.execution.store import MemoryStore
from odibi_core.orchestrator import Orchestrator
from odibi_core.state.cache import CacheManager
from odibi_core.state.checkpoints import CheckpointManager
from odibi_core.state.location import default_local_location

READ = Step(layer="ingest", name="read", value="in.csv", outputs={"data": "raw"})
KEEP = Step(
    layer="transform",
    name="keep",
    value="SELECT * FROM r",
    inputs={"r": "raw"},
    outputs={"data": "kept"},
)
SAVE_CSV = Step(layer="store", name="save_csv", value="out.csv", inputs={"data": "kept"})
SAVE_DELTA = Step(
    layer="store",
    name="save_delta",
    value="out",
    params={"format": "delta"},
    inputs={"data": "kept"},
)


def _decide(*steps: Step, engine: str = "pandas", **services) -> bool:
    plan = build_plan(PipelineConfig(name="p", steps=list(steps), engine=engine))
    base = RunServices(bus=EventBus(), store=MemoryStore(), messages=RunMessages(plan))
    return needs_spark_session(plan, replace(base, **services))


def test_a_mixed_plan_starts_its_session_as_the_run_begins_a_pandas_one_never():
    assert _decide(READ, KEEP, SAVE_DELTA) is True  # pandas steps, then a Delta store
    assert _decide(READ, KEEP, SAVE_CSV, engine="spark") is True
    assert _decide(READ, KEEP, SAVE_CSV) is False
    assert _decide(READ, KEEP, SAVE_CSV, engine="auto") is False  # decided per step, later


def test_state_tables_need_the_session_only_when_the_run_records_there():
    state = default_local_location()
    assert _decide(READ, KEEP, SAVE_CSV, state=state) is True  # the audit rows
    assert _decide(READ, KEEP, SAVE_CSV, state=state, enable_tracker=False) is False


def test_the_cache_and_checkpoints_need_the_session_they_are_kept_with():
    def unused_provider():
        raise AssertionError("deciding must not obtain a session")

    where = {"pipeline": "p", "spark_provider": unused_provider}
    cache = CacheManager(default_local_location(), **where)
    checkpoints = CheckpointManager(default_local_location(), run_id="r1", **where)
    assert _decide(READ, KEEP, SAVE_CSV, cache=cache) is True
    assert _decide(READ, KEEP, SAVE_CSV, checkpoints=checkpoints) is True


def test_a_failed_background_start_fails_the_first_spark_step_with_its_cause(tmp_path, monkeypatch):
    # A JVM that fails to start cannot be had here without starting one: obtaining the
    # session is replaced by a failure, recorded with the thread it ran on.
    threads = []

    def failing(source, given=None, *, warehouse=None):
        threads.append(threading.current_thread().name)
        raise RuntimeError("the JVM did not start: JAVA_HOME is not set")

    monkeypatch.setattr(session, "obtain_session", failing)
    for variable in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED", "DATABRICKS_RUNTIME_VERSION"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(session, "_databricks_connect_installed", lambda: False)
    monkeypatch.setattr(session, "_classic_session_running", lambda: False)
    rows = Step(
        layer="transform",
        name="rows",
        type="function",
        value="tests.funcs:sleep_then_rows",
        params={"seconds": 0.0},
        outputs={"data": "kept"},
    )
    save = replace(SAVE_DELTA, value=str(tmp_path / "out"))
    result = Orchestrator(steps=[rows, save], engine_type="pandas", max_retries=0).execute()
    assert result.node_states["rows"] is NodeState.SUCCESS
    assert result.node_states["save_delta"] is NodeState.FAILED
    assert "the JVM did not start: JAVA_HOME is not set" in result.error
    assert threads == ["odibi-spark-start"]  # started as the run began, once
