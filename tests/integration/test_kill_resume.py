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

import pytest

from odibi_core.core import tables
from odibi_core.orchestrator import Orchestrator, RunContext
from tests.integration.kill_points import (
    TARGETS,
    KilledRuns,
    killed_at,
    resume_and_compare,
    seeded_points,
)
from tests.reliability.test_concurrency import _example as example  # a small copy of the data

pytestmark = pytest.mark.spark

# Before the store, in the middle of the store's first write (data file there, no commit),
# and after every step (the audit rows committed, the run row not).
THREE_POINTS = (
    "kill_after:node_complete:2",
    "kill_during:delta_write:6",
    "kill_during:audit_write:1",
)
# A killed run here starts a JVM of its own, so these run with `make test-slow`; the same
# three points run by default over Spark Connect, whose killed runs share the suite's
# server (tests/connect/test_kill_resume_connect.py).
SEED = 11
SLOW_POINTS = [*THREE_POINTS, *seeded_points(SEED, 10, besides=THREE_POINTS)]


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


@pytest.mark.slow  # thirteen JVMs of their own, one per kill: runs under `make test-slow`
@pytest.mark.parametrize("point", SLOW_POINTS)
def test_a_run_killed_at_a_seeded_point_resumes_to_the_targets_of_a_clean_run(
    spark, killed_runs, clean, point
):
    killed = killed_at(killed_runs, point)
    if point in THREE_POINTS:
        _assert_the_store_state(killed, point)
    resume_and_compare(spark, killed, clean)


def _assert_the_store_state(killed, point: str) -> None:
    """What a classic driver's kill leaves of the store's target."""
    target = tables.local_table_path(TARGETS[0], killed.warehouse)
    committed = sorted((target / "_delta_log").glob("*.json"))
    if point == "kill_during:delta_write:6":  # the store's write, before its commit
        assert f"data file {target}/" in killed.err and "commit pending" in killed.err, killed.err
        assert not committed and list(target.glob("*.parquet"))  # an orphaned data file
    else:  # the store never started, or committed before the audit
        assert bool(committed) == (point == "kill_during:audit_write:1"), committed
