"""Transform: Spark-SQL text over the step's inputs, or a Python function called with them."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from odibi_core.core.errors import EngineError, PipelineConfigError, did_you_mean
from odibi_core.core.step import Step, looks_like_function_ref
from odibi_core.engine.base import Frame
from odibi_core.nodes.base import (
    NodeContext,
    NodeResult,
    describe_mismatch,
    register_node,
    single_output_name,
)


def load_function(step: Step) -> Callable[..., Any]:
    """Import ``package.module:function`` named by ``step.value``."""
    ref = step.value
    if not looks_like_function_ref(ref):
        raise PipelineConfigError(
            f"{step.describe()}: function reference {ref!r} is not of the form "
            "'package.module:function'"
        )
    module_name, function_name = ref.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PipelineConfigError(
            f"{step.describe()}: cannot import module '{module_name}' for function "
            f"'{function_name}' ({exc}); check that the module is installed or on PYTHONPATH"
        ) from exc
    function = getattr(module, function_name, None)
    if function is None:
        public = [name for name in dir(module) if not name.startswith("_")]
        raise PipelineConfigError(
            f"{step.describe()}: module '{module_name}' has no function "
            f"'{function_name}'{did_you_mean(function_name, public)}"
        )
    if not callable(function):
        raise PipelineConfigError(
            f"{step.describe()}: '{module_name}:{function_name}' is a "
            f"{type(function).__name__}, not a function"
        )
    return function


def _check_no_clash(step: Step, inputs: Mapping[str, Frame]) -> None:
    clashes = sorted(set(inputs) & set(step.params))
    if clashes:
        names = ", ".join(f"'{name}'" for name in clashes)
        raise PipelineConfigError(
            f"{step.describe()}: {names} is both an input and a param, so "
            f"{step.value} would receive it twice; rename the input or the param"
        )


def outputs_from_return(step: Step, returned: Any, ctx: NodeContext) -> dict[str, Frame]:
    """Map a function's return value (one frame, or a dict by output name) to the outputs."""
    if isinstance(returned, Mapping):
        declared = list(step.outputs)
        mismatch = describe_mismatch(declared, list(returned), extra_label="not declared")
        if mismatch:
            raise PipelineConfigError(
                f"{step.describe()}: {step.value} returned keys {list(returned)} but the step "
                f"declares outputs {declared} ({mismatch}); return a dict keyed by "
                "the output names"
            )
        return {name: _as_frame(step, returned[name], ctx, name) for name in declared}
    if len(step.outputs) != 1:
        raise PipelineConfigError(
            f"{step.describe()}: {step.value} returned one DataFrame, but the step declares "
            f"{len(step.outputs)} outputs ({', '.join(map(repr, step.outputs))}); return a "
            "dict keyed by those names"
        )
    output = next(iter(step.outputs))
    return {output: _as_frame(step, returned, ctx, output)}


def _as_frame(step: Step, value: Any, ctx: NodeContext, output: str) -> Frame:
    """``value`` as the step engine's frame; anything but a pandas/Spark frame is refused."""
    if ctx.engine.owns(value):
        return value
    try:
        ctx.engines.frame_engine(value)
    except EngineError as exc:
        raise PipelineConfigError(
            f"{step.describe()}: {step.value} returned a {type(value).__name__} for output "
            f"'{output}'; return a pandas or Spark DataFrame (or a dict of them by output name)"
        ) from exc
    return ctx.engine.adopt(value)


@register_node("transform")
class TransformNode:
    """``type: sql`` runs ``value`` as Spark SQL; ``type: function`` calls ``value``."""

    def run(self, step: Step, ctx: NodeContext) -> NodeResult:
        if step.kind == "sql":
            output = single_output_name(step, what="a sql transform")
            frame = ctx.engine.sql(step.value, ctx.inputs, step=step.name)
            return NodeResult(outputs={output: frame})
        if step.kind == "function":
            function = load_function(step)
            _check_no_clash(step, ctx.inputs)
            returned = ctx.engine.call(function, ctx.inputs, step.params, step=step.name)
            return NodeResult(outputs=outputs_from_return(step, returned, ctx))
        raise PipelineConfigError(
            f"{step.describe()}: unknown transform type '{step.kind}'; use 'sql' or 'function'"
        )

    def __repr__(self) -> str:
        return "TransformNode"
