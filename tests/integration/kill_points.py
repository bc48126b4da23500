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
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from odibi_core.core import faults
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
