"""Parallel SQL steps that all call their input `data` never see each other's frames."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest

from odibi_core.engine.pandas_engine import PandasEngineContext
from odibi_core.engine.spark_engine import SparkEngineContext

pytestmark = pytest.mark.spark

STEPS = 16
QUERY = (
    "SELECT count(*) AS n, sum(a.id) AS total, min(b.id) AS low "
    "FROM data a JOIN data b ON a.id = b.id"
)


def frame_for(step: int) -> pd.DataFrame:
    return pd.DataFrame({"id": [step * 100 + k for k in range(5)]})


def expected_for(step: int) -> dict:
    ids = frame_for(step)["id"].tolist()
    return {"n": 5, "total": sum(ids), "low": min(ids)}


def run_steps_in_parallel(engine) -> dict[int, dict]:
    def run(step: int) -> dict:
        frame = engine.adopt(frame_for(step))
        result = engine.sql(QUERY, {"data": frame}, step=f"step_{step}")
        (row,) = engine.to_arrow(result).to_pylist()
        return row

    with ThreadPoolExecutor(max_workers=STEPS) as pool:
        return dict(zip(range(STEPS), pool.map(run, range(STEPS))))


def test_parallel_pandas_steps_are_isolated():
    results = run_steps_in_parallel(PandasEngineContext(duckdb_threads=1))
    assert results == {step: expected_for(step) for step in range(STEPS)}


def test_parallel_spark_steps_are_isolated_and_views_dropped_on_close(spark, spark_warehouse):
    engine = SparkEngineContext(lambda: spark, warehouse=spark_warehouse)
    results = run_steps_in_parallel(engine)
    assert results == {step: expected_for(step) for step in range(STEPS)}

    # Views outlive the steps (Spark Connect analyses them lazily) until the run closes.
    views = engine.views
    assert len(views) == STEPS and len(set(views)) == STEPS
    listed = {t.name for t in spark.catalog.listTables() if t.name.startswith("odibi_")}
    assert set(views) <= listed

    engine.close()
    assert engine.views == []
    remaining = {t.name for t in spark.catalog.listTables() if t.name.startswith("odibi_")}
    assert remaining.isdisjoint(views)
