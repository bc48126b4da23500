"""URIs and Volumes paths reach Spark's reader and writer exactly as written.

A ``file:`` URI source and target round-trip through a pipeline; an ``s3://`` source is
handed to Spark unchanged (this machine has no S3 file system, so Spark's own "No
FileSystem for scheme" error comes back, wrapped in the step's error), and so is a
``/Volumes/...`` path, which Spark reports missing under its own name.
"""

from __future__ import annotations

import pytest

from odibi_core.core.step import Step
from odibi_core.orchestrator import Orchestrator

pytestmark = pytest.mark.spark


def _run(spark, *steps: Step):
    # No tracker: its samples and counts are other tests' subject, and cost Spark jobs here.
    return Orchestrator(
        steps=list(steps), engine_type="spark", spark=spark, enable_tracker=False
    ).execute()


def _read(name: str, value: str, key: str, **params) -> Step:
    return Step(layer="ingest", name=name, value=value, params=params, outputs={"data": key})


def _save(name: str, value: str, fmt: str, key: str) -> Step:
    return Step(layer="store", name=name, value=value, params={"format": fmt}, inputs={"data": key})


def test_file_uri_source_and_targets_round_trip_through_a_pipeline(spark, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = tmp_path / "in put" / "orders.csv"  # a space, written as is: Spark reads it so
    source.parent.mkdir()
    source.write_text("id,amount\n1,10\n2,20\n3,30\n")
    as_delta = f"file://{tmp_path}/out/orders_delta"
    as_parquet = f"file://{tmp_path}/out/orders_parquet"

    # csv -> Delta, then that Delta table (a pinned read of its local log) -> parquet.
    first = _run(
        spark, _read("read", f"file://{source}", "raw"), _save("save", as_delta, "delta", "raw")
    )
    second = _run(
        spark,
        _read("read_delta", as_delta, "rows", format="delta"),
        _save("copy", as_parquet, "parquet", "rows"),
    )

    assert first.success, first.error
    assert second.success, second.error
    copied = spark.read.parquet(str(tmp_path / "out" / "orders_parquet")).collect()
    assert sorted(tuple(row) for row in copied) == [(1, 10), (2, 20), (3, 30)]
    assert (tmp_path / "out" / "orders_delta" / "_delta_log").is_dir()
    # Nothing was written under the working directory as a mangled 'file:' path.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in put", "out"]


@pytest.mark.parametrize(
    ("value", "spark_says"),
    [
        ("s3://bucket/orders.csv", 'No FileSystem for scheme "s3"'),
        ("/Volumes/main/raw/files/orders.csv", "file:/Volumes/main/raw/files/orders.csv"),
    ],
)
def test_a_location_spark_cannot_reach_here_reaches_spark_unchanged(
    spark, tmp_path, monkeypatch, value, spark_says
):
    monkeypatch.chdir(tmp_path)

    result = _run(
        spark,
        _read("read_remote", value, "raw"),
        _save("save", str(tmp_path / "out"), "parquet", "raw"),
    )

    assert result.failed_nodes == ["read_remote"]
    message = result.errors["read_remote"]
    assert "step 'read_remote': " in message
    assert f"read csv '{value}'" in message  # the step and the location as written
    assert spark_says in message  # Spark's own error: it got the location unchanged
    assert str(tmp_path) not in message  # never resolved against the working directory
    assert list(tmp_path.iterdir()) == []
