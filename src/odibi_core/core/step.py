"""The Step: one unit of a pipeline, named by what it reads and what it writes.

Pure: no pandas or pyspark import, so graph logic stays fast to load and test.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from odibi_core.core.expectations import (
    Expectation,
    TableExpectation,
    expectation_problems,
    parse_expectations,
    parse_table_expectations,
)

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
    task: str | None = None  # the job task it runs in (odibi_core.bundle)
    checkpoint: bool | None = None  # in a job task, keep its outputs in Delta even so
    # Data quality rules over the step's output (odibi_core.core.expectations). Given as
    # the YAML mapping they are parsed here; a mapping that does not parse is kept as
    # given, for validate_steps to name every problem.
    expectations: tuple[Expectation, ...] = ()
    table_expectations: tuple[TableExpectation, ...] = ()

    def __post_init__(self) -> None:
        for name, parse in (
            ("expectations", parse_expectations),
            ("table_expectations", parse_table_expectations),
        ):
            raw = getattr(self, name)
            if raw is None:
                object.__setattr__(self, name, ())
            elif not isinstance(raw, tuple) or any(isinstance(r, Mapping) for r in raw):
                rules, problems = parse(raw)
                if not problems:
                    object.__setattr__(self, name, rules)

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


def field_type_problems(step: Any) -> list[str]:
    """What is of the wrong type in a step, each problem naming the field and what it needs.

    Steps come from YAML and from Python, so ``name: [a, b]`` or ``inputs="raw"`` must be a
    clear config error before anything hashes, iterates or calls a method on them.
    """
    if not isinstance(step, Step):
        return [f"expected a Step(layer=..., name=..., ...), got {type(step).__name__}"]
    problems = []
    for name in ("layer", "name"):
        value = getattr(step, name)
        if not isinstance(value, str) or not value:
            problems.append(f"'{name}' must be a non-empty text, got {value!r}")
    for name in ("type", "engine", "task"):
        value = getattr(step, name)
        if value is not None and not isinstance(value, str):
            problems.append(f"'{name}' must be a text, got {value!r}")
    if step.layer in BUILTIN_LAYERS and step.value is not None and not isinstance(step.value, str):
        problems.append(
            f"'value' must be a text (a path, table name, SQL or module:function), "
            f"got {type(step.value).__name__}"
        )
    for name in ("inputs", "outputs"):
        problems.extend(_data_key_problems(name, getattr(step, name)))
    for name in ("params", "metadata"):
        value = getattr(step, name)
        if not isinstance(value, Mapping):
            problems.append(f"'{name}' must be a mapping, got {type(value).__name__}")
        elif any(not isinstance(key, str) for key in value):
            bad = next(key for key in value if not isinstance(key, str))
            problems.append(f"'{name}' keys must be text, got {bad!r}")
    if step.retries is not None and (
        isinstance(step.retries, bool) or not isinstance(step.retries, int) or step.retries < 0
    ):
        problems.append(f"'retries' must be a whole number of 0 or more, got {step.retries!r}")
    for name in ("cache", "checkpoint"):
        value = getattr(step, name)
        if value is not None and not isinstance(value, bool):
            problems.append(f"'{name}' must be true or false, got {value!r}")
    problems.extend(expectation_problems(step))
    return problems


def _data_key_problems(name: str, value: Any) -> list[str]:
    example = f"{name}: {{data: my_key}}"
    if not isinstance(value, Mapping):
        return [f"'{name}' must be a mapping of name to data key, e.g. {example}, got {value!r}"]
    return [
        f"'{name}' maps {logical!r} to {key!r}; names and data keys must be non-empty text, "
        f"e.g. {example}"
        for logical, key in value.items()
        if not (isinstance(logical, str) and logical and isinstance(key, str) and key)
    ]
