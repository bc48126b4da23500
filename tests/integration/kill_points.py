"""Where the kill-and-resume tests kill the example pipeline, and what each kill must leave.

A point is an ``ODIBI_FAULT`` value (``odibi_core.core.faults``). In a fresh warehouse the
example pipeline (``pipelines/customer_pipeline.yaml``) reaches them in this order: three
ingests in parallel, then ``join_all``, ``add_flag`` and the store ``save_orders``, one after
the other. Each of the five steps before the store writes its output to a checkpoint table
(one Delta write each, in the order the steps finish); the store's MERGE into a table that
does not exist yet is the sixth Delta write; the audit comes after the last step.
"""

from __future__ import annotations

import random
import signal
from dataclasses import dataclass

from odibi_core.core import faults

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
