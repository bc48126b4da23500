"""The result of ``Orchestrator.execute()``: dict-style and attribute access alike."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from odibi_core.step import NodeState


@dataclass(frozen=True)
class RunSummary:
    """The run's counts, defined once: the result, the tracker, the audit and hooks use it.

    A CACHED step succeeded without executing: it counts as a success, not as executed.
    """

    total_steps: int
    nodes_executed: int
    success_count: int
    failed: tuple[str, ...]
    skipped: tuple[str, ...]
    cached: tuple[str, ...]

    @classmethod
    def of(cls, states: Mapping[str, NodeState], order: Sequence[str] = ()) -> RunSummary:
        """Counts of ``states``; the name lists follow ``order`` (completion order)."""
        order = [*order, *(name for name in states if name not in order)]

        def named(state: NodeState) -> tuple[str, ...]:
            return tuple(name for name in order if states.get(name) is state)

        return cls(
            total_steps=len(states),
            nodes_executed=sum(
                1 for s in states.values() if s in (NodeState.SUCCESS, NodeState.FAILED)
            ),
            success_count=sum(
                1 for s in states.values() if s in (NodeState.SUCCESS, NodeState.CACHED)
            ),
            failed=named(NodeState.FAILED),
            skipped=named(NodeState.SKIPPED),
            cached=named(NodeState.CACHED),
        )

    def counts(self) -> dict[str, int]:
        """The figures the tracker and the audit's runs table record."""
        return {
            "total_steps": self.total_steps,
            "nodes_executed": self.nodes_executed,
            "success_count": self.success_count,
            "failed_count": len(self.failed),
            "skipped_count": len(self.skipped),
            "cached_count": len(self.cached),
        }


@dataclass
class RunResult:
    success: bool
    pipeline_name: str
    run_id: str
    execution_id: str
    start_time: datetime
    end_time: datetime
    duration_ms: int
    nodes_executed: int
    success_count: int
    failed_nodes: list[str] = field(default_factory=list)
    skipped_nodes: list[str] = field(default_factory=list)
    cached_nodes: list[str] = field(default_factory=list)
    node_states: dict[str, NodeState] = field(default_factory=dict)
    data_map: dict[str, Any] = field(default_factory=dict)
    tracker: Any = None
    error: str | None = None
    errors: dict[str, str] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    spark_started: bool = False
    # Set when the run could not be recorded in the state tables (its targets were written).
    state_error: str | None = None

    def __getitem__(self, key: str) -> Any:
        if key not in self.keys():
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default) if key in self.keys() else default

    def keys(self) -> list[str]:
        return [f.name for f in fields(self)]

    def summary(self) -> dict[str, Any]:
        """JSON-friendly figures of the run (no frames, no tracker)."""
        data = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("data_map", "tracker")
        }
        data["node_states"] = {k: v.value for k, v in self.node_states.items()}
        data["start_time"], data["end_time"] = (
            self.start_time.isoformat(),
            self.end_time.isoformat(),
        )
        return data
