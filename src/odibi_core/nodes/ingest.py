"""Ingest: read a csv, json, parquet or Delta path, or a table, into the step's output."""

from __future__ import annotations

from odibi_core.core.errors import EngineError
from odibi_core.core.locations import DataLocation, local_disk_path, locate, path_exists
from odibi_core.core.step import Step
from odibi_core.core.step_params import check_params, io_options
from odibi_core.engine.base import ReadSpec
from odibi_core.nodes.base import NodeContext, NodeResult, register_node, single_output_name


def read_spec_for(step: Step, location: DataLocation) -> ReadSpec:
    """The engine read for ``step``: its location, and ``params.options`` as reader options."""
    check_params(step, location.format)
    return ReadSpec(source=location.target, format=location.format, options=io_options(step))


@register_node("ingest")
class IngestNode:
    """Reads ``value``: a path (resolved against the pipeline's folder) or a table name."""

    def run(self, step: Step, ctx: NodeContext) -> NodeResult:
        location = locate(step, ctx.base_dir)
        # Only this machine's own disk is checked here: Spark reaches a Volume or a bucket
        # itself, and the pandas engine checks a Volumes path as it reads it.
        local = local_disk_path(location.target) if not location.is_table else None
        if local is not None and not path_exists(local):
            raise EngineError(
                f"step '{step.name}': input path '{location.target}' does not exist; "
                f"check 'value' ({step.value!r}) and the folder it is relative to",
                retryable=False,
            )
        output = single_output_name(step, what="an ingest")
        spec = read_spec_for(step, location)
        frame = ctx.engine.read(spec, step=step.name)
        return NodeResult(outputs={output: frame}, read=spec)

    def __repr__(self) -> str:
        return "IngestNode"
