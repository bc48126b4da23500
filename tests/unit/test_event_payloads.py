"""The payload TypedDicts say exactly what a real run's events carry."""

from __future__ import annotations

from typing import get_type_hints

import pandas as pd

from odibi_core.core.step import Step
from odibi_core.events.bus import LIFECYCLE_EVENTS, EventBus
from odibi_core.events.payloads import PAYLOADS, FinalStep, PlannedStep
from odibi_core.orchestrator import Orchestrator


def _run(tmp_path, *, fail: bool) -> list[tuple[str, dict]]:
    source = tmp_path / "people.csv"
    pd.DataFrame({"id": [1, 2, 3]}).to_csv(source, index=False)
    bus = EventBus(strict=True)
    events: list[tuple[str, dict]] = []
    for name in LIFECYCLE_EVENTS:
        bus.register_hook(name, lambda data, name=name: events.append((name, data)))
    query = "SELECT missing_column FROM raw" if fail else "SELECT id FROM raw"
    steps = [
        Step(layer="ingest", name="read", value=str(source), outputs={"data": "raw"}),
        Step(
            layer="transform",
            name="pick",
            value=query,
            inputs={"raw": "raw"},
            outputs={"data": "ids"},
        ),
        Step(
            layer="store", name="save", value=str(tmp_path / "out.parquet"), inputs={"data": "ids"}
        ),
    ]
    Orchestrator(steps=steps, engine_type="pandas", event_bus=bus).execute()
    return events


def _assert_carries(payload: dict, typed: type) -> None:
    keys = set(payload)
    assert typed.__required_keys__ <= keys, typed.__required_keys__ - keys
    assert keys <= typed.__required_keys__ | typed.__optional_keys__, keys - set(
        get_type_hints(typed)
    )


def test_every_event_of_a_successful_run_has_the_keys_its_payload_type_names(tmp_path):
    events = _run(tmp_path, fail=False)

    assert {name for name, _ in events} == {
        "pipeline_start",
        "node_start",
        "node_complete",
        "pipeline_complete",
    }
    for name, payload in events:
        _assert_carries(payload, PAYLOADS[name])
    start = next(data for name, data in events if name == "pipeline_start")
    for step in start["steps"]:
        _assert_carries(step, PlannedStep)


def test_every_event_of_a_failed_run_has_the_keys_its_payload_type_names(tmp_path):
    events = _run(tmp_path, fail=True)

    assert {"node_error", "pipeline_error"} <= {name for name, _ in events}
    for name, payload in events:
        _assert_carries(payload, PAYLOADS[name])
    error = next(data for name, data in events if name == "pipeline_error")
    for step in error["steps"]:
        _assert_carries(step, FinalStep)


def test_each_lifecycle_event_has_a_payload_type():
    assert set(PAYLOADS) == set(LIFECYCLE_EVENTS)
