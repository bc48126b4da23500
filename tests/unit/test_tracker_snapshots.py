"""Snapshots are values: the tracker settles a deferred Spark count by replacing the
snapshot everywhere it is held, and records hold a ``NodeState``."""

from __future__ import annotations

import dataclasses

import pytest

from odibi_core.core.snapshot import Snapshot
from odibi_core.core.step import NodeState, Step
from odibi_core.tracking.tracker import Tracker


class _Count:
    """A fired DeferredCount, as the Spark engine's Observation gives one."""

    name = "obs"
    reason = None

    def __init__(self, rows: int | None):
        self.rows = rows

    def fired(self) -> bool:
        return True

    def get(self, timeout: float) -> int | None:
        return self.rows


class _SparkLike:
    name = "spark"

    def __init__(self, rows: int | None):
        self.rows = rows

    def observations_under_limits(self, frame):
        return set()

    def schema(self, frame):
        return ["id: int64"]

    def observe_count(self, frame, name):
        return frame, _Count(self.rows)


def _step(name, *, inputs=None, outputs=None):
    return Step(
        layer="transform",
        name=name,
        value="SELECT 1",
        inputs=inputs or {},
        outputs=outputs or {},
    )


def test_a_snapshot_cannot_be_changed():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Snapshot().row_count = 3  # type: ignore[misc]


def test_settling_replaces_the_deferred_snapshot_in_every_record():
    tracker = Tracker("p")
    produce = _step("produce", outputs={"data": "k"})
    consume = _step("consume", inputs={"data": "k"})
    tracker.start_step(produce)
    _, deferred = tracker.snapshot_spark_output(
        "frame", _SparkLike(42), name="produce", file_scan=False
    )
    tracker.finish_step("produce", NodeState.SUCCESS, after=deferred, outputs={"k": deferred})
    tracker.start_step(consume)

    assert (deferred.row_count, deferred.count_source) == (None, "deferred")
    tracker.settle()

    assert (deferred.row_count, deferred.count_source) == (None, "deferred")  # unchanged
    produced, consumed = tracker.get("produce"), tracker.get("consume")
    assert (produced.after_snapshot.row_count, produced.after_snapshot.count_source) == (
        42,
        "observed",
    )
    assert consumed.before_snapshot is produced.after_snapshot
    assert tracker.known_rows(["k"]) == {"k": 42}


def test_records_hold_a_node_state_and_the_lineage_the_plain_word():
    tracker = Tracker("p")
    tracker.start_step(_step("a"))
    assert tracker.get("a").status is NodeState.RUNNING
    tracker.finish_step("a", NodeState.SUCCESS, after=Snapshot())
    tracker.skip_step(_step("b"), "upstream failed")

    assert [r.status for r in tracker.step_executions] == [NodeState.SUCCESS, NodeState.SKIPPED]
    statuses = [s["status"] for s in tracker.to_lineage()["steps"]]
    assert statuses == ["SUCCESS", "SKIPPED"]
    assert all(type(status) is str for status in statuses)
