"""Crash safety: ``odibi run`` of the example pipeline, killed at a chosen point
(``ODIBI_FAULT``), then resumed, ends with the targets a clean run leaves.

Only the killed run is a process of its own (with its own JVM); the clean run and the
resume run here, on the session's SparkSession. After the kill every Delta table under the
warehouse is readable; the resume restores exactly the steps the killed run checkpointed
(CACHED, "restored from checkpoint") and runs the rest; every target then equals the clean
run's, with each order once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from chispa import assert_df_equality

from odibi_core.core import faults, tables
from odibi_core.core.step import NodeState
from odibi_core.orchestrator import Orchestrator, RunContext
from odibi_core.state.location import CHECKPOINTS_TABLE, StateTables, default_local_location
from tests.integration.kill_points import (
    RUN_ID,
    STEPS,
    STORE,
    TARGETS,
    Killed,
    KilledRuns,
    expected,
    seeded_points,
)
from tests.reliability.test_concurrency import _example as example  # a small copy of the data

pytestmark = pytest.mark.spark

# Before the store, in the middle of the store's first write (data file there, no commit),
# and after every step (the audit rows committed, the run row not).
DEFAULT_POINTS = (
    "kill_after:node_complete:2",
    "kill_during:delta_write:6",
    "kill_during:audit_write:1",
)
SEED = 11
SLOW_POINTS = seeded_points(SEED, 10, besides=DEFAULT_POINTS)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """The example pipeline and its data, generated once; each test copies it."""
    folder = tmp_path_factory.mktemp("example")
    example(folder)
    return folder


@pytest.fixture(scope="module")
def killed_runs(request, source, tmp_path_factory) -> Iterator[KilledRuns]:
    """The killed runs of the tests selected in this module, started ahead of them."""
    points = [
        item.callspec.params["point"]
        for item in request.session.items
        if item.module is request.module and hasattr(item, "callspec")
    ]
    runs = KilledRuns(source, tmp_path_factory.mktemp("killed"), points)
    yield runs
    runs.stop()


@pytest.fixture(scope="module")
def clean(spark, source, killed_runs, tmp_path_factory) -> Path:
    """The warehouse of one clean run (no state, no checkpoints), shared by the tests; it
    runs while the first killed runs start."""
    warehouse = tmp_path_factory.mktemp("clean_warehouse")
    result = Orchestrator(
        pipeline=str(source / "customer_pipeline.yaml"),
        spark=spark,
        context=RunContext(warehouse=warehouse),
    ).execute()
    assert result.success, result.error
    return warehouse


@pytest.mark.parametrize("point", DEFAULT_POINTS)
def test_a_killed_run_resumes_to_the_targets_of_a_clean_run(spark, killed_runs, clean, point):
    killed = _killed(killed_runs, point)
    target = tables.local_table_path(TARGETS[0], killed.warehouse)
    committed = sorted((target / "_delta_log").glob("*.json"))
    if point == "kill_during:delta_write:6":  # the store's write, before its commit
        assert f"data file {target}/" in killed.err and "commit pending" in killed.err, killed.err
        assert not committed and list(target.glob("*.parquet"))  # an orphaned data file
    else:  # the store never started, or committed before the audit
        assert bool(committed) == (point == "kill_during:audit_write:1"), committed
    _resume_and_compare(spark, killed, clean)


@pytest.mark.slow  # ten JVMs of their own, one per kill: runs under `make test-slow`
@pytest.mark.parametrize("point", SLOW_POINTS)
def test_a_run_killed_at_a_seeded_point_resumes_to_the_targets_of_a_clean_run(
    spark, killed_runs, clean, point
):
    _resume_and_compare(spark, _killed(killed_runs, point), clean)


def _killed(killed_runs: KilledRuns, point: str) -> Killed:
    """``odibi run --run-id`` of a copy of the example, stopped by ``point``."""
    killed = killed_runs.ended(point)
    fired = f"odibi fault: {faults.ENV_VAR}={faults.parse(point)} fired"
    assert fired in killed.err, (
        f"{faults.ENV_VAR}={point} did not fire: the run ended with exit code "
        f"{killed.exit_code} before reaching it; choose a point the run reaches\n{killed.err}"
    )
    assert killed.exit_code == expected(point).exit_code, killed.err
    return killed


def _resume_and_compare(spark, killed: Killed, clean: Path) -> None:
    folder, warehouse, point = killed.folder, killed.warehouse, killed.point
    _assert_every_delta_table_reads(spark, warehouse)
    checkpointed = _checkpointed_steps(spark, warehouse)
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


def _assert_every_delta_table_reads(spark, warehouse: Path) -> None:
    """A kill at any point leaves every Delta table readable (its commits are atomic); a
    folder whose log holds no commit yet is no table."""
    for log in sorted(warehouse.rglob("_delta_log")):
        if any(log.glob("*.json")):
            spark.read.format("delta").load(str(log.parent)).count()


def _checkpointed_steps(spark, warehouse: Path) -> set[str]:
    """The steps of the killed run recorded in ``odibi_checkpoints``."""
    table = StateTables(default_local_location(), warehouse=warehouse).ref(CHECKPOINTS_TABLE)
    if not (table.path / "_delta_log").is_dir():
        return set()
    rows = spark.read.format("delta").load(str(table.path)).where(f"run_id = '{RUN_ID}'")
    return {row.step for row in rows.select("step").collect()}


def _versions(warehouse: Path) -> dict[str, list[str]]:
    """The commit files of every target."""
    logs = {name: tables.local_table_path(name, warehouse) / "_delta_log" for name in TARGETS}
    return {name: sorted(p.name for p in log.glob("*.json")) for name, log in logs.items()}


def _assert_targets_equal(spark, warehouse: Path, clean: Path, folder: Path) -> None:
    """Every target equals the clean run's: each order of the source exactly once."""
    orders = set(pd.read_parquet(folder / "data" / "orders.parquet")["order_id"])
    for name in TARGETS:
        resumed = spark.read.format("delta").load(str(tables.local_table_path(name, warehouse)))
        reference = spark.read.format("delta").load(str(tables.local_table_path(name, clean)))
        assert_df_equality(resumed, reference, ignore_row_order=True)
        ids = [row.order_id for row in resumed.select("order_id").collect()]
        assert len(ids) == len(set(ids)) == len(orders), "duplicated or lost rows"
        assert set(ids) == orders
