"""A first local start resolves the Delta jars quietly, before any session starts.

These tests run Ivy (a JVM of its own) and, for the quiet start, a Spark JVM in a
subprocess; none uses the suite's shared session. The default ones need no network: the
forced cache miss resolves into a fresh Ivy home from a Maven repository built in tmp_path
out of the Ivy cache that local Spark already uses. The one from Maven Central is slow.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from odibi_core.core.errors import EngineError
from odibi_core.engine.delta_jars import (
    FETCH_MESSAGE,
    delta_coordinate,
    ensure_delta_jars,
    jar_cache_file,
)
from tests.spark.conftest import fresh_machine

pytestmark = pytest.mark.spark


def _names(jars: list[str]) -> set[str]:
    return {Path(jar).name for jar in jars}


def _assert_resolved_quietly(jars, known_jars, fetched, tmp_path, capfd) -> None:
    assert capfd.readouterr() == ("", "")
    assert fetched == [FETCH_MESSAGE]
    assert _names(jars) == _names(known_jars)
    assert len(jars) == len(known_jars)
    for jar in jars:
        path = Path(jar.removeprefix("file://"))
        assert path.is_file() and path.parent == (tmp_path / "ivy" / "jars").resolve()
    assert jar_cache_file().read_text().split() == jars
    log = (tmp_path / "cache" / "ivy-resolve.log").read_text()
    group, artifact, version = delta_coordinate().split(":")
    assert f"found {group}#{artifact};{version} in central" in log
    assert not list((tmp_path / "ivy" / "cache").glob("*odibi-core-delta*"))


def test_forced_cache_miss_resolves_quietly_into_a_fresh_ivy_home(
    maven_repository, known_jars, tmp_path, monkeypatch, capfd
):
    fresh_machine(tmp_path, monkeypatch, maven_repository.as_uri() + "/")
    capfd.readouterr()
    fetched: list[str] = []
    jars = ensure_delta_jars(on_fetch=fetched.append)["spark.jars"].split(",")
    _assert_resolved_quietly(jars, known_jars, fetched, tmp_path, capfd)
    # The next start finds them at once.
    assert ensure_delta_jars(on_fetch=fetched.append) == {"spark.jars": ",".join(jars)}
    assert fetched == [FETCH_MESSAGE]


def test_an_unreachable_repository_fails_fast_and_shows_the_log(tmp_path, monkeypatch, capfd):
    fresh_machine(tmp_path, monkeypatch, "http://127.0.0.1:9/maven2/")  # refuses at once
    capfd.readouterr()
    started = time.monotonic()
    with pytest.raises(EngineError) as caught:
        ensure_delta_jars(log_dir=tmp_path / "logs")
    assert time.monotonic() - started < 60
    assert capfd.readouterr() == ("", "")
    message = str(caught.value)
    log_file = tmp_path / "logs" / "ivy-resolve.log"
    group, artifact, version = delta_coordinate().split(":")
    assert "Ivy exited with code 1" in message
    assert f"Full log: {log_file}." in message
    assert f":: {group}#{artifact};{version}: not found" in message
    assert "Connection refused" in message
    assert "http://127.0.0.1:9/maven2/ must be reachable" in message
    assert "pre-seed the Ivy cache" in message
    assert not jar_cache_file().exists()


_QUIET_START = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from odibi_core.engine.delta_jars import ensure_delta_jars, start_local_context
    from odibi_core.engine.session import local_spark_conf

    work = Path(sys.argv[1])
    conf = {"spark.master": "local[1]", "spark.app.name": "quiet-start"}
    conf.update(local_spark_conf(work / "warehouse"))
    conf.update(ensure_delta_jars())
    start_local_context(conf, log_file=work / "jvm.log")
    from pyspark.sql import SparkSession
    spark = SparkSession.builder.getOrCreate()
    spark.range(3).write.format("delta").save(str(work / "table"))
    print("rows", spark.read.format("delta").load(str(work / "table")).count())
    print("python's own stderr still reaches the terminal", file=sys.stderr)
    spark.stop()
    """
)


def _start_quietly(work: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**env, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    return subprocess.run(
        [sys.executable, "-c", _QUIET_START, str(work)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


def _assert_started_quietly(done: subprocess.CompletedProcess[str], work: Path) -> None:
    assert done.returncode == 0, done.stderr
    assert done.stdout == "rows 3\n"
    assert done.stderr == "python's own stderr still reaches the terminal\n"
    assert "Using incubator modules" in (work / "jvm.log").read_text()


@pytest.mark.slow
def test_a_local_session_on_the_resolved_jars_starts_quietly_and_uses_delta(
    maven_repository, tmp_path, monkeypatch
):
    fresh_machine(tmp_path, monkeypatch, maven_repository.as_uri() + "/")
    ensure_delta_jars()
    done = _start_quietly(tmp_path, dict(os.environ))
    _assert_started_quietly(done, tmp_path)


@pytest.mark.slow
def test_first_use_from_maven_central_is_quiet_and_its_jars_run_delta(
    known_jars, tmp_path, monkeypatch, capfd
):
    fresh_machine(tmp_path, monkeypatch, "https://repo1.maven.org/maven2/")
    capfd.readouterr()
    fetched: list[str] = []
    jars = ensure_delta_jars(on_fetch=fetched.append)["spark.jars"].split(",")
    _assert_resolved_quietly(jars, known_jars, fetched, tmp_path, capfd)
    done = _start_quietly(tmp_path, dict(os.environ))
    _assert_started_quietly(done, tmp_path)


_FAILED_START = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from odibi_core.core.errors import EngineError
    from odibi_core.engine.delta_jars import start_local_context

    conf = {"spark.master": "local[1]", "spark.app.name": "x", "spark.driver.memory": "lots"}
    try:
        start_local_context(conf, log_file=Path(sys.argv[1]))
    except EngineError as exc:
        print(exc)
    """
)


def test_a_jvm_that_fails_to_start_is_explained_from_its_log(tmp_path):
    log_file = tmp_path / "spark-jvm.log"
    log_file.write_text("Invalid maximum heap size: -Xmxold (an earlier start)\n")
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
    done = subprocess.run(
        [sys.executable, "-c", _FAILED_START, str(log_file)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.stderr == ""  # the launcher's complaint went to the log, not the terminal
    lines = done.stdout.splitlines()
    assert lines[0] == (
        "local Spark's JVM did not start ([JAVA_GATEWAY_EXITED] Java gateway process exited "
        f"before sending its port number.). Its output is in {log_file}; the last lines:"
    )
    assert lines[1] == "  Invalid maximum heap size: -Xmxlots"
    assert "-Xmxold" not in done.stdout  # only this start's lines are quoted
    assert lines[-1].startswith("Fix what they name (Java 17 or later on PATH or JAVA_HOME, ")
