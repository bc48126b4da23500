"""Appends are exactly-once per run: rerunning a run (resume, repair) adds no rows twice."""

import pandas as pd
import pytest

from odibi_core import Step
from odibi_core.orchestrator import Orchestrator

pytestmark = pytest.mark.spark


def _append_pipeline(tmp_path):
    """Three ids read from a csv and appended to a Delta table; the steps and the target."""
    pd.DataFrame({"id": [1, 2, 3]}).to_csv(tmp_path / "in.csv", index=False)
    target = tmp_path / "events"
    steps = [
        Step(layer="ingest", name="read", value=str(tmp_path / "in.csv"), outputs={"data": "raw"}),
        Step(
            layer="store",
            name="append",
            value=str(target),
            params={"format": "delta", "mode": "append"},
            inputs={"data": "raw"},
        ),
    ]
    return steps, target


def test_rerunning_the_same_run_id_does_not_duplicate_an_append(spark, tmp_path):
    steps, target = _append_pipeline(tmp_path)

    def run(run_id):
        result = Orchestrator(
            steps=steps, spark=spark, run_id=run_id, pipeline_name="events"
        ).execute()
        assert result.success, result.error
        return spark.read.format("delta").load(str(target)).count()

    assert run("run-1") == 3
    assert run("run-1") == 3  # same run again: Delta skips the already-committed transaction
    assert run("run-2") == 6  # a new run appends


def test_an_append_retried_three_times_leaves_one_copy_of_each_row(spark, tmp_path):
    steps, target = _append_pipeline(tmp_path)

    class LostAfterCommit:
        """The append commits, then the task dies before it can report: three times."""

        failures = 0

        def __init__(self, inner):
            self.inner = inner

        def __call__(self, call):
            run = self.inner(call)
            if call.step.name == "append" and LostAfterCommit.failures < 3:
                LostAfterCommit.failures += 1
                raise ConnectionError("connection to the driver lost after the commit")
            return run

    result = Orchestrator(
        steps=steps,
        spark=spark,
        pipeline_name="retried",
        max_retries=3,
        retry_delay=0.0,
        layers=[LostAfterCommit],
    ).execute()
    assert result.success, result.error
    assert result.attempts["append"] == 4
    rows = spark.read.format("delta").load(str(target)).orderBy("id")
    assert [r.id for r in rows.collect()] == [1, 2, 3]
    history = spark.sql(f"DESCRIBE HISTORY delta.`{target}`").collect()
    assert len(history) == 1  # the three retries committed nothing


def test_overwrite_and_merge_rerun_and_retried_after_commit_keep_one_copy(spark, tmp_path):
    pd.DataFrame({"id": [1, 2, 3], "v": ["a", "b", "c"]}).to_csv(tmp_path / "in.csv", index=False)
    read = Step(layer="ingest", name="read", value=str(tmp_path / "in.csv"), outputs={"data": "r"})
    stores = [
        Step(
            layer="store",
            name=mode,
            value=str(tmp_path / mode),
            params={"format": "delta", "mode": mode, **({"merge_keys": ["id"]} if merge else {})},
            inputs={"data": "r"},
        )
        for mode, merge in (("overwrite", False), ("merge", True))
    ]

    class LostAfterCommit:
        """Each store commits, then its task dies before it can report: once."""

        lost: set[str] = set()

        def __init__(self, inner):
            self.inner = inner

        def __call__(self, call):
            run = self.inner(call)
            if call.step.layer == "store" and call.step.name not in LostAfterCommit.lost:
                LostAfterCommit.lost.add(call.step.name)
                raise ConnectionError("connection to the driver lost after the commit")
            return run

    for options in ({"layers": [LostAfterCommit], "max_retries": 1, "retry_delay": 0.0}, {}):
        result = Orchestrator(
            steps=[read, *stores], spark=spark, run_id="same-run", pipeline_name="twice", **options
        ).execute()
        assert result.success, result.error
    for mode in ("overwrite", "merge"):
        rows = spark.read.format("delta").load(str(tmp_path / mode)).orderBy("id").collect()
        assert [(r.id, r.v) for r in rows] == [(1, "a"), (2, "b"), (3, "c")], mode
