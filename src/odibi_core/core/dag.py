"""The dependency graph that follows from steps' inputs and outputs.

Pure: no pandas or pyspark import. ``DAGBuilder(steps).build()`` validates and indexes
once; everything after that is lookups.
"""

from __future__ import annotations

import graphlib
import heapq
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from odibi_core.core.errors import (
    CircularDependencyError,
    PipelineConfigError,
    SelectionError,
    did_you_mean,
)
from odibi_core.core.step import Step


@dataclass
class DAGNode:
    step: Step
    dependencies: set[str] = field(default_factory=set)
    dependents: set[str] = field(default_factory=set)
    level: int = 0

    @property
    def name(self) -> str:
        return self.step.name


def _producers(steps: Iterable[Step]) -> dict[str, str]:
    producers: dict[str, str] = {}
    for step in steps:
        for key in step.outputs.values():
            producers.setdefault(key, step.name)
    return producers


def _edges(steps: Sequence[Step]) -> dict[str, set[str]]:
    """step name -> names of the steps it depends on (only producers among ``steps``)."""
    producers = _producers(steps)
    return {s.name: {producers[k] for k in s.inputs.values() if k in producers} for s in steps}


def find_cycle(steps: Sequence[Step]) -> list[str] | None:
    """Return the steps on one cycle (first repeated at the end), or None."""
    sorter = graphlib.TopologicalSorter(_edges(steps))
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        cycle = list(exc.args[1])
        cycle.reverse()  # graphlib lists it against the data flow
        return cycle
    return None


class DAG:
    """Steps indexed by name, with dependency edges and levels (dependency depth)."""

    def __init__(self, nodes: dict[str, DAGNode], order: list[str]):
        self.nodes = nodes
        self._order = order
        self.producers = _producers(n.step for n in nodes.values())
        self._dependencies = {name: node.dependencies for name, node in nodes.items()}

    def __len__(self) -> int:
        return len(self.nodes)

    def __contains__(self, name: str) -> bool:
        return name in self.nodes

    @property
    def steps(self) -> list[Step]:
        return [self.nodes[n].step for n in self._order]

    def step(self, name: str) -> Step:
        return self._node(name).step

    def topological_order(self) -> list[str]:
        return list(self._order)

    def levels(self) -> list[list[str]]:
        depth = max((n.level for n in self.nodes.values()), default=-1)
        grouped: list[list[str]] = [[] for _ in range(depth + 1)]
        for name in self._order:
            grouped[self.nodes[name].level].append(name)
        return grouped

    def dependencies(self, name: str) -> set[str]:
        return set(self._node(name).dependencies)

    def dependents(self, name: str) -> set[str]:
        return set(self._node(name).dependents)

    def ready(self, finished: Iterable[str], started: Iterable[str] = ()) -> list[str]:
        """Steps not yet finished or started whose dependencies have all finished."""
        return ready_steps(self._order, self._dependencies, set(finished), set(started))

    def upstream_of(self, name: str) -> set[str]:
        return self._walk(name, "dependencies")

    def downstream_of(self, name: str) -> set[str]:
        return self._walk(name, "dependents")

    def edges(self) -> list[tuple[str, str, list[str]]]:
        """(producer, consumer, data keys) for every edge, in topological order."""
        result = []
        for consumer in self._order:
            step = self.nodes[consumer].step
            by_producer: dict[str, list[str]] = {}
            for key in step.inputs.values():
                producer = self.producers.get(key)
                if producer is not None:
                    by_producer.setdefault(producer, []).append(key)
            for producer, keys in by_producer.items():
                result.append((producer, consumer, keys))
        return result

    def external_inputs(self, names: Iterable[str]) -> dict[str, set[str]]:
        """For a subset of steps: data key -> steps outside the subset that produce it."""
        subset = set(names)
        missing: dict[str, set[str]] = {}
        for name in subset:
            for key in self.nodes[name].step.inputs.values():
                producer = self.producers.get(key)
                if producer is not None and producer not in subset:
                    missing.setdefault(key, set()).add(producer)
        return missing

    def select(self, expression: str) -> list[str]:
        """Select steps with kedro/dbt-like syntax, in topological order.

        Tokens separated by spaces or commas are united: ``name``, ``+name`` (with its
        ancestors), ``name+`` (with its descendants), ``+name+``, ``layer:transform``.
        """
        tokens = [t for t in re.split(r"[\s,]+", expression.strip()) if t]
        if not tokens:
            raise SelectionError("empty selection; name a step, e.g. --select +join_all")
        chosen: set[str] = set()
        for token in tokens:
            chosen |= self._select_token(token)
        return [n for n in self._order if n in chosen]

    def subgraph(self, names: Iterable[str]) -> DAG:
        keep = set(names)
        return DAGBuilder([s for s in self.steps if s.name in keep]).build()

    def to_mermaid(self) -> str:
        lines = ["flowchart LR"]
        ids = {name: f"n{i}" for i, name in enumerate(self._order)}
        for name in self._order:
            step = self.nodes[name].step
            lines.append(f'    {ids[name]}["{name}<br/><small>{step.layer}</small>"]')
        for producer, consumer, keys in self.edges():
            label = ", ".join(keys).replace('"', "'")
            lines.append(f'    {ids[producer]} -->|"{label}"| {ids[consumer]}')
        return "\n".join(lines) + "\n"

    def _select_token(self, token: str) -> set[str]:
        if token.startswith("layer:"):
            layer = token.split(":", 1)[1]
            found = {n for n, node in self.nodes.items() if node.step.layer == layer}
            if not found:
                layers = {node.step.layer for node in self.nodes.values()}
                raise SelectionError(
                    f"selection '{token}' matches no step{did_you_mean(layer, layers)}"
                )
            return found
        with_up, with_down = token.startswith("+"), token.endswith("+")
        name = token.strip("+")
        if name not in self.nodes:
            raise SelectionError(
                f"selection '{token}' names no step{did_you_mean(name, self.nodes)}"
            )
        found = {name}
        if with_up:
            found |= self.upstream_of(name)
        if with_down:
            found |= self.downstream_of(name)
        return found

    def _node(self, name: str) -> DAGNode:
        try:
            return self.nodes[name]
        except KeyError:
            raise PipelineConfigError(
                f"no step named '{name}'{did_you_mean(name, self.nodes)}"
            ) from None

    def _walk(self, name: str, direction: str) -> set[str]:
        seen: set[str] = set()
        stack = list(getattr(self._node(name), direction))
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(getattr(self.nodes[current], direction))
        return seen


class DAGBuilder:
    """Build a DAG from steps. Inputs produced by no step in the list are external."""

    def __init__(self, steps: Sequence[Step]):
        self.steps = list(steps)

    def build(self) -> DAG:
        names = [s.name for s in self.steps]
        duplicates = sorted(n for n, count in Counter(names).items() if count > 1)
        if duplicates:
            raise PipelineConfigError(f"duplicate step names: {', '.join(duplicates)}")
        edges = _edges(self.steps)
        cycle = find_cycle(self.steps)
        if cycle:
            raise CircularDependencyError(cycle)
        nodes = {s.name: DAGNode(step=s, dependencies=set(edges[s.name])) for s in self.steps}
        for name, deps in edges.items():
            for dep in deps:
                nodes[dep].dependents.add(name)
        return DAG(nodes, _declared_topological_order(names, nodes))


def ready_steps(
    candidates: Iterable[str],
    dependencies: Mapping[str, AbstractSet[str]],
    finished: AbstractSet[str],
    started: AbstractSet[str] = frozenset(),
) -> list[str]:
    """The ``candidates`` not finished or started whose dependencies have all finished."""
    return [
        name
        for name in candidates
        if name not in finished and name not in started and dependencies[name] <= finished
    ]


def _declared_topological_order(names: list[str], nodes: dict[str, DAGNode]) -> list[str]:
    """Topological order that, among the ready steps, keeps the order they were declared
    in; sets each node's level on the way."""
    position = {name: i for i, name in enumerate(names)}
    dependencies = {name: node.dependencies for name, node in nodes.items()}
    finished: set[str] = set()
    order: list[str] = []
    ready = [position[name] for name in ready_steps(names, dependencies, finished)]
    while ready:
        current = names[heapq.heappop(ready)]
        order.append(current)
        finished.add(current)
        node = nodes[current]
        node.level = max((nodes[d].level + 1 for d in node.dependencies), default=0)
        for name in ready_steps(node.dependents, dependencies, finished):
            heapq.heappush(ready, position[name])
    return order
