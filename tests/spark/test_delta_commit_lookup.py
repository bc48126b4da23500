"""A write to a local Delta table finds its own commit in the table's log files: the same
version and counts ``DESCRIBE HISTORY`` gives, without a Spark job for the lookup."""

import pytest

from odibi_core.engine.base import WriteSpec
from odibi_core.engine.delta_write import DeltaTarget, write_delta
from tests.integration.test_tracker_spark import jobs_run_by

pytestmark = pytest.mark.spark


def _history(spark, path):
    rows = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").collect()
    return {r.version: (r.operation, int(r.operationMetrics["numOutputRows"])) for r in rows}


def test_overwrite_and_append_report_the_version_and_rows_of_their_own_commit(spark, tmp_path):
    path = str(tmp_path / "t")
    target = DeltaTarget(path=path)
    first = write_delta(spark, spark.range(5), target, WriteSpec(path, "delta"), step="s")
    second = write_delta(
        spark, spark.range(3), target, WriteSpec(path, "delta", mode="append"), step="s"
    )
    third = write_delta(spark, spark.range(4), target, WriteSpec(path, "delta"), step="s")
    reported = [(w.delta_version, w.rows, w.count_source) for w in (first, second, third)]
    assert reported == [
        (0, 5, "commit_metrics"),
        (1, 3, "commit_metrics"),
        (2, 4, "commit_metrics"),
    ]
    assert _history(spark, path) == {0: ("WRITE", 5), 1: ("WRITE", 3), 2: ("WRITE", 4)}
    assert (first.created, third.version_before) == (True, 1)


def test_an_overwrite_costs_the_jobs_of_the_plain_writer_and_no_more(spark, tmp_path):
    frame = spark.range(50).selectExpr("id", "id * 2 AS twice")
    spec = WriteSpec(str(tmp_path / "warm"), "delta")
    write_delta(spark, frame, DeltaTarget(path=spec.target), spec, step="s")  # code paths loaded

    def plain():
        frame.write.format("delta").mode("overwrite").save(str(tmp_path / "plain"))

    def ours():
        spec = WriteSpec(str(tmp_path / "ours"), "delta")
        write_delta(spark, frame, DeltaTarget(path=spec.target), spec, step="s")

    assert jobs_run_by(spark, ours) == jobs_run_by(spark, plain)


def test_an_append_to_a_local_table_runs_one_spark_job(spark, tmp_path):
    """The local JVM's zone is UTC, so Delta does not rebuild the table's state after each
    commit to check it (a Spark job or two per write under any other default zone)."""
    path = str(tmp_path / "t")
    spark.range(3).write.format("delta").save(path)
    spark.range(3).write.format("delta").mode("append").save(path)  # code paths loaded
    assert spark.sparkContext._jvm.java.util.TimeZone.getDefault().getID() == "UTC"
    assert (
        jobs_run_by(spark, lambda: spark.range(3).write.format("delta").mode("append").save(path))
        == 1
    )
