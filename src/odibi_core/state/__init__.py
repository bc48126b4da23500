"""Delta-backed state: where the state tables live, how commits to them are locked, the
Delta state table itself, and the audit store. Importing this package starts no Spark
session and imports no pyspark."""

from __future__ import annotations

from odibi_core.state.audit import (
    AUDIT_COLUMNS,
    RUNS_COLUMNS,
    AuditStore,
    audit_row_from_step,
    databricks_context,
    lineage_from_rows,
    run_row_from_lineage,
)
from odibi_core.state.location import (
    AUDIT_TABLE,
    CACHE_HITS_TABLE,
    CACHE_TABLE,
    CHECKPOINTS_TABLE,
    DEFAULT_STATE_SCHEMA,
    RUNS_TABLE,
    STATE_TABLES,
    StateTableRef,
    StateTables,
    default_local_location,
)
from odibi_core.state.lock import table_lock
from odibi_core.state.table import SPARK_TYPE_NAMES, Column, DeltaStateTable

__all__ = [
    "AUDIT_COLUMNS",
    "AUDIT_TABLE",
    "CACHE_HITS_TABLE",
    "CACHE_TABLE",
    "CHECKPOINTS_TABLE",
    "DEFAULT_STATE_SCHEMA",
    "RUNS_COLUMNS",
    "RUNS_TABLE",
    "SPARK_TYPE_NAMES",
    "STATE_TABLES",
    "AuditStore",
    "Column",
    "DeltaStateTable",
    "StateTableRef",
    "StateTables",
    "audit_row_from_step",
    "databricks_context",
    "default_local_location",
    "lineage_from_rows",
    "run_row_from_lineage",
    "table_lock",
]
