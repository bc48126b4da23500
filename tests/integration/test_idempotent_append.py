"""Appends are exactly-once per run: rerunning a run (resume, repair) adds no rows twice."""

import pandas as pd
import pytest

from odibi_core import Step
from odibi_core.orchestrator import Orchestrator

pytestmark = pytest.mark.spark


def test_rerunning_the_same_run_id_does_not_duplicate_an_append(spark, tmp_path):
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

    def run(run_id):
        result = Orchestrator(
            steps=steps, spark=spark, run_id=run_id, pipeline_name="events"
        ).execute()
        assert result.success, result.error
        return spark.read.format("delta").load(str(target)).count()

    assert run("run-1") == 3
    assert run("run-1") == 3  # same run again: Delta skips the already-committed transaction
    assert run("run-2") == 6  # a new run appends
