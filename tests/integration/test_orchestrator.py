"""Orchestrator behaviour a user relies on: event order, retries, parallelism, failure isolation."""

import json
import subprocess
import sys
import threading
import time
import uuid

import pytest

from odibi_core import NodeState, Step
from odibi_core.core.errors import PipelineConfigError, PipelineExecutionError, SelectionError
from odibi_core.events.bus import EventBus
from odibi_core.orchestrator import Orchestrator, new_run_id
from tests import funcs
from tests.integration.seed_steps import five_steps, three_ingests_and_join

LIFECYCLE = (
    "pipeline_start",
    "node_start",
    "node_complete",
    "node_error",
    "pipeline_complete",
    "pipeline_error",
)


class EventRecorder:
    def __init__(self, bus):
        self.events, self._lock = [], threading.Lock()
        for event in LIFECYCLE:
            bus.register_hook(event, lambda data, event=event: self._record(event, data))

    def _record(self, event, data):
        with self._lock:
            self.events.append((event, data))

    def names(self):
        return [(e, d.get("step_name")) for e, d in self.events]

    def of(self, event):
        return [d for e, d in self.events if e == event]


def fn_step(name, func, *, inputs=None, **params):
    return Step(
        layer="transform",
        name=name,
        type="function",
        value=f"tests.funcs:{func}",
        inputs=inputs or {},
        outputs={"data": name},
        params=params,
    )


def test_event_order_is_exact_and_respects_dependencies(seed_data):
    bus = EventBus()
    recorder = EventRecorder(bus)
    steps = three_ingests_and_join() + [
        Step(layer="store", name="save", value="out/joined.parquet", inputs={"data": "joined"}),
    ]
    result = Orchestrator(steps=steps, engine_type="pandas", event_bus=bus).execute()
    assert result.success
    events = recorder.names()
    assert events[0] == ("pipeline_start", None)
    assert events[-1] == ("pipeline_complete", None)
    position = {}
    for i, (event, step) in enumerate(events):
        position.setdefault((event, step), i)
    upstream = {
        "join_all": ["read_customers", "read_orders", "read_products"],
        "save": ["join_all"],
    }
    for step in ("read_customers", "read_orders", "read_products", "join_all", "save"):
        assert position[("node_start", step)] < position[("node_complete", step)]
        for parent in upstream.get(step, []):
            assert position[("node_complete", parent)] < position[("node_start", step)]
    start = recorder.of("pipeline_start")[0]
    assert start["total_steps"] == 5 and start["pipeline_name"] == "pipeline"
    for _, data in recorder.events:
        assert {"pipeline_name", "run_id", "execution_id", "timestamp"} <= set(data)
        assert data["execution_id"] == f"{data['run_id']}.1"
    complete = recorder.of("pipeline_complete")[0]
    assert complete["nodes_executed"] == 5 and complete["success_count"] == 5
    assert [s["step_name"] for s in complete["steps"]] == [
        "read_customers",
        "read_orders",
        "read_products",
        "join_all",
        "save",
    ]
    assert {s["status"] for s in complete["steps"]} == {"SUCCESS"}
    node = recorder.of("node_complete")[-1]
    assert node["step_name"] == "save" and node["row_count"] == 4 and node["status"] == "SUCCESS"


def test_retry_twice_then_success():
    key = uuid.uuid4().hex
    bus = EventBus()
    recorder = EventRecorder(bus)
    steps = [fn_step("flaky", "flaky", key=key, failures=2)]
    result = Orchestrator(steps=steps, event_bus=bus, max_retries=2, retry_delay=0.01).execute()
    assert result.success and result.node_states["flaky"] is NodeState.SUCCESS
    assert result.attempts["flaky"] == 3 and funcs.calls(key) == 3
    errors = recorder.of("node_error")
    assert [e["retry_count"] for e in errors] == [1, 2]
    assert all(e["will_retry"] for e in errors) and errors[0]["error_type"] == "ConnectionError"
    assert [e for e, _ in recorder.events].count("node_start") == 3
    record = result.tracker.step_executions[0]
    assert record.attempts == 3 and len(record.attempt_errors) == 2 and record.status == "SUCCESS"


def test_sql_syntax_error_is_not_retried(seed_data):
    bus = EventBus()
    recorder = EventRecorder(bus)
    steps = [
        Step(layer="ingest", name="read", value="data/customers.csv", outputs={"data": "raw"}),
        Step(
            layer="transform",
            name="broken",
            type="sql",
            value="SELEC * FROM bronze",
            inputs={"bronze": "raw"},
            outputs={"data": "x"},
        ),
    ]
    result = Orchestrator(steps=steps, event_bus=bus, max_retries=2, retry_delay=0.01).execute()
    assert not result.success and result.failed_nodes == ["broken"]
    assert result.attempts["broken"] == 1
    (error,) = recorder.of("node_error")
    assert error["retry_count"] == 1 and error["will_retry"] is False
    assert "broken" in result.error
    assert recorder.events[-1][0] == "pipeline_error"
    assert recorder.of("pipeline_error")[0]["failed_step"] == "broken"


def test_parallelism_is_real():
    steps = [fn_step(f"sleep_{i}", "sleep_then_rows", seconds=1.0) for i in range(3)]
    warm = [fn_step(f"sleep_{i}", "sleep_then_rows", seconds=0.0) for i in range(3)]
    Orchestrator(steps=warm, max_workers=3).execute()  # imports and first-use costs happen here
    started = time.perf_counter()
    assert Orchestrator(steps=steps, max_workers=3).execute().success
    parallel = time.perf_counter() - started
    started = time.perf_counter()
    assert Orchestrator(steps=steps, parallel=False).execute().success
    sequential = time.perf_counter() - started
    assert parallel < 1.6
    assert sequential >= 3.0


def test_failing_middle_step_skips_downstream_and_independent_branch_completes():
    steps = [
        fn_step("source", "sleep_then_rows", seconds=0.0),
        fn_step("middle", "explode", inputs={"data": "source"}),
        Step(
            layer="transform",
            name="after",
            type="sql",
            value="SELECT * FROM d",
            inputs={"d": "middle"},
            outputs={"data": "after"},
        ),
        fn_step("other", "sleep_then_rows", seconds=0.2),
        Step(
            layer="transform",
            name="other_next",
            type="sql",
            value="SELECT n + 1 AS n FROM d",
            inputs={"d": "other"},
            outputs={"data": "other_next"},
        ),
    ]
    result = Orchestrator(steps=steps).execute()
    assert result["success"] is False
    assert result.failed_nodes == ["middle"] and result.skipped_nodes == ["after"]
    assert result.node_states["other_next"] is NodeState.SUCCESS
    assert list(result.data_map["other_next"]["n"]) == [1, 2, 3]
    assert (
        "step 'middle' failed: tests/funcs.py, line 31, in explode: "
        "ValueError: the middle step broke on purpose"
    ) in result.error
    with pytest.raises(PipelineExecutionError, match="middle"):
        Orchestrator(steps=steps).execute(raise_on_error=True)


def test_result_fields_and_data_release():
    steps = [
        fn_step("a", "sleep_then_rows", seconds=0.0),
        Step(
            layer="transform",
            name="b",
            type="sql",
            value="SELECT n * 2 AS n FROM d",
            inputs={"d": "a"},
            outputs={"data": "b"},
        ),
    ]
    result = Orchestrator(steps=steps, pipeline_name="p").execute()
    assert result.keys()[:3] == ["success", "pipeline_name", "run_id"]
    assert result["pipeline_name"] == result.pipeline_name == "p"
    assert result.nodes_executed == 2 and result.success_count == 2
    assert result.cached_nodes == [] and result.error is None
    assert set(result.data_map) == {"b"}  # 'a' was released once its only reader finished
    assert list(result.data_map["b"]["n"]) == [0, 2, 4]
    assert result.duration_ms >= 0 and result.end_time >= result.start_time


def test_run_id_format():
    run_id = new_run_id()
    stamp, suffix = run_id.split("_")
    assert len(stamp) == 15 and stamp[8] == "T" and len(suffix) == 6
    result = Orchestrator(
        steps=[fn_step("a", "sleep_then_rows", seconds=0.0)], run_id="123456"
    ).execute()
    assert result.run_id == "123456" and result.execution_id == "123456.1"


def test_selection_missing_upstream_is_a_config_error(seed_data):
    with pytest.raises(SelectionError, match=r"'raw_customers' \(produced by read_customers\)"):
        Orchestrator(steps=five_steps(), select="filter_customers")
    orchestrator = Orchestrator(steps=five_steps(), select="+filter_customers")
    assert orchestrator.dag.topological_order() == ["read_customers", "filter_customers"]


def test_invalid_steps_are_rejected_before_running():
    with pytest.raises(PipelineConfigError, match="reads 'nope', which no step produces"):
        Orchestrator(steps=[Step(layer="store", name="s", value="x.csv", inputs={"data": "nope"})])


def test_many_parallel_steps_share_data_map_and_tracker_safely(seed_data):
    steps = [Step(layer="ingest", name="read", value="data/customers.csv", outputs={"data": "raw"})]
    for i in range(24):
        steps.append(
            Step(
                layer="transform",
                name=f"t{i}",
                type="sql",
                value=f"SELECT customer_id, customer_id * {i} AS v FROM data WHERE customer_id <= {i % 6 + 1}",
                inputs={"data": "raw"},
                outputs={"data": f"k{i}"},
            )
        )
    result = Orchestrator(steps=steps, max_workers=8).execute()
    assert result.success and result.success_count == 25
    records = {r.step_name: r for r in result.tracker.step_executions}
    assert len(records) == 25
    for i in range(24):
        frame = result.data_map[f"k{i}"]
        assert len(frame) == i % 6 + 1 and list(frame["v"]) == [c * i for c in range(1, i % 6 + 2)]
        assert records[f"t{i}"].after_snapshot.row_count == i % 6 + 1
        assert records[f"t{i}"].before_snapshot.row_count == 6


def test_pandas_only_run_starts_no_jvm(seed_data):
    code = (
        "import sys\n"
        "from odibi_core.orchestrator import Orchestrator\n"
        "from tests.integration.seed_steps import five_steps\n"
        "r = Orchestrator(steps=five_steps(), engine_type='pandas').execute()\n"
        "assert r.success, r.error\n"
        "print(r.spark_started, 'pyspark' in sys.modules)\n"
    )
    import os

    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            [str(__import__("pathlib").Path(__file__).parents[2]), os.environ.get("PYTHONPATH", "")]
        ),
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False False"


def test_python_steps_take_parameters_from_params(seed_data):
    steps = [
        Step(layer="ingest", name="read", value="data/customers.csv", outputs={"data": "raw"}),
        Step(
            layer="transform",
            name="pick",
            value="SELECT name FROM raw WHERE country = '${params.country}'",
            inputs={"raw": "raw"},
            outputs={"data": "picked"},
        ),
    ]
    result = Orchestrator(steps=steps, params={"country": "FR"}).execute()
    assert list(result.data_map["picked"]["name"]) == ["Bob", "Frank"]
    with pytest.raises(PipelineConfigError, match="parameter 'country' is used but not declared"):
        Orchestrator(steps=steps)


def test_redaction_masks_values_quoted_in_error_messages(seed_data):
    from odibi_core.core.config import TrackerSettings

    bus = EventBus()
    recorder = EventRecorder(bus)
    steps = [
        Step(layer="ingest", name="read", value="data/customers.csv", outputs={"data": "raw"}),
        fn_step("check", "reject_first_email", inputs={"data": "raw"}),
        Step(layer="ingest", name="missing", value="data/nope.csv", outputs={"data": "nope"}),
    ]
    result = Orchestrator(
        steps=steps, event_bus=bus, tracker_settings=TrackerSettings(redact_columns=("email",))
    ).execute()
    assert sorted(result.failed_nodes) == ["check", "missing"]
    texts = [
        result.error,
        *result.errors.values(),
        *(e["error_message"] for e in recorder.of("node_error")),
    ]
    lineage = json.dumps(result.tracker.to_lineage())
    assert "alice@example.com" not in lineage and not any("alice@example.com" in t for t in texts)
    assert result.errors["check"].endswith(
        "tests/funcs.py, line 47, in reject_first_email: ValueError: cannot use value '***' as an id"
    )
    assert (
        str(seed_data / "nope.csv") in result.errors["missing"]
    )  # the pipeline's own path stays readable
    unredacted = Orchestrator(steps=steps[:2]).execute()
    assert "alice@example.com" in unredacted.errors["check"]
