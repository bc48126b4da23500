"""Store and publish: write the step's one input to a path or table.

Publish is a store that also documents the table it writes: ``metadata.description``
becomes the table comment, and ``metadata.properties`` (plus ``metadata.owner``) become
table properties (the owner as ``odibi.owner``: Spark reserves ``owner`` for the
catalog principal). Both return the written frame as their output when the step declares
one, so downstream steps may read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from odibi_core.core.errors import PipelineConfigError
from odibi_core.core.locations import DataLocation, locate
from odibi_core.core.step import Step
from odibi_core.core.step_params import write_spec_for_step
from odibi_core.core.write_spec import TRANSACTIONAL_FORMATS, WriteSpec
from odibi_core.nodes.base import (
    NodeContext,
    NodeResult,
    register_node,
    single_input,
    single_output_name,
)

# Spark refuses these in SET TBLPROPERTIES ("owner" is the catalog principal), so the
# owner named in metadata is kept under a property of its own.
SPARK_RESERVED_PROPERTIES = frozenset(
    {"provider", "location", "owner", "comment", "external", "is_managed_location"}
)
OWNER_PROPERTY = "odibi.owner"


def write_spec_for(step: Step, location: DataLocation, **run: Any) -> WriteSpec:
    """Turn a store/publish step's params into one engine write at ``location``.

    ``run`` takes ``write_spec_for_step``'s keywords (pipeline, run id, documentation).
    """
    return write_spec_for_step(step, target=location.target, fmt=location.format, **run)


@register_node("store")
class StoreNode:
    """Writes the step's one input to ``value`` with ``params.mode`` (default overwrite)."""

    def run(self, step: Step, ctx: NodeContext) -> NodeResult:
        location = locate(step, ctx.base_dir)
        comment, properties = self.documentation(step, location)
        spec = write_spec_for(
            step,
            location,
            pipeline=ctx.pipeline,
            run_id=ctx.run_id,
            comment=comment,
            properties=properties,
            redact_columns=ctx.redact_columns,
        )
        output = single_output_name(step, what=f"a {step.layer}") if step.outputs else None
        frame = single_input(step, ctx)
        written = ctx.engine.write(frame, spec, step=step.name)
        return NodeResult(outputs={output: frame} if output else {}, write=written)

    def documentation(
        self, step: Step, location: DataLocation
    ) -> tuple[str | None, dict[str, str]]:
        """The table comment and properties to set; a plain store sets none."""
        return None, {}

    def __repr__(self) -> str:
        return "StoreNode"


@register_node("publish")
class PublishNode(StoreNode):
    """A store that sets the table comment and properties from the step's metadata."""

    def documentation(
        self, step: Step, location: DataLocation
    ) -> tuple[str | None, dict[str, str]]:
        if location.format not in TRANSACTIONAL_FORMATS:
            raise PipelineConfigError(
                f"{step.describe()}: publish writes a Delta table so it can carry a comment "
                f"and properties, but '{location.target}' is {location.format}; "
                "set format: delta or format: table"
            )
        metadata = step.metadata
        description = metadata.get("description")
        raw_properties: Any = metadata.get("properties") or {}
        if not isinstance(raw_properties, Mapping):
            raise PipelineConfigError(
                f"{step.describe()}: metadata.properties must be a mapping of name to value, "
                f"got {type(raw_properties).__name__}"
            )
        properties = {str(key): str(value) for key, value in raw_properties.items()}
        reserved = sorted(set(properties) & SPARK_RESERVED_PROPERTIES)
        if reserved:
            raise PipelineConfigError(
                f"{step.describe()}: metadata.properties sets {', '.join(map(repr, reserved))}, "
                "which Spark reserves; use metadata.description for the comment, "
                "metadata.owner for the owner, and other names for your own properties"
            )
        if metadata.get("owner"):
            properties[OWNER_PROPERTY] = str(metadata["owner"])
        return (str(description) if description else None), properties

    def __repr__(self) -> str:
        return "PublishNode"
