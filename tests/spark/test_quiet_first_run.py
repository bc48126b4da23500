"""The first `odibi run` on a fresh machine: one line about the Delta jars, no Ivy output.

The machine is made fresh by an empty odibi_core cache and an empty Ivy home; the jars
come from a Maven repository built in tmp_path out of the Ivy cache local Spark already
uses, so no network is needed.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from odibi_core.engine.delta_jars import FETCH_MESSAGE
from tests.spark.conftest import fresh_machine

PIPELINE = """
pipeline: first_run
steps:
  - {layer: ingest, name: read, value: in.csv, outputs: {data: raw}}
  - {layer: store, name: save, value: out, params: {format: delta}, inputs: {data: raw}}
"""

# What Ivy and the JVM print when their output reaches the terminal.
CHATTER = (":: resolving", "confs:", "found io.delta", "downloading", "incubator", "log4j")


@pytest.mark.slow
def test_a_first_run_says_one_line_about_the_jars_and_nothing_of_ivy_or_the_jvm(
    maven_repository, tmp_path, monkeypatch
):
    fresh_machine(tmp_path, monkeypatch, maven_repository.as_uri() + "/")
    (tmp_path / "in.csv").write_text("n\n1\n2\n3\n")
    (tmp_path / "p.yaml").write_text(PIPELINE)
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    env["ODIBI_WAREHOUSE"] = str(tmp_path / "warehouse")
    run = [sys.executable, "-m", "odibi_core.cli", "run", "p.yaml", "--no-state"]
    done = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)

    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == FETCH_MESSAGE
    assert done.stderr.count(FETCH_MESSAGE) == 1
    assert not [line for line in lines if any(word in line for word in CHATTER)]
    assert "save SUCCESS" in done.stderr and "3 rows" in done.stderr
    assert "found io.delta" in (tmp_path / "cache" / "ivy-resolve.log").read_text()
    assert "Using incubator modules" in (tmp_path / "cache" / "spark-jvm.log").read_text()

    again = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr
    assert FETCH_MESSAGE not in again.stderr  # resolved once, remembered
