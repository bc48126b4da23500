"""The run's counts, defined once: the result, the tracker, the audit and the hooks use it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from odibi_core.core.step import NodeState


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
    def of(
        cls, states: Mapping[str, NodeState | str | None], order: Sequence[str] = ()
    ) -> RunSummary:
        """Counts of ``states`` (step name -> state); names follow ``order`` (completion)."""
        states = {name: _state(value) for name, value in states.items()}
        listed = set(order)
        order = [*order, *(name for name in states if name not in listed)]

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

    @classmethod
    def of_steps(cls, steps: Sequence[Mapping[str, object]]) -> RunSummary:
        """Counts of step rows as events and lineage carry them (``step_name``, ``status``)."""
        return cls.of({str(row.get("step_name")): row.get("status") for row in steps})


def _state(value: NodeState | str | None) -> NodeState | None:
    if value is None or isinstance(value, NodeState):
        return value
    try:
        return NodeState(str(value))
    except ValueError:
        return None
