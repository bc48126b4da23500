"""Crash safety over Spark Connect (what serverless is): ``odibi run`` of the example
pipeline as a client of the suite's server, killed at a chosen point, then resumed,
ends with the targets a clean run leaves.

The killed runs are processes of their own that share the suite's server, so no kill
starts a JVM. The same checks as the classic kill tests (tests/integration/kill_points.py):
every Delta table readable after the kill, exactly the checkpointed steps restored, every
target equal to the clean run's with each order once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from odibi_core.orchestrator import Orchestrator, RunContext
from tests.integration.kill_points import KilledRuns, killed_at, resume_and_compare
from tests.reliability.test_concurrency import _example as example  # a small copy of the data

pytestmark = [pytest.mark.spark, pytest.mark.connect]

# After the second step (its checkpoint committed, the store not started), in the middle of
# the store's write (its data file there; the server may still commit it after the client
# died, so the resume finds the MERGE done or not), and after every step (the audit rows
# committed, the run row not). The classic driver's kill at the same points runs under
# `make test-slow` (tests/integration/test_kill_resume.py).
POINTS = ("kill_after:node_complete:2", "kill_during:delta_write:6", "kill_during:audit_write:1")


@pytest.fixture(scope="module")
def killed_runs(spark, tmp_path_factory) -> Iterator[KilledRuns]:
    assert os.environ["SPARK_REMOTE"]  # the killed runs reach the suite's server through it
    source = tmp_path_factory.mktemp("example")
    example(source)
    runs = KilledRuns(source, tmp_path_factory.mktemp("killed"), POINTS)
    yield runs
    runs.stop()


@pytest.fixture(scope="module")
def clean(spark, killed_runs, tmp_path_factory) -> Path:
    warehouse = tmp_path_factory.mktemp("clean_warehouse")
    result = Orchestrator(
        pipeline=str(killed_runs.source / "customer_pipeline.yaml"),
        spark=spark,
        context=RunContext(warehouse=warehouse),
    ).execute()
    assert result.success, result.error
    return warehouse


@pytest.mark.parametrize("point", POINTS)
def test_a_killed_connect_client_resumes_to_the_targets_of_a_clean_run(
    spark, killed_runs, clean, point
):
    resume_and_compare(spark, killed_at(killed_runs, point), clean, settle=1.0)
