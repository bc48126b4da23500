"""Where the Delta state tables live: their names and, locally, their paths.

All state tables (runs, audit, and later checkpoints and cache) sit in one schema, given by
a ``StateLocation``. On Databricks they are Unity Catalog tables (``catalog.schema.table``)
whose commits Delta already serialises. Locally no metastore is used: each name maps to a
path-based Delta table under the warehouse. Resolving names needs no Spark; creating,
appending to and reading a table is ``odibi_core.state.table.DeltaStateTable``'s job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from odibi_core.core.config import StateLocation
from odibi_core.core.errors import PipelineConfigError, StateError
from odibi_core.core.tables import default_warehouse, local_table_path, on_databricks

RUNS_TABLE = "odibi_runs"
AUDIT_TABLE = "odibi_audit"
CHECKPOINTS_TABLE = "odibi_checkpoints"
CACHE_TABLE = "odibi_cache"
STATE_TABLES = (RUNS_TABLE, AUDIT_TABLE, CHECKPOINTS_TABLE, CACHE_TABLE)
DEFAULT_STATE_SCHEMA = "odibi_state"

_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")


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


def _check_location(location: StateLocation) -> None:
    for part, value in (("schema", location.schema), ("catalog", location.catalog)):
        if value is None and part == "catalog":
            continue
        if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
            raise PipelineConfigError(
                f"state.{part} {value!r} is not a valid identifier; use letters, digits and "
                f"underscores, e.g. state: {{schema: {DEFAULT_STATE_SCHEMA}}}"
            )
