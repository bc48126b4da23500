"""The engine contract: what a step needs from pandas (DuckDB) or Spark (Delta).

Both engines give the same answer for the same step: SQL is written in the Spark SQL
dialect everywhere, and schemas are described with Arrow type names on both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from odibi_core.core.snapshot import CountSource
from odibi_core.core.write_spec import WriteSpec

__all__ = [
    "DeferredCount",
    "EngineContext",
    "Frame",
    "ReadSpec",
    "WriteResult",
    "WriteSpec",
]

Frame = Any  # a pandas.DataFrame or a pyspark.sql.DataFrame; the pure core never imports either


@dataclass(frozen=True)
class WriteResult:
    """What a write reports. ``rows`` is None only when the format cannot tell for free.

    A Delta write also says how to undo it: ``version_before`` is the table's version just
    before the write's commit (``delta_version``); ``created`` means the write created the
    table, so there is no version to restore to.
    """

    rows: int | None
    rows_inserted: int | None = None
    rows_updated: int | None = None
    delta_version: int | None = None
    count_source: CountSource = "unknown"  # commit_metrics, in_memory, already_committed
    sample: list[dict[str, Any]] | None = None  # rows of what was written, when free
    count_reason: str | None = None  # why the count is what it is, e.g. already committed
    version_before: int | None = None
    created: bool = False
    mode: str | None = None  # overwrite | append | merge, for Delta writes
    table_sql: str | None = None  # the Delta table as SQL text, e.g. delta.`/path`

    @property
    def restore_sql(self) -> str | None:
        """The statement that undoes this overwrite or merge; None when there is none."""
        if self.table_sql is None or self.version_before is None or self.mode == "append":
            return None
        return f"RESTORE TABLE {self.table_sql} TO VERSION AS OF {self.version_before}"

    def recovery(self) -> dict[str, Any] | None:
        """The lineage's ``write`` record of a Delta write: versions, and how to undo it."""
        if self.table_sql is None:
            return None
        return {
            "table": self.table_sql,
            "mode": self.mode,
            "version_before": self.version_before,
            "version_after": self.delta_version,
            "created": self.created,
            "already_committed": self.count_source == "already_committed",
            "restore": self.restore_sql,
        }


@dataclass(frozen=True)
class ReadSpec:
    source: str  # a path (resolved) or a table name (validated)
    format: str  # csv | json | parquet | delta | table
    options: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class DeferredCount(Protocol):
    """A row count that exists once an action has run over an observed frame."""

    def get(self, timeout: float) -> int | None: ...

    @property
    def reason(self) -> str | None:
        """Why the count is missing, when ``get`` returned None."""


@runtime_checkable
class EngineContext(Protocol):
    """One engine, for one pipeline run. Safe to call from several threads at once."""

    name: str  # "pandas" or "spark"

    def owns(self, frame: Frame) -> bool:
        """True when ``frame`` is this engine's native frame type."""

    def read(self, spec: ReadSpec, *, step: str) -> Frame: ...

    def write(self, frame: Frame, spec: WriteSpec, *, step: str) -> WriteResult: ...

    def sql(self, query: str, inputs: Mapping[str, Frame], *, step: str) -> Frame:
        """Run Spark-SQL text over ``inputs``, referred to by their logical names."""

    def call(
        self,
        fn: Callable[..., Any],
        inputs: Mapping[str, Frame],
        params: Mapping[str, Any],
        *,
        step: str,
    ) -> Any:
        """Call ``fn(**inputs, **params)``; returns a frame or a dict of frames."""

    def schema(self, frame: Frame) -> list[str]:
        """``["col: arrow_type", ...]``, e.g. ``"id: int64"``, ``"ts: timestamp[us, tz=UTC]"``."""

    def count(self, frame: Frame) -> int:
        """Exact row count. On Spark this runs a job: the tracker avoids calling it."""

    def sample(self, frame: Frame, n: int) -> list[dict[str, Any]]:
        """Up to ``n`` rows as dicts of JSON-safe values."""

    def to_arrow(self, frame: Frame) -> Any: ...

    def from_arrow(self, table: Any) -> Frame: ...

    def adopt(self, frame: Frame) -> Frame:
        """Return ``frame`` as this engine's frame, converting through Arrow if needed."""

    def close(self) -> None:
        """Release per-run resources (temp views, connections). Called once at run end."""
