from __future__ import annotations

import json
import logging
import sys
import uuid

import pytest
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import RunEvent, RunState
from openlineage.client.transport import Transport

from odibi_core.core.errors import OdibiError
from odibi_core.events.bus import EventBus
from odibi_core.events.openlineage import (
    LineageExportError,
    OpenLineageHook,
    OpenLineageNotInstalledError,
    pipeline_run_id,
    schema_fields,
    step_run_id,
)


class RecordingTransport(Transport):
    kind = "recording"

    def __init__(self):
        self.events = []

    def emit(self, event):
        self.events.append(event)


COMMON = {"pipeline_name": "customer_pipeline", "run_id": "run-7", "execution_id": "run-7.1"}


def at(second):
    return {**COMMON, "timestamp": f"2024-05-01T10:00:{second:02d}+00:00"}


def emit_successful_run(bus):
    bus.emit("pipeline_start", {**at(0), "start_time": "2024-05-01T10:00:00", "total_steps": 2})
    bus.emit(
        "node_start", {**at(1), "step_name": "read_customers", "layer": "ingest", "attempt": 1}
    )
    bus.emit(
        "node_complete",
        {
            **at(2),
            "step_name": "read_customers",
            "layer": "ingest",
            "duration_ms": 950.0,
            "row_count": 1000,
            "status": "SUCCESS",
            "engine": "pandas",
            "outputs": {"data": "raw_customers"},
            "schema": ["customer_id: int64", "email: string", "tags: struct<a: int64>"],
        },
    )
    bus.emit("node_start", {**at(3), "step_name": "add_flag", "layer": "transform", "attempt": 1})
    bus.emit(
        "node_complete",
        {
            **at(4),
            "step_name": "add_flag",
            "layer": "transform",
            "duration_ms": 10.0,
            "row_count": None,
            "count_source": "deferred",
            "status": "SUCCESS",
            "engine": "spark",
            "outputs": {"data": "flagged"},
            "schema": [],
        },
    )
    bus.emit(
        "pipeline_complete",
        {
            **at(5),
            "duration_ms": 5000.0,
            "nodes_executed": 2,
            "success_count": 2,
            "status": "SUCCESS",
            "steps": [],
        },
    )


@pytest.fixture
def recorded():
    transport = RecordingTransport()
    hook = OpenLineageHook(client=OpenLineageClient(transport=transport), namespace="odibi-test")
    bus = EventBus(strict=True)
    hook.register(bus)
    return bus, transport


def test_a_successful_run_becomes_a_parent_run_with_one_child_run_per_step(recorded):
    bus, transport = recorded
    emit_successful_run(bus)
    sent = transport.events

    assert all(type(e) is RunEvent for e in sent)
    assert [(e.eventType, e.job.name) for e in sent] == [
        (RunState.START, "customer_pipeline"),
        (RunState.START, "customer_pipeline.read_customers"),
        (RunState.COMPLETE, "customer_pipeline.read_customers"),
        (RunState.START, "customer_pipeline.add_flag"),
        (RunState.COMPLETE, "customer_pipeline.add_flag"),
        (RunState.COMPLETE, "customer_pipeline"),
    ]
    assert {e.job.namespace for e in sent} == {"odibi-test"}
    assert [e.eventTime for e in sent] == [f"2024-05-01T10:00:0{i}+00:00" for i in range(6)]

    parent_id = pipeline_run_id("run-7.1")
    assert sent[0].run.runId == sent[5].run.runId == parent_id
    assert "parent" not in sent[0].run.facets
    for event in sent[1:5]:
        parent = event.run.facets["parent"]
        assert parent.run.runId == parent_id
        assert (parent.job.namespace, parent.job.name) == ("odibi-test", "customer_pipeline")
    assert sent[1].run.runId == sent[2].run.runId == step_run_id("run-7.1", "read_customers")
    assert sent[3].run.runId == sent[4].run.runId == step_run_id("run-7.1", "add_flag")
    assert sent[1].job.facets["jobType"].jobType == "STEP"
    assert sent[0].job.facets["jobType"].jobType == "PIPELINE"


def test_completed_steps_report_their_outputs_with_schema_and_row_count(recorded):
    bus, transport = recorded
    emit_successful_run(bus)
    read_complete, flag_complete = transport.events[2], transport.events[4]

    assert transport.events[1].outputs == []
    [raw] = read_complete.outputs
    assert (raw.namespace, raw.name) == ("odibi-test", "raw_customers")
    assert [(f.name, f.type) for f in raw.facets["schema"].fields] == [
        ("customer_id", "int64"),
        ("email", "string"),
        ("tags", "struct<a: int64>"),
    ]
    assert raw.outputFacets["outputStatistics"].rowCount == 1000

    [flagged] = flag_complete.outputs
    assert flagged.name == "flagged"
    assert flagged.facets == {}
    assert flagged.outputFacets == {}


def test_retries_map_to_one_step_run_that_fails_once(recorded):
    bus, transport = recorded
    step = {"step_name": "load", "layer": "ingest"}
    bus.emit("pipeline_start", {**at(0), "start_time": "t", "total_steps": 1})
    bus.emit("node_start", {**at(1), **step, "attempt": 1})
    error = {"error_message": "connection reset", "error_type": "OSError"}
    bus.emit("node_error", {**at(2), **step, **error, "retry_count": 1, "will_retry": True})
    bus.emit("node_start", {**at(3), **step, "attempt": 2})
    bus.emit("node_error", {**at(4), **step, **error, "retry_count": 2, "will_retry": False})
    bus.emit(
        "pipeline_error",
        {
            **at(5),
            "error_message": "step 'load' failed: connection reset",
            "failed_step": "load",
            "failed_steps": ["load"],
            "duration_ms": 4000.0,
            "steps": [],
            "status": "FAILED",
        },
    )
    sent = transport.events

    assert [(e.eventType, e.job.name) for e in sent] == [
        (RunState.START, "customer_pipeline"),
        (RunState.START, "customer_pipeline.load"),
        (RunState.RUNNING, "customer_pipeline.load"),
        (RunState.FAIL, "customer_pipeline.load"),
        (RunState.FAIL, "customer_pipeline"),
    ]
    assert len({e.run.runId for e in sent[1:4]}) == 1
    step_error = sent[3].run.facets["errorMessage"]
    assert (step_error.message, step_error.programmingLanguage) == (
        "OSError: connection reset",
        "python",
    )
    assert sent[4].run.facets["errorMessage"].message == "step 'load' failed: connection reset"
    assert sent[3].outputs == []


def test_run_ids_are_deterministic_uuids_per_execution_and_step():
    assert step_run_id("run-7.1", "load") == step_run_id("run-7.1", "load")
    assert step_run_id("run-7.1", "load") != step_run_id("run-7.2", "load")
    assert step_run_id("run-7.1", "load") != step_run_id("run-7.1", "save")
    assert pipeline_run_id("run-7.1") != step_run_id("run-7.1", "")
    assert uuid.UUID(pipeline_run_id("run-7.1")).version == 5


def test_schema_fields_split_at_the_first_separator():
    assert schema_fields(["id: int64", "m: map<string, list<int32>>", "odd"]) == [
        ("id", "int64"),
        ("m", "map<string, list<int32>>"),
        ("odd", None),
    ]


def test_step_inputs_become_input_datasets_when_the_payload_names_them(recorded):
    bus, transport = recorded
    bus.emit(
        "node_start",
        {
            **at(1),
            "step_name": "join_all",
            "layer": "transform",
            "attempt": 1,
            "inputs": {"orders": "raw_orders", "customers": "raw_customers"},
        },
    )
    assert [d.name for d in transport.events[0].inputs] == ["raw_orders", "raw_customers"]


def test_file_transport_appends_one_json_event_per_line(tmp_path):
    path = tmp_path / "lineage" / "events.ndjson"
    bus = EventBus(strict=True)
    OpenLineageHook(transport=path).register(bus)
    emit_successful_run(bus)

    lines = path.read_text().splitlines()
    documents = [json.loads(line) for line in lines]
    assert len(documents) == 6
    assert [(d["eventType"], d["job"]["name"]) for d in documents][:3] == [
        ("START", "customer_pipeline"),
        ("START", "customer_pipeline.read_customers"),
        ("COMPLETE", "customer_pipeline.read_customers"),
    ]
    output = documents[2]["outputs"][0]
    assert output["outputFacets"]["outputStatistics"]["rowCount"] == 1000
    first_field = output["facets"]["schema"]["fields"][0]
    assert (first_field["name"], first_field["type"]) == ("customer_id", "int64")
    assert documents[2]["run"]["facets"]["parent"]["run"]["runId"] == pipeline_run_id("run-7.1")
    assert documents[0]["producer"].startswith("urn:odibi_core:")


def test_console_transport_logs_the_events(caplog):
    hook = OpenLineageHook(transport="console")
    with caplog.at_level(logging.INFO, logger="openlineage.client.transport.console"):
        hook.on_pipeline_start({**at(0), "start_time": "t", "total_steps": 0})

    [record] = [r for r in caplog.records if r.name == "openlineage.client.transport.console"]
    document = json.loads(record.getMessage())
    assert (document["eventType"], document["job"]["name"]) == ("START", "customer_pipeline")


def test_a_failing_transport_is_isolated_by_the_bus():
    class BrokenTransport(Transport):
        kind = "broken"

        def emit(self, event):
            raise ConnectionError("marquez is down")

    bus = EventBus()
    OpenLineageHook(transport=BrokenTransport()).register(bus)
    bus.emit("pipeline_start", {**at(0), "start_time": "t", "total_steps": 0})

    assert [(f.hook_name, f.error_message) for f in bus.hook_errors] == [
        ("OpenLineageHook.on_pipeline_start", "marquez is down")
    ]


def test_only_one_way_of_sending_may_be_given():
    with pytest.raises(
        LineageExportError, match="at most one of client, url or transport, got url"
    ):
        OpenLineageHook(url="http://localhost:5000", transport="console")


def test_an_unknown_transport_kind_is_refused():
    with pytest.raises(LineageExportError, match="got int 42"):
        OpenLineageHook(transport=42)


def test_events_without_an_execution_id_are_refused_with_the_reason():
    hook = OpenLineageHook(transport=RecordingTransport())
    with pytest.raises(LineageExportError, match="without 'execution_id' or 'run_id'"):
        hook.build_event("node_start", {"pipeline_name": "p", "step_name": "s"})


def test_missing_openlineage_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "openlineage.client", None)
    with pytest.raises(OpenLineageNotInstalledError) as raised:
        OpenLineageHook(transport="console")
    assert "pip install 'odibi_core[openlineage]'" in str(raised.value)
    assert isinstance(raised.value, OdibiError)
