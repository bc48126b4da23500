"""The quarantine table: rows a ``quarantine`` rule took out of a step's output.

One Delta table per pipeline, ``<state schema>.<pipeline>_quarantine`` (locally a path
under the warehouse, like every state table). Each row is the rejected row as the step
produced it, plus ``_odibi_broken_rules`` (the names of the rules it broke), ``_odibi_step``
and ``_odibi_run_id``. Steps with different columns share the table: Delta merges their
schemas, so a column one step lacks is NULL in its rows.

An append is exactly once per step and run: Delta's ``txnAppId``
(``odibi:<pipeline>:<step>:quarantine:<run_id>``) skips it when a retry, a resume or a
repair of the same run appends again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from odibi_core.core.config import StateLocation
from odibi_core.core.write_spec import WriteSpec
from odibi_core.state.location import StateTableRef, StateTables, name_part
from odibi_core.state.lock import table_lock

QUARANTINE_SUFFIX = "_quarantine"
STEP_COLUMN = "_odibi_step"
RUN_ID_COLUMN = "_odibi_run_id"


def quarantine_table_name(pipeline: str) -> str:
    """``<pipeline>_quarantine``, the pipeline's name made a plain identifier."""
    return f"{name_part(pipeline, limit=48)}{QUARANTINE_SUFFIX}"


class QuarantineTable:
    """Appends a step's quarantined rows to its pipeline's quarantine table."""

    def __init__(
        self,
        location: StateLocation,
        *,
        pipeline: str,
        run_id: str,
        spark_engine: Callable[[], Any],
        warehouse: str | Path | None = None,
    ):
        self.pipeline = pipeline
        self.run_id = run_id
        self._tables = StateTables(location, warehouse=warehouse)
        self._spark_engine = spark_engine

    @property
    def ref(self) -> StateTableRef:
        return self._tables.ref(quarantine_table_name(self.pipeline))

    def append(self, frame: Any, *, step: str) -> int | None:
        """Append ``frame`` (pandas or Spark, with the broken rules' column); the version."""
        from pyspark.sql import functions as F

        engine = self._spark_engine()
        rows = engine.adopt(frame).select(
            "*", F.lit(step).alias(STEP_COLUMN), F.lit(self.run_id).alias(RUN_ID_COLUMN)
        )
        target, fmt = self.ref.engine_target
        spec = WriteSpec(
            target,
            fmt,
            mode="append",
            merge_schema=True,
            txn_app_id=f"odibi:{self.pipeline}:{step}:quarantine:{self.run_id}",
            txn_version=0,
            run_id=self.run_id,
        )
        with table_lock(self.ref.path):  # local Delta: one commit at a time, across processes
            written = engine.write(rows, spec, step=step)
        return written.delta_version
