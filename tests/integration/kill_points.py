"""Where the kill-and-resume tests kill the example pipeline, and what each kill must leave.

A point is an ``ODIBI_FAULT`` value (``odibi_core.core.faults``). In a fresh warehouse the
example pipeline (``pipelines/customer_pipeline.yaml``) reaches them in this order: three
ingests in parallel, then ``join_all``, ``add_flag`` and the store ``save_orders``, one after
the other. Each of the five steps before the store writes its output to a checkpoint table
(one Delta write each, in the order the steps finish); the store's MERGE into a table that
does not exist yet is the sixth Delta write; the audit comes after the last step.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from chispa import assert_df_equality

from odibi_core.core import faults, tables
from odibi_core.core.step import NodeState
from odibi_core.engine.delta_snapshot import read_local_delta
from odibi_core.orchestrator import Orchestrator, RunContext
from odibi_core.state.location import CHECKPOINTS_TABLE, StateTables, default_local_location
from tests.reliability.conftest import odibi_process

RUN_ID = "killed-run"
INGESTS = ("read_customers", "read_orders", "read_products")
STEPS = (*INGESTS, "join_all", "add_flag", "save_orders")
STORE = "save_orders"
TARGETS = ("main.sales.orders_enriched",)  # every store target of the example pipeline
DELTA_WRITES = len(STEPS)  # five checkpoint writes, then the store's


@dataclass(frozen=True)
class Expected:
    """What a fault must leave behind: its exit code, and how many steps are checkpointed."""

    exit_code: int
    fewest: int  # steps recorded in odibi_checkpoints at least
    most: int  # and at most

    def allows(self, checkpointed: int) -> bool:
        return self.fewest <= checkpointed <= self.most


def expected(point: str) -> Expected:
    """The bounds that follow from the pipeline's shape (module docstring).

    A step is checkpointed before its ``node_complete`` event. Only the three ingests run at
    once, so below step 4 an ingest running beside the one the fault hits may finish too.
    A SIGTERM stops the run gracefully: the steps already running may still finish, so it
    sets no upper bound.
    """
    fault = faults.parse(point)
    n, everything = fault.n, len(STEPS)
    if fault.point == "audit_write":
        return Expected(-signal.SIGKILL, everything, everything)
    if fault.action == "term_after":
        fewest = n if fault.point == "node_complete" else (n - 1 if n > len(INGESTS) else 0)
        return Expected(128 + signal.SIGTERM, fewest, everything)
    if fault.point == "node_complete":
        return Expected(-signal.SIGKILL, n, max(n, len(INGESTS)))
    # node_start:n and delta_write:n: the n-th step has started (or is writing), not finished.
    fewest = n - 1 if n > len(INGESTS) else 0
    return Expected(-signal.SIGKILL, fewest, n - 1)


def all_points() -> list[str]:
    """Every point the example pipeline reaches in a fresh warehouse (module docstring)."""
    points = [
        f"{action}:{point}:{n}"
        for action in ("kill_after", "term_after")
        for point in faults.AFTER_POINTS
        for n in range(1, len(STEPS) + 1)
    ]
    points += [f"kill_during:delta_write:{n}" for n in range(1, DELTA_WRITES + 1)]
    return [*points, "kill_during:audit_write:1"]


def seeded_points(seed: int, count: int, *, besides: tuple[str, ...] = ()) -> list[str]:
    """``count`` points drawn with ``random.Random(seed)``, none of ``besides``."""
    pool = [point for point in all_points() if point not in besides]
    return random.Random(seed).sample(pool, count)


@dataclass(frozen=True)
class Killed:
    """A killed run: its copy of the example, its warehouse, how it ended."""

    point: str
    folder: Path
    warehouse: Path
    exit_code: int
    err: str


class KilledRuns:
    """The killed runs of a module's tests, started before their tests ask, ``ahead`` at once.

    A killed run is a process with a JVM of its own that spends most of its time starting;
    the tests check and resume on the shared session meanwhile, so on a small machine the
    runs overlap with each other and with the clean run and the resumes.
    """

    def __init__(self, source: Path, root: Path, points: Sequence[str], *, ahead: int = 3):
        self.source, self.root, self.ahead = source, root, ahead
        self.pending = list(dict.fromkeys(points))
        self.running: dict[str, subprocess.Popen[str]] = {}
        self._top_up()

    def ended(self, point: str, timeout: float = 600) -> Killed:
        """Wait for ``point``'s run (started now if it was not)."""
        if point not in self.running:
            self._start(point)
        process = self.running.pop(point)
        try:
            _, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            _, err = process.communicate()
            raise AssertionError(
                f"odibi run with {point} did not end in {timeout} s:\n{err}"
            ) from None
        finally:
            self._top_up()
        folder = self._folder(point)
        return Killed(point, folder / "work", folder / "warehouse", process.returncode, err)

    def stop(self) -> None:
        """Kill the runs no test waited for (the session stopped early)."""
        for process in self.running.values():
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
        self.running.clear()

    def _top_up(self) -> None:
        while self.pending and len(self.running) < self.ahead:
            self._start(self.pending[0])

    def _start(self, point: str) -> None:
        if point in self.pending:
            self.pending.remove(point)
        folder = self._folder(point)
        work = shutil.copytree(self.source, folder / "work")
        self.running[point] = odibi_process(
            ["run", "customer_pipeline.yaml", "--run-id", RUN_ID, "--quiet"],
            Path(work),
            env={"ODIBI_WAREHOUSE": str(folder / "warehouse"), faults.ENV_VAR: point},
        )

    def _folder(self, point: str) -> Path:
        return self.root / point.replace(":", "_")


def killed_at(killed_runs: KilledRuns, point: str) -> Killed:
    """``odibi run --run-id`` of a copy of the example, stopped by ``point``."""
    killed = killed_runs.ended(point)
    fired = f"odibi fault: {faults.ENV_VAR}={faults.parse(point)} fired"
    assert fired in killed.err, (
        f"{faults.ENV_VAR}={point} did not fire: the run ended with exit code "
        f"{killed.exit_code} before reaching it; choose a point the run reaches\n{killed.err}"
    )
    assert killed.exit_code == expected(point).exit_code, killed.err
    return killed


def resume_and_compare(spark, killed: Killed, clean: Path, *, settle: float = 0.0) -> None:
    """``settle``: over Spark Connect the server may finish a write the killed client had
    sent; the checkpoints are read until two reads ``settle`` seconds apart agree."""
    folder, warehouse, point = killed.folder, killed.warehouse, killed.point
    _assert_every_delta_table_reads(spark, warehouse)
    checkpointed = _checkpointed_steps(spark, warehouse)
    while settle and checkpointed != (again := _settled_read(spark, warehouse, settle)):
        checkpointed = again
    assert expected(point).allows(len(checkpointed)), (point, checkpointed)
    target_versions = _versions(warehouse)

    result = Orchestrator(
        pipeline=str(folder / "customer_pipeline.yaml"),
        resume_from=RUN_ID,
        spark=spark,
        context=RunContext(warehouse=warehouse),
    ).execute()

    assert result.success, result.error
    assert result.node_states == {
        step: NodeState.CACHED if step in checkpointed else NodeState.SUCCESS for step in STEPS
    }
    lineage = {s["step_name"]: s for s in result.tracker.to_lineage()["steps"]}
    restored = {s: r["restored_from"] for s, r in lineage.items() if "restored_from" in r}
    assert restored == {
        s: f"restored from checkpoint of execution {RUN_ID}.1" for s in checkpointed
    }
    if STORE in checkpointed:  # the store was restored: its targets were not written again
        assert _versions(warehouse) == target_versions
    _assert_targets_equal(spark, warehouse, clean, folder)


def _settled_read(spark, warehouse: Path, seconds: float) -> set[str]:
    time.sleep(seconds)
    return _checkpointed_steps(spark, warehouse)


def _assert_every_delta_table_reads(spark, warehouse: Path) -> None:
    """A kill at any point leaves every Delta table readable (its commits are atomic); a
    folder whose log holds no commit yet is no table.

    Every commit file is parsed and every data file of the latest version read: in this
    process where the table is plain (``read_local_delta``), else by Spark, collecting the
    rows (a ``count()`` is answered from the log's statistics, without the data files).
    The resume then reads the tables it needs through Spark as well.
    """
    tables = [
        log.parent for log in sorted(warehouse.rglob("_delta_log")) if any(log.glob("*.json"))
    ]
    for path in tables:
        if read_local_delta(str(path)) is None:  # a table of a kind, or a file, it leaves to Spark
            spark.read.format("delta").load(str(path)).collect()


def _checkpointed_steps(spark, warehouse: Path) -> set[str]:
    """The steps of the killed run recorded in ``odibi_checkpoints``."""
    table = StateTables(default_local_location(), warehouse=warehouse).ref(CHECKPOINTS_TABLE)
    if not (table.path / "_delta_log").is_dir():
        return set()
    local = read_local_delta(str(table.path))
    if local is not None:
        rows = local.select(["run_id", "step"]).to_pylist()
        return {row["step"] for row in rows if row["run_id"] == RUN_ID}
    rows = spark.read.format("delta").load(str(table.path)).where(f"run_id = '{RUN_ID}'")
    return {row.step for row in rows.select("step").collect()}


def _versions(warehouse: Path) -> dict[str, list[str]]:
    """The commit files of every target."""
    logs = {name: tables.local_table_path(name, warehouse) / "_delta_log" for name in TARGETS}
    return {name: sorted(p.name for p in log.glob("*.json")) for name, log in logs.items()}


def _assert_targets_equal(spark, warehouse: Path, clean: Path, folder: Path) -> None:
    """Every target equals the clean run's: each order of the source exactly once.

    Each table is read once: the resumed target here, the clean run's once per module
    (its rows kept), and chispa compares the rows as local frames.
    """
    orders = set(pd.read_parquet(folder / "data" / "orders.parquet")["order_id"])
    for name in TARGETS:
        resumed = _local_copy(spark, tables.local_table_path(name, warehouse))
        assert_df_equality(resumed, _reference(spark, clean, name), ignore_row_order=True)
        ids = [row.order_id for row in resumed.select("order_id").collect()]
        assert len(ids) == len(set(ids)) == len(orders), "duplicated or lost rows"
        assert set(ids) == orders


_REFERENCES: dict[tuple[int, str, str], Any] = {}


def _reference(spark, clean: Path, name: str) -> Any:
    """The clean run's target ``name``, read once per warehouse and session."""
    key = (id(spark), str(clean), name)
    if key not in _REFERENCES:
        _REFERENCES[key] = _local_copy(spark, tables.local_table_path(name, clean))
    return _REFERENCES[key]


def _local_copy(spark, path: Path) -> Any:
    """A Delta table's rows, read once, as a frame of local rows with the table's schema."""
    frame = spark.read.format("delta").load(str(path))
    return spark.createDataFrame(frame.collect(), schema=frame.schema)
