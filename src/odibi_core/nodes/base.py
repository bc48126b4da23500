"""What a node is, what it returns, and the registry that maps a step's layer to its node.

A node is anything with ``run(step, ctx) -> NodeResult``. Built-in kinds (ingest,
transform, store, publish) register themselves when ``odibi_core.nodes`` is imported;
a custom kind registers with ``@register_node("my_kind")``, which also makes config
validation accept ``layer: my_kind``.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

from odibi_core.core.errors import OdibiError, PipelineConfigError, did_you_mean
from odibi_core.core.step import Step, register_layer
from odibi_core.engine.base import EngineContext, Frame, ReadSpec, WriteResult


class NodeContractError(OdibiError):
    """A node broke its contract: it returned something other than the step's outputs."""


@dataclass(frozen=True)
class NodeContext:
    """What a node may use while running one step.

    ``inputs`` maps the step's logical input names to frames already in ``engine``'s type.
    ``pipeline`` and ``run_id`` identify the run, so appends can be made exactly-once.
    """

    engine: EngineContext
    inputs: Mapping[str, Frame]
    base_dir: Path | None
    engines: Any  # odibi_core.engine.registry.Engines
    pipeline: str | None = None
    run_id: str | None = None
    # Column names and patterns whose values a message may not show (the run's redaction).
    redact_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class NodeResult:
    """What a step produced: frames keyed by the step's OUTPUT logical names.

    ``write`` is set by store/publish; ``read`` by ingest (what was read, so the tracker
    can take a cheap sample of a file scan).
    """

    outputs: dict[str, Frame] = field(default_factory=dict)
    write: WriteResult | None = None
    read: ReadSpec | None = None


@runtime_checkable
class Node(Protocol):
    def run(self, step: Step, ctx: NodeContext) -> NodeResult: ...


NodeT = TypeVar("NodeT")

_lock = threading.Lock()
_registry: dict[str, Node] = {}


class _FunctionNode:
    """Adapts a plain ``fn(step, ctx) -> NodeResult`` to the Node protocol."""

    def __init__(self, fn: Callable[[Step, NodeContext], NodeResult]):
        self.fn = fn

    def run(self, step: Step, ctx: NodeContext) -> NodeResult:
        return self.fn(step, ctx)

    def __repr__(self) -> str:
        return f"{self.fn.__module__}.{self.fn.__qualname__}"


def register_node(kind: str, *, replace: bool = False) -> Callable[[NodeT], NodeT]:
    """Register a node class, node object or ``fn(step, ctx)`` for steps with ``layer: kind``.

    A class is instantiated once, without arguments. Registering a kind twice is an error
    unless ``replace=True``. Returns the decorated object unchanged.
    """
    if not isinstance(kind, str) or not kind.isidentifier():
        raise PipelineConfigError(
            f"register_node: kind {kind!r} must be an identifier such as 'validate'"
        )

    def decorator(obj: NodeT) -> NodeT:
        node = _as_node(kind, obj)
        with _lock:
            existing = _registry.get(kind)
            if existing is not None and not replace:
                raise PipelineConfigError(
                    f"register_node: kind '{kind}' is already registered to {existing!r}; "
                    "pass replace=True to override it"
                )
            _registry[kind] = node
        register_layer(kind)
        return obj

    return decorator


def _as_node(kind: str, obj: Any) -> Node:
    if inspect.isclass(obj):
        if not callable(getattr(obj, "run", None)):
            raise PipelineConfigError(
                f"register_node('{kind}'): class {obj.__qualname__} has no run(step, ctx) method"
            )
        try:
            return obj()
        except TypeError as exc:
            raise PipelineConfigError(
                f"register_node('{kind}'): class {obj.__qualname__} must be constructible "
                f"without arguments ({exc})"
            ) from exc
    if callable(getattr(obj, "run", None)):
        return obj
    if callable(obj):
        try:
            inspect.signature(obj).bind(None, None)
        except TypeError as exc:
            raise PipelineConfigError(
                f"register_node('{kind}'): function {obj.__qualname__} must accept (step, ctx)"
            ) from exc
        return _FunctionNode(obj)
    raise PipelineConfigError(
        f"register_node('{kind}'): {obj!r} is neither a node class, an object with "
        "run(step, ctx), nor a function of (step, ctx)"
    )


def get_node(layer: str) -> Node:
    """The node registered for ``layer``."""
    with _lock:
        node = _registry.get(layer)
        known = sorted(_registry)
    if node is None:
        raise PipelineConfigError(
            f"no node is registered for layer '{layer}'{did_you_mean(layer, known)}; "
            f"known layers: {', '.join(known)}; register one with @register_node('{layer}')"
        )
    return node


def registered_kinds() -> list[str]:
    with _lock:
        return sorted(_registry)


def run_node(
    step: Step,
    *,
    engine: EngineContext | str,
    inputs: Mapping[str, Frame],
    base_dir: str | Path | None,
    engines: Any,
    pipeline: str | None = None,
    run_id: str | None = None,
    redact_columns: tuple[str, ...] = (),
) -> NodeResult:
    """Run ``step`` with the node of its layer and check that it returned its outputs.

    ``engine`` is an engine or its name (looked up in ``engines``); ``inputs`` maps the
    step's logical input names to frames already in that engine's type.
    """
    node = get_node(step.layer)
    if isinstance(engine, str):
        engine = engines.get(engine)
    missing_inputs = [name for name in step.inputs if name not in inputs]
    if missing_inputs:
        raise NodeContractError(
            f"{step.describe()}: input(s) {', '.join(map(repr, missing_inputs))} were not "
            "provided to run_node"
        )
    ctx = NodeContext(
        engine=engine,
        inputs=dict(inputs),
        base_dir=Path(base_dir) if base_dir is not None else None,
        engines=engines,
        pipeline=pipeline,
        run_id=run_id,
        redact_columns=tuple(redact_columns),
    )
    result = node.run(step, ctx)
    _check_result(step, node, result)
    return result


def _check_result(step: Step, node: Node, result: Any) -> None:
    if not isinstance(result, NodeResult):
        raise NodeContractError(
            f"{step.describe()}: node {node!r} returned {type(result).__name__}; "
            "run(step, ctx) must return a NodeResult"
        )
    declared = sorted(step.outputs)
    mismatch = describe_mismatch(declared, sorted(result.outputs), extra_label="undeclared")
    if mismatch:
        raise NodeContractError(
            f"{step.describe()}: node {node!r} returned outputs {sorted(result.outputs)} but the "
            f"step declares {declared} ({mismatch})"
        )


def describe_mismatch(declared: list[str], got: list[str], *, extra_label: str) -> str | None:
    """``"missing 'a'; <extra_label> 'b'"`` for names in one list but not the other, else None."""
    missing = [name for name in declared if name not in got]
    extra = [name for name in got if name not in declared]
    parts = []
    if missing:
        parts.append(f"missing {', '.join(map(repr, missing))}")
    if extra:
        parts.append(f"{extra_label} {', '.join(map(repr, extra))}")
    return "; ".join(parts) or None


# --------------------------------------------------------------------------- helpers for nodes


def single_output_name(step: Step, *, what: str) -> str:
    """The logical name of the step's one output; none or several are a config error."""
    if len(step.outputs) != 1:
        declared = ", ".join(map(repr, step.outputs)) or "none"
        raise PipelineConfigError(
            f"{step.describe()}: {what} produces one frame, but the step declares "
            f"{len(step.outputs)} outputs ({declared}); declare exactly one, e.g. "
            "outputs: {data: my_key}"
        )
    return next(iter(step.outputs))


def single_input(step: Step, ctx: NodeContext) -> Frame:
    if len(ctx.inputs) != 1:
        declared = ", ".join(map(repr, ctx.inputs)) or "none"
        raise PipelineConfigError(
            f"{step.describe()}: writes exactly one input, but it has {len(ctx.inputs)} "
            f"({declared}); join them in a transform first"
        )
    return next(iter(ctx.inputs.values()))
