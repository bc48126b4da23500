"""A classic cluster's session is taken as it is: no setting of it changes.

On a Databricks job cluster the session exists before the wheel's entry point runs. The
test builds one first, in its own process (the suite's shared session lives in this JVM),
with settings a cluster might have and the framework's local session would not, then runs
a Spark pipeline through ``odibi run``'s code path, on worker threads, with no ``spark=``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# A JVM of its own (about half a minute): run by `make test-slow`.
pytestmark = [pytest.mark.spark, pytest.mark.slow]

PIPELINE = """
pipeline: on_a_cluster
settings: {max_workers: 4}
steps:
  - {layer: ingest, name: read_a, value: a.csv, engine: spark, outputs: {data: a}}
  - {layer: ingest, name: read_b, value: b.csv, engine: spark, outputs: {data: b}}
  - layer: transform
    name: joined
    engine: spark
    value: "SELECT a.id, a.n + b.n AS total FROM a JOIN b ON a.id = b.id"
    inputs: {a: a, b: b}
    outputs: {data: joined}
  - {layer: store, name: save, value: out, engine: spark, params: {format: parquet}, inputs: {data: joined}}
"""

# Runs in the child process: the cluster's session first, then the CLI's run.
CLUSTER = """
import json, sys, threading
from pyspark.sql import SparkSession

builder = SparkSession.builder.master("local[2]").appName("the_cluster")
for key, value in json.loads(sys.argv[1]).items():
    builder = builder.config(key, value)
cluster = builder.getOrCreate()
watched = ("spark.sql.shuffle.partitions", "spark.sql.session.timeZone",
           "spark.sql.ansi.enabled", "spark.databricks.delta.snapshotPartitions",
           "spark.sql.warehouse.dir", "spark.app.name")
before = {key: cluster.conf.get(key, None) for key in watched}
threads = set()
original_sql = SparkSession.sql
def recording_sql(self, *args, **kwargs):
    threads.add((threading.current_thread().name, self is cluster))
    return original_sql(self, *args, **kwargs)
SparkSession.sql = recording_sql

from odibi_core.cli import main
code = main(["run", "p.yaml", "--quiet", "--no-state", "--lineage", "lineage.json"])

from odibi_core.engine import session
after = {key: cluster.conf.get(key, None) for key in watched}
print(json.dumps({
    "code": code,
    "before": before,
    "after": after,
    "same_context": cluster.sparkContext.applicationId == SparkSession.getActiveSession().sparkContext.applicationId,
    "built_a_session": session._session is not None,
    "sql_threads": sorted(threads),
    "rows": [list(row) for row in cluster.read.parquet("out").orderBy("id").collect()],
}))
"""


def test_a_running_classic_session_is_used_and_none_of_its_settings_change(tmp_path):
    (tmp_path / "a.csv").write_text("id,n\n1,10\n2,20\n")
    (tmp_path / "b.csv").write_text("id,n\n1,1\n2,2\n")
    (tmp_path / "p.yaml").write_text(PIPELINE)
    cluster_conf = {
        "spark.sql.shuffle.partitions": "17",
        "spark.sql.session.timeZone": "America/New_York",
        "spark.sql.ansi.enabled": "false",
        "spark.sql.warehouse.dir": str(tmp_path / "cluster_warehouse"),
        "spark.ui.enabled": "false",
    }
    env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable)
    for variable in ("SPARK_REMOTE", "DATABRICKS_RUNTIME_VERSION", "ODIBI_SPARK_MASTER"):
        env.pop(variable, None)
    done = subprocess.run(
        [sys.executable, "-c", CLUSTER, json.dumps(cluster_conf)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])

    assert seen["code"] == 0, done.stderr[-3000:]
    assert seen["after"] == seen["before"]
    assert seen["before"]["spark.sql.shuffle.partitions"] == "17"
    assert seen["before"]["spark.databricks.delta.snapshotPartitions"] is None
    assert seen["same_context"] and not seen["built_a_session"]
    # The transform ran on an executor thread, on the cluster's own session object.
    assert seen["sql_threads"] and all(is_cluster for _, is_cluster in seen["sql_threads"])
    assert any(name != "MainThread" for name, _ in seen["sql_threads"])
    assert seen["rows"] == [[1, 11], [2, 22]]

    lineage = json.loads(Path(tmp_path / "lineage.json").read_text())
    assert lineage["spark_session"] == {
        "source": "active",
        "spark.sql.session.timeZone": "America/New_York",
        "spark.sql.ansi.enabled": "false",
    }
    # Parity with the pandas engine assumes UTC and ANSI: the difference is said, once each.
    assert done.stderr.count("spark.sql.session.timeZone=America/New_York") == 1
    assert done.stderr.count("spark.sql.ansi.enabled=false") == 1
