"""The ``odibi_quality`` state table: one row per expectation per step execution.

Users build SQL alerts and dashboards on it, so each row stands on its own: the run, the
execution, the pipeline and step, the rule (its name, expression and action) and what it
counted. The rows are made from the audit rows of the same write (their ``quality_json``),
appended in one commit with the same idempotency key as the audit rows, and only when some
step had expectations: a run without any adds no commit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from odibi_core.core.errors import StateError
from odibi_core.state.location import StateTables
from odibi_core.state.table import Column, DeltaStateTable

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

QUALITY_TABLE = "odibi_quality"

QUALITY_COLUMNS: tuple[Column, ...] = (
    ("run_id", "string"),
    ("execution_id", "string"),
    ("pipeline_name", "string"),
    ("step_name", "string"),
    ("step_status", "string"),
    ("ordinal", "int"),  # the rule's place among the step's expectations, from 0
    ("name", "string"),
    ("rule", "string"),
    ("on_violation", "string"),
    ("passed", "long"),
    ("failed", "long"),
    ("reason", "string"),  # why passed and failed are NULL, when they are
    ("databricks_job_id", "string"),
    ("databricks_task_key", "string"),
    ("databricks_run_id", "string"),
    ("recorded_at", "timestamp"),
    ("execution_token", "string"),
)
QUALITY_SCHEMA_VERSION = 1

# Copied from the step's audit row, so a quality row joins back to it.
_FROM_AUDIT_ROW = (
    "run_id",
    "execution_id",
    "pipeline_name",
    "step_name",
    "databricks_job_id",
    "databricks_task_key",
    "databricks_run_id",
    "recorded_at",
    "execution_token",
)
_KEY_COLUMNS = ("run_id", "execution_id", "pipeline_name", "step_name")


def quality_table(
    tables: StateTables,
    spark_provider: Callable[[], SparkSession],
    *,
    lock_timeout: float | None = None,
) -> DeltaStateTable:
    """The ``odibi_quality`` table of a state location (nothing runs until it is used)."""
    return DeltaStateTable(
        tables.ref(QUALITY_TABLE),
        QUALITY_COLUMNS,
        spark_provider=spark_provider,
        lock_timeout=lock_timeout,
        stats_columns=_KEY_COLUMNS,
        schema_version=QUALITY_SCHEMA_VERSION,
    )


def quality_rows(audit_rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The ``odibi_quality`` rows of these ``odibi_audit`` rows: one per rule, in order."""
    rows: list[dict[str, Any]] = []
    for audit_row in audit_rows:
        text = audit_row.get("quality_json")
        results = json.loads(text) if text else []
        where = f"run {audit_row.get('execution_id')}, step {audit_row.get('step_name')!r}"
        for ordinal, result in enumerate(results):
            rows.append(_quality_row(audit_row, ordinal, result, where))
    return rows


def _quality_row(
    audit_row: Mapping[str, Any], ordinal: int, result: Mapping[str, Any], where: str
) -> dict[str, Any]:
    where = f"{where}, expectation {result.get('name')!r}"
    return {
        **{name: audit_row.get(name) for name in _FROM_AUDIT_ROW},
        "step_status": audit_row.get("status"),
        "ordinal": ordinal,
        "name": result.get("name"),
        "rule": result.get("rule"),
        "on_violation": result.get("on_violation"),
        "passed": _count(result.get("passed"), "passed", where),
        "failed": _count(result.get("failed"), "failed", where),
        "reason": result.get("reason"),
    }


def _count(value: Any, field: str, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise StateError(f"{where}: {field} must be a row count (0 or more), got {value!r}")
    return value


def rows_of_execution(table: DeltaStateTable, lineage: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The quality rows of the execution ``lineage`` describes, in its steps' order and
    each step's rules in their order."""
    rows = table.read({"run_id": lineage["run_id"], "execution_id": lineage["execution_id"]})
    token = lineage.get("execution_token")
    rows = [row for row in rows if token is None or row["execution_token"] == token]
    position = {step["step_name"]: i for i, step in enumerate(lineage.get("steps") or [])}
    return sorted(
        rows,
        key=lambda row: (position.get(row["step_name"], len(position)), row["ordinal"] or 0),
    )


__all__ = [
    "QUALITY_COLUMNS",
    "QUALITY_TABLE",
    "quality_rows",
    "quality_table",
    "rows_of_execution",
]
