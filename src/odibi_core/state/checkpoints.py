"""Checkpoints: what a run's finished steps produced, kept in Delta so a resume skips them.

When a step succeeds, each output a later step reads is written once to a Delta table of
its own (named from the pipeline, the run id and the data key, sanitised), and a row goes
into ``odibi_checkpoints``: which table and version hold the key, and the hash of the step's
definition. A store (no outputs) gets a row too, with the target version it committed. A
later execution of the same run restores every step whose definition is unchanged.

Rows of steps that finish while another step's rows are being committed wait and go
together in the next commit (a group commit): each step still returns only once its own
row is committed, so a step that reached ``node_complete`` always has its checkpoint, and a
kill at any moment loses only rows of steps that had not returned yet.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from odibi_core.core.config import StateLocation
from odibi_core.state.data_tables import read_frame, save_frame
from odibi_core.state.location import (
    CHECKPOINTS_TABLE,
    StateTableRef,
    StateTables,
    state_table_name,
)
from odibi_core.state.table import DeltaStateTable

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

CHECKPOINT_COLUMNS = (
    ("run_id", "string"),
    ("execution_id", "string"),
    ("pipeline", "string"),
    ("step", "string"),
    ("data_key", "string"),  # NULL for a step with no outputs (a store)
    ("table_name", "string"),  # the checkpoint table, or a store's target
    ("table_version", "long"),
    ("definition_hash", "string"),
    ("odibi_version", "string"),
    ("created_at", "timestamp"),
)


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint row: a data key (or a store's commit) of one step of a run."""

    step: str
    data_key: str | None
    table_name: str
    table_version: int | None
    definition_hash: str
    execution_id: str


class CheckpointManager:
    """Writes and reads one run's checkpoints under a state location."""

    def __init__(
        self,
        location: StateLocation,
        *,
        pipeline: str,
        run_id: str,
        spark_provider: Callable[[], SparkSession],
        warehouse: str | Path | None = None,
    ):
        self.tables = StateTables(location, warehouse=warehouse)
        self.pipeline = pipeline
        self.run_id = run_id
        self.rows = DeltaStateTable(
            self.tables.ref(CHECKPOINTS_TABLE),
            CHECKPOINT_COLUMNS,
            spark_provider=spark_provider,
            stats_columns=("run_id", "pipeline"),
        )
        self._commits = _GroupCommit(self.rows, prefix=f"odibi:checkpoint:{pipeline}")

    def data_table(self, key: str) -> StateTableRef:
        """The Delta table that holds ``key`` of this run (also a bundle task's handoff)."""
        return state_table_name("checkpoint", self.pipeline, key, self.run_id, location=self.tables)

    def earlier(self) -> dict[str, list[Checkpoint]]:
        """The latest checkpoints of this run, by step: a later execution's rows win."""
        rows = self.rows.read({"run_id": self.run_id, "pipeline": self.pipeline})
        rows.sort(key=lambda row: row["created_at"])
        latest: dict[tuple[str, str | None], Checkpoint] = {}
        for row in rows:
            latest[(row["step"], row["data_key"])] = _checkpoint(row)
        by_step: dict[str, list[Checkpoint]] = {}
        for checkpoint in latest.values():
            by_step.setdefault(checkpoint.step, []).append(checkpoint)
        return by_step

    def save(self, frame: Any, key: str, *, spark_engine: Any, step: str) -> tuple[str, int | None]:
        """Write ``frame`` (pandas or Spark) to ``key``'s table; its name and version."""
        return save_frame(self.data_table(key), frame, spark_engine=spark_engine, step=step)

    def restore(self, checkpoint: Checkpoint, *, engine: Any, step: str) -> Any:
        """The frame a checkpoint holds, as ``engine``'s frame (pandas or Spark)."""
        return read_frame(
            self.tables,
            checkpoint.table_name,
            checkpoint.table_version,
            engine=engine,
            step=step,
            what=f"checkpoint of '{checkpoint.data_key}'",
            fix="run the step again without --resume",
        )

    def record(
        self, step: str, entries: Mapping[str | None, tuple[str, int | None]], **identity: str
    ) -> None:
        """Commit one row per entry (data key -> table and version) of a finished step;
        returns once they are committed, perhaps together with other steps' rows."""
        from odibi_core import __version__

        now = datetime.now(timezone.utc)
        rows = [
            {
                "run_id": self.run_id,
                "execution_id": identity["execution_id"],
                "pipeline": self.pipeline,
                "step": step,
                "data_key": key,
                "table_name": table,
                "table_version": version,
                "definition_hash": identity["definition_hash"],
                "odibi_version": __version__,
                "created_at": now,
            }
            for key, (table, version) in entries.items()
        ]
        self._commits.commit(step, rows)


class _GroupCommit:
    """Commits rows handed in from several threads, in as few appends as waiting allows.

    A caller whose rows arrive while no commit runs commits them at once; rows arriving
    during a commit wait for it to end, then go together in one append. Every caller
    returns when its rows are committed, and raises the error of the commit that failed.
    A commit's ``txnAppId`` names its steps (one step: ``...:STEP``, as a lone commit had
    always been named), so a retried commit of the same steps in the same execution adds
    nothing, while the steps of two tasks sharing an execution id never collide.
    """

    def __init__(self, rows: DeltaStateTable, *, prefix: str):
        self.rows = rows
        self.prefix = prefix
        self._changed = threading.Condition()
        self._waiting: list[_Handed] = []
        self._committing = False

    def commit(self, step: str, rows: list[dict[str, Any]]) -> None:
        handed = _Handed(step, rows)
        with self._changed:
            self._waiting.append(handed)
            while not handed.done and self._committing:
                self._changed.wait()
            if handed.done:
                handed.raise_error()
                return
            batch, self._waiting, self._committing = self._waiting, [], True
        self._commit_batch(batch)
        handed.raise_error()

    def _commit_batch(self, batch: Sequence[_Handed]) -> None:
        error: BaseException | None = None
        executions = "+".join(sorted({row["execution_id"] for h in batch for row in h.rows}))
        steps = "+".join(sorted({handed.step for handed in batch}))
        try:
            self.rows.append(
                [row for handed in batch for row in handed.rows],
                txn_app_id=f"{self.prefix}:{executions}:{steps}",
                txn_version=0,
            )
        except BaseException as exc:
            error = exc
        with self._changed:
            for handed in batch:
                handed.done, handed.error = True, error
            self._committing = False
            self._changed.notify_all()


class _Handed:
    """One step's rows handed to a group commit, and how their commit ended."""

    def __init__(self, step: str, rows: list[dict[str, Any]]):
        self.step, self.rows = step, rows
        self.done = False
        self.error: BaseException | None = None

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error


def _checkpoint(row: Mapping[str, Any]) -> Checkpoint:
    return Checkpoint(
        step=row["step"],
        data_key=row["data_key"],
        table_name=row["table_name"],
        table_version=row["table_version"],
        definition_hash=row["definition_hash"],
        execution_id=row["execution_id"],
    )
