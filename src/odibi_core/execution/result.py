"""The result of ``Orchestrator.execute()``: dict-style and attribute access alike."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from odibi_core.core.step import NodeState


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
