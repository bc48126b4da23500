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

from odibi_core.config import WRITE_MODES
from odibi_core.engine.base import WriteSpec
from odibi_core.engine.locations import DataLocation, locate
from odibi_core.errors import PipelineConfigError, did_you_mean
from odibi_core.nodes.base import (
    NodeContext,
    NodeResult,
    register_node,
    single_input,
    single_output_name,
)
from odibi_core.step import Step
from odibi_core.step_params import TRANSACTIONAL_FORMATS, check_params, io_options

# Spark refuses these in SET TBLPROPERTIES ("owner" is the catalog principal), so the
# owner named in metadata is kept under a property of its own.
SPARK_RESERVED_PROPERTIES = frozenset(
    {"provider", "location", "owner", "comment", "external", "is_managed_location"}
)
OWNER_PROPERTY = "odibi.owner"


def _names(step: Step, param: str) -> tuple[str, ...]:
    """A param given as one column name or a list of them."""
    value = step.params.get(param)
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise PipelineConfigError(
        f"{step.describe()}: params.{param} must be a column name or a list of them, got {value!r}"
    )


def write_spec_for(
    step: Step,
    location: DataLocation,
    *,
    pipeline: str | None = None,
    run_id: str | None = None,
    comment: str | None = None,
    properties: Mapping[str, str] | None = None,
    redact_columns: tuple[str, ...] = (),
) -> WriteSpec:
    """Turn a store/publish step's params into one engine write; options pass through."""
    mode = str(step.params.get("mode", "overwrite")).lower()
    if mode not in WRITE_MODES:
        raise PipelineConfigError(
            f"{step.describe()}: write mode '{mode}' is not one of {', '.join(WRITE_MODES)}"
            f"{did_you_mean(mode, WRITE_MODES)}"
        )
    if mode != "overwrite" and location.format not in TRANSACTIONAL_FORMATS:
        raise PipelineConfigError(
            f"{step.describe()}: mode '{mode}' cannot write {location.format} files at "
            f"'{location.target}'; set format: delta (or format: table) to {mode} safely"
        )
    check_params(step, location.format)
    merge_keys = _names(step, "merge_keys")
    if mode == "merge" and not merge_keys:
        raise PipelineConfigError(
            f"{step.describe()}: mode 'merge' needs params.merge_keys, the columns that "
            "identify a row"
        )
    update_columns = _names(step, "update_columns") if "update_columns" in step.params else None
    if update_columns is not None and mode != "merge":
        raise PipelineConfigError(
            f"{step.describe()}: params.update_columns only applies to mode 'merge', not '{mode}'"
        )
    partition_by, cluster_by = _names(step, "partition_by"), _names(step, "cluster_by")
    if partition_by and cluster_by:
        raise PipelineConfigError(
            f"{step.describe()}: set params.partition_by or params.cluster_by, not both; "
            "Delta tables are either partitioned or clustered"
        )
    merge_schema = step.params.get("merge_schema", False)
    if not isinstance(merge_schema, bool):
        raise PipelineConfigError(
            f"{step.describe()}: params.merge_schema must be true or false, got {merge_schema!r}"
        )
    txn_app_id = None
    if mode == "append" and pipeline and run_id:
        # The same id on a retry, resume or repair lets Delta skip an append it already has.
        txn_app_id = f"odibi:{pipeline}:{step.name}:{location.target}:{run_id}"
    return WriteSpec(
        target=location.target,
        format=location.format,
        mode=mode,
        options=io_options(step),
        merge_keys=merge_keys,
        update_columns=update_columns,
        partition_by=partition_by,
        cluster_by=cluster_by,
        merge_schema=merge_schema,
        comment=comment,
        properties=dict(properties or {}),
        txn_app_id=txn_app_id,
        txn_version=0 if txn_app_id else None,
        run_id=run_id,
        redact_columns=redact_columns,
        merge_null_keys=str(step.params.get("merge_null_keys", "error")).lower(),
    )


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
