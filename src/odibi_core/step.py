"""The Step: one unit of a pipeline, named by what it reads and what it writes.

Pure: no pandas or pyspark import, so graph logic stays fast to load and test.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

BUILTIN_LAYERS = ("ingest", "transform", "store", "publish")
TRANSFORM_TYPES = ("sql", "function")
ENGINES = ("pandas", "spark", "auto")

# Custom kinds registered with ``odibi_core.nodes.register_node`` are added here so that
# config validation accepts them without importing the node registry.
_known_layers: set[str] = set(BUILTIN_LAYERS)


def register_layer(name: str) -> None:
    """Declare a custom layer name as valid in pipeline definitions."""
    _known_layers.add(name)


def known_layers() -> frozenset[str]:
    return frozenset(_known_layers)


class NodeState(str, enum.Enum):
    """Lifecycle of a step within one execution (see the seed's "Node Lifecycle")."""

    PENDING = "PENDING"
    READY = "READY"
    RUNNING = "RUNNING"
    CACHED = "CACHED"
    EXECUTING = "EXECUTING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"

    @property
    def is_final(self) -> bool:
        return self in (NodeState.SUCCESS, NodeState.FAILED, NodeState.SKIPPED, NodeState.CACHED)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Step:
    """A pipeline step. ``inputs``/``outputs`` map logical names to data keys.

    ``type`` is ``sql`` or ``function`` for transforms; other layers use ``config_op``.
    A transform without a type is ``function`` when ``value`` looks like ``module:function``
    and ``sql`` otherwise.
    """

    layer: str
    name: str
    type: str | None = None
    engine: str | None = None
    value: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    retries: int | None = None
    cache: bool | None = None
    task: str | None = None

    @property
    def kind(self) -> str:
        """The resolved step type: ``sql``, ``function`` or ``config_op``."""
        if self.type:
            return self.type
        if self.layer != "transform":
            return "config_op"
        return "function" if looks_like_function_ref(self.value) else "sql"

    @property
    def input_keys(self) -> list[str]:
        return list(self.inputs.values())

    @property
    def output_keys(self) -> list[str]:
        return list(self.outputs.values())

    def describe(self) -> str:
        return f"{self.layer} step '{self.name}'"


def looks_like_function_ref(value: Any) -> bool:
    """True for ``package.module:function`` references."""
    if not isinstance(value, str) or value.count(":") != 1:
        return False
    module, func = value.split(":")
    parts = module.split(".")
    return bool(func.isidentifier() and parts and all(p.isidentifier() for p in parts))
