"""Where the Delta state tables live: their names and, locally, their paths.

All state tables (runs, audit, and later checkpoints and cache) sit in one schema, given by
a ``StateLocation``. On Databricks they are Unity Catalog tables (``catalog.schema.table``)
whose commits Delta already serialises. Locally no metastore is used: each name maps to a
path-based Delta table under the warehouse. Resolving names needs no Spark; creating,
appending to and reading a table is ``odibi_core.state.table.DeltaStateTable``'s job.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from odibi_core.core.config import StateLocation
from odibi_core.core.errors import PipelineConfigError, StateError
from odibi_core.core.tables import default_warehouse, local_table_path, on_databricks

RUNS_TABLE = "odibi_runs"
AUDIT_TABLE = "odibi_audit"
CHECKPOINTS_TABLE = "odibi_checkpoints"
CACHE_TABLE = "odibi_cache"
CACHE_HITS_TABLE = "odibi_cache_hits"
STATE_TABLES = (RUNS_TABLE, AUDIT_TABLE, CHECKPOINTS_TABLE, CACHE_TABLE, CACHE_HITS_TABLE)
DEFAULT_STATE_SCHEMA = "odibi_state"

_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")

DataKind = Literal["checkpoint", "handoff", "cache"]
# A checkpoint and a bundle task's handoff are one table: the same kind of name.
DATA_TABLE_PREFIXES: dict[str, str] = {
    "checkpoint": "odibi_ckpt",
    "handoff": "odibi_ckpt",
    "cache": "odibi_cachedata",
}
# Parts of a data table name are joined by a double underscore, which no part contains.
_SEPARATOR = "__"
# The longest part kept as is; longer text is cut and a hash appended. With three parts the
# name stays far below Unity Catalog's 255 characters and a file name's 255 bytes.
_PART_LIMITS = {"pipeline": 48, "run_id": 48, "key": 96}
_CLEAN_PART = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)*")
_HASH_LENGTH = 12
_HASHED_TAIL = re.compile(rf"(?:^|_)h[0-9a-f]{{{_HASH_LENGTH}}}$")
_UNSAFE = re.compile(r"[^a-z0-9]+")


def default_local_location() -> StateLocation:
    """The state location ``odibi run`` uses when a pipeline names none."""
    return StateLocation(schema=DEFAULT_STATE_SCHEMA)


@dataclass(frozen=True)
class StateTableRef:
    """One state table: its qualified name and, locally, its Delta path."""

    name: str  # catalog.schema.table (or schema.table when no catalog is configured)
    path: Path | None  # None for a Unity Catalog table

    @property
    def is_catalog_table(self) -> bool:
        return self.path is None

    @property
    def engine_target(self) -> tuple[str, str]:
        """How an engine reads or writes it: (local Delta path, "delta") or (name, "table")."""
        if self.path is not None:
            return str(self.path), "delta"
        return self.name, "table"

    def __str__(self) -> str:
        return self.name if self.path is None else f"{self.name} (at {self.path})"


class StateTables:
    """Resolves state table names against one ``StateLocation``.

    Whether tables are Unity Catalog tables is decided once, at construction: on Databricks
    (or with ``catalog_tables=True``) they are; otherwise they are path-based tables under
    ``warehouse`` (default: ``$ODIBI_WAREHOUSE`` or ``.odibi/warehouse``).
    """

    def __init__(
        self,
        location: StateLocation,
        *,
        warehouse: str | Path | None = None,
        catalog_tables: bool | None = None,
    ):
        _check_location(location)
        self.location = location
        self.catalog_tables = on_databricks() if catalog_tables is None else catalog_tables
        self.warehouse = (
            None
            if self.catalog_tables
            else (Path(warehouse) if warehouse is not None else default_warehouse()).resolve()
        )

    def ref(self, table: str) -> StateTableRef:
        if not _IDENTIFIER.fullmatch(table):
            raise StateError(
                f"state table name {table!r} is not a plain identifier; "
                f"use one of {', '.join(STATE_TABLES)}"
            )
        name = self.location.table(table)
        if self.catalog_tables:
            return StateTableRef(name=name, path=None)
        return StateTableRef(name=name, path=local_table_path(name, self.warehouse))

    def data_table_ref(self, recorded: str) -> StateTableRef | None:
        """The data table a checkpoint or cache row names (its qualified name or, locally,
        its path), if it is a checkpoint, handoff or cache table of this location.

        Anything else (a store's target, a table elsewhere) is None: housekeeping must never
        drop it.
        """
        is_path = self.warehouse is not None and Path(recorded).is_absolute()
        table = Path(recorded).name if is_path else recorded.rsplit(".", 1)[-1]
        if not is_data_table_identifier(table) or not _IDENTIFIER.fullmatch(table):
            return None
        ref = self.ref(table)
        same = recorded == ref.name or (ref.path is not None and Path(recorded) == ref.path)
        return ref if same else None

    @property
    def runs(self) -> StateTableRef:
        return self.ref(RUNS_TABLE)

    @property
    def audit(self) -> StateTableRef:
        return self.ref(AUDIT_TABLE)

    @property
    def checkpoints(self) -> StateTableRef:
        return self.ref(CHECKPOINTS_TABLE)

    @property
    def cache(self) -> StateTableRef:
        return self.ref(CACHE_TABLE)

    @property
    def cache_hits(self) -> StateTableRef:
        return self.ref(CACHE_HITS_TABLE)


def state_table_name(
    kind: DataKind,
    pipeline: str,
    key: str,
    run_id: str | None = None,
    *,
    location: StateTables,
) -> StateTableRef:
    """The Delta table that holds one data key: of run ``run_id`` for a checkpoint or a
    handoff (the same table), of the cache entry ``key`` for the cache.

    The name is ``odibi_ckpt__<pipeline>__<run_id>__<key>`` (a cache table:
    ``odibi_cachedata__<pipeline>__<key>``), each part made by ``name_part``: user text
    never reaches SQL, and distinct inputs give distinct names. Locally it is a path under
    the warehouse, like every state table.
    """
    return location.ref(data_table_identifier(kind, pipeline, key, run_id))


def data_table_identifier(kind: DataKind, pipeline: str, key: str, run_id: str | None) -> str:
    """The unqualified name ``state_table_name`` gives (see there)."""
    if kind not in DATA_TABLE_PREFIXES:
        raise StateError(
            f"data table kind {kind!r} is unknown; use one of {', '.join(DATA_TABLE_PREFIXES)}"
        )
    if (run_id is None) != (kind == "cache"):
        needs = "takes no run id" if kind == "cache" else "needs the run id"
        raise StateError(f"a {kind} table {needs} (pipeline {pipeline!r}, key {key!r})")
    parts = [DATA_TABLE_PREFIXES[kind], name_part(pipeline, limit=_PART_LIMITS["pipeline"])]
    if run_id is not None:
        parts.append(name_part(run_id, limit=_PART_LIMITS["run_id"]))
    parts.append(name_part(key, limit=_PART_LIMITS["key"]))
    return _SEPARATOR.join(parts)


def is_data_table_identifier(table: str) -> bool:
    """Whether ``table`` (unqualified) is a checkpoint, handoff or cache data table name."""
    return any(table.startswith(prefix + _SEPARATOR) for prefix in DATA_TABLE_PREFIXES.values())


def name_part(text: str, *, limit: int) -> str:
    """``text`` as one part of a table name: lower-case letters, digits and single
    underscores, at most ``limit`` characters.

    Text that is already such a part (and does not end like a hashed part) is kept as it
    is, so names stay readable. Any other text is cleaned, cut, and followed by ``_h`` and
    a hash of the original: ``a-b`` and ``a_b`` differ, and so do two long keys with the
    same beginning.
    """
    if not isinstance(text, str) or not text:
        raise StateError(f"a data table name part must be non-empty text, got {text!r}")
    if len(text) <= limit and _CLEAN_PART.fullmatch(text) and not _HASHED_TAIL.search(text):
        return text
    digest = "h" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:_HASH_LENGTH]
    stem = _UNSAFE.sub("_", text.lower()).strip("_")[: limit - len(digest) - 1].rstrip("_")
    return f"{stem}_{digest}" if stem else digest


def _check_location(location: StateLocation) -> None:
    for part, value in (("schema", location.schema), ("catalog", location.catalog)):
        if value is None and part == "catalog":
            continue
        if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
            raise PipelineConfigError(
                f"state.{part} {value!r} is not a valid identifier; use letters, digits and "
                f"underscores, e.g. state: {{schema: {DEFAULT_STATE_SCHEMA}}}"
            )
