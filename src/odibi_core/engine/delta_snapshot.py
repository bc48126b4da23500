"""A local Delta table read by this process itself: for the pandas engine and the state tables.

The pandas engine reads Delta through Spark: the JVM reads the files and hands the rows
over as Arrow. For a plain table in a folder this process sees (the local warehouse's
checkpoints, handoffs and cache entries among them), the log says which parquet files make
up a version, and pyarrow reads them in milliseconds without a Spark job; over Spark
Connect without a round trip either.

Only what this reader fully understands is read here: commit files with no gap, from version
0 or from a single-file checkpoint (Delta writes one every 10 commits, and the commits before
it may have been cleaned up); no reader feature but ``timestampNtz`` and two that concern
checkpoints and vacuum (so no deletion vectors, column mapping or type widening); no
partition columns; columns of flat types. Anything else, and any file that cannot be read,
returns None, and the caller asks Spark, which reads every table.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq

from odibi_core.engine.delta_log import LocalDeltaLog
from odibi_core.engine.schema import normalize_arrow_table

_FLAT_TYPES = {
    "string": pa.string(),
    "long": pa.int64(),
    "integer": pa.int32(),
    "short": pa.int16(),
    "byte": pa.int8(),
    "double": pa.float64(),
    "float": pa.float32(),
    "boolean": pa.bool_(),
    "binary": pa.binary(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "timestamp_ntz": pa.timestamp("us"),
}
# Reader features that change nothing for a reader of the commit files and flat columns.
_KNOWN_READER_FEATURES = frozenset({"timestampNtz", "vacuumProtocolCheck", "v2Checkpoint"})
_DECIMAL = re.compile(r"^decimal\((\d+),\s*(\d+)\)$")


class _Unreadable(Exception):
    """The table needs something this reader leaves to Spark."""


def read_local_delta(path: str, version: int | None = None) -> pa.Table | None:
    """The rows of the Delta table at ``path`` (at ``version``, else the latest) as Arrow,
    or None when Spark must read it."""
    log = LocalDeltaLog.of(path)
    if log is None:
        return None
    try:
        files, schema = _snapshot(log, version)
        return normalize_arrow_table(_read_files(log.folder.parent, files, schema))
    except (_Unreadable, OSError, ValueError, pa.ArrowException):
        return None


def _snapshot(log: LocalDeltaLog, version: int | None) -> tuple[list[str], pa.Schema]:
    """The data files and schema of ``version``: from its newest checkpoint at or before it
    (when there is one) and the commit files after that, else from the commits alone."""
    versions = sorted(log.versions())
    target = version if version is not None else (versions[-1] if versions else None)
    if target is None or target not in versions:
        raise _Unreadable(f"version {version} is not in the log")
    base = next((v for v in log.checkpoints() if v <= target), None)
    first = 0 if base is None else base + 1
    wanted = list(range(first, target + 1))
    if [v for v in versions if first <= v <= target] != wanted:
        raise _Unreadable("commits of the log were cleaned up and no checkpoint covers them")
    live: dict[str, None] = {}
    metadata: dict[str, Any] | None = None
    if base is not None:
        live, metadata = _checkpoint_state(log, base)
    for number in wanted:
        for action in log.actions(number):
            if "protocol" in action:
                _check_protocol(action["protocol"])
            elif "metaData" in action:
                metadata = action["metaData"]
            elif "add" in action:
                _check_add(action["add"])
                live[action["add"]["path"]] = None
            elif "remove" in action:
                live.pop(action["remove"]["path"], None)
    if metadata is None:
        raise _Unreadable("no metadata")
    return list(live), _arrow_schema(metadata)


def _checkpoint_state(log: LocalDeltaLog, version: int) -> tuple[dict[str, None], dict[str, Any]]:
    """The live files and the metadata a classic checkpoint records (its protocol checked)."""
    table = pq.read_table(log.checkpoint_file(version))
    names = set(table.column_names)
    if not {"add", "metaData", "protocol"} <= names:
        raise _Unreadable(f"checkpoint {version} lacks add, metaData or protocol")
    metadata: dict[str, Any] | None = None
    for protocol in table.column("protocol").to_pylist():
        if protocol is not None:
            _check_protocol(protocol)
    for found in table.column("metaData").to_pylist():
        if found is not None:
            # A parquet map comes back as (key, value) pairs; a commit file holds an object.
            metadata = {**found, "configuration": dict(found.get("configuration") or ())}
    if metadata is None:
        raise _Unreadable(f"checkpoint {version} has no metadata")
    live: dict[str, None] = {}
    for add in table.column("add").to_pylist():
        if add is not None:
            _check_add(add)
            live[add["path"]] = None
    return live, metadata


def _check_add(add: dict[str, Any]) -> None:
    if add.get("deletionVector"):
        raise _Unreadable("deletion vectors")


def _check_protocol(protocol: dict[str, Any]) -> None:
    features = set(protocol.get("readerFeatures") or ())
    if protocol.get("minReaderVersion", 1) not in (1, 3) or features - _KNOWN_READER_FEATURES:
        raise _Unreadable(f"reader features {sorted(features - _KNOWN_READER_FEATURES)}")


def _arrow_schema(metadata: dict[str, Any]) -> pa.Schema:
    if metadata.get("partitionColumns"):
        raise _Unreadable("partition columns")
    mapping = (metadata.get("configuration") or {}).get("delta.columnMapping.mode", "none")
    if mapping != "none":
        raise _Unreadable("column mapping")
    fields = json.loads(metadata["schemaString"])["fields"]
    return pa.schema(
        [pa.field(f["name"], _arrow_type(f["type"]), f.get("nullable", True)) for f in fields]
    )


def _arrow_type(delta_type: Any) -> pa.DataType:
    if not isinstance(delta_type, str):
        raise _Unreadable("nested types")
    if delta_type in _FLAT_TYPES:
        return _FLAT_TYPES[delta_type]
    decimal = _DECIMAL.match(delta_type)
    if decimal is None:
        raise _Unreadable(f"type {delta_type}")
    return pa.decimal128(int(decimal.group(1)), int(decimal.group(2)))


def _read_files(root: Path, files: list[str], schema: pa.Schema) -> pa.Table:
    parts = [_conformed(pq.read_table(root / unquote(name)), schema) for name in files]
    return pa.concat_tables(parts) if parts else schema.empty_table()


def _conformed(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """One file's columns in the table's schema: a column added after the file was written
    is NULL in it, and Spark's INT96 timestamps (naive nanoseconds in UTC) become UTC."""
    columns = []
    for field in schema:
        if field.name not in table.column_names:
            columns.append(pa.nulls(len(table), field.type))
            continue
        column = table.column(field.name)
        if pa.types.is_timestamp(column.type) and pa.types.is_timestamp(field.type):
            column = column.cast(pa.timestamp(column.type.unit, tz=field.type.tz))
        columns.append(column.cast(field.type, safe=False))
    return pa.Table.from_arrays(columns, schema=schema)
