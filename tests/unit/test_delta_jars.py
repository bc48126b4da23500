"""The Delta jar cache and the resolver's error, without starting a JVM.

Resolves that really run Ivy live in tests/spark/test_delta_jars_resolve.py.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import pytest

from odibi_core.core.errors import EngineError
from odibi_core.engine import delta_jars
from odibi_core.engine.delta_jars import (
    FETCH_MESSAGE,
    delta_coordinate,
    delta_jars_conf,
    ensure_delta_jars,
    jar_cache_file,
)


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    """A private cache and Ivy home, and no java: any attempt to run Ivy fails loudly."""
    monkeypatch.setenv("ODIBI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ODIBI_IVY_DIR", str(tmp_path / "ivy"))
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    monkeypatch.delenv("DEFAULT_ARTIFACT_REPOSITORY", raising=False)
    return tmp_path


def _cache_jars(tmp_path, names):
    jars = []
    for name in names:
        jar = tmp_path / "jars" / name
        jar.parent.mkdir(parents=True, exist_ok=True)
        jar.write_bytes(b"jar")
        jars.append(f"file://{jar}")
    jar_cache_file().parent.mkdir(parents=True, exist_ok=True)
    jar_cache_file().write_text("\n".join(jars) + "\n")
    return jars


def test_a_valid_cache_is_used_without_running_ivy(dirs):
    jars = _cache_jars(dirs, ["io.delta_delta-spark.jar", "io.delta_delta-storage.jar"])
    fetched = []
    # JAVA_HOME points nowhere: had Ivy been started, this would raise.
    assert ensure_delta_jars(on_fetch=fetched.append) == {"spark.jars": ",".join(jars)}
    assert fetched == []
    assert delta_jars_conf() == {"spark.jars": ",".join(jars)}
    assert not (dirs / "cache" / "ivy-resolve.log").exists()


def test_a_stale_cache_resolves_again_and_says_so_once(dirs):
    _cache_jars(dirs, ["io.delta_delta-spark.jar"])
    (dirs / "jars" / "io.delta_delta-spark.jar").unlink()  # the Ivy cache was cleaned
    assert delta_jars_conf() == {"spark.jars.packages": delta_coordinate()}
    fetched = []
    with pytest.raises(EngineError) as caught:
        ensure_delta_jars(on_fetch=fetched.append)
    assert fetched == [FETCH_MESSAGE]
    message = str(caught.value)
    assert "needs Java 17 or later" in message
    assert f"JAVA_HOME={dirs / 'no-jdk'}" in message


def test_no_cache_file_means_a_resolve(dirs):
    fetched = []
    with pytest.raises(EngineError, match="no java was found"):
        ensure_delta_jars(on_fetch=fetched.append)
    assert fetched == [FETCH_MESSAGE]
    assert not jar_cache_file().exists()


def test_the_failure_names_the_log_its_tail_and_the_fix(dirs, monkeypatch):
    monkeypatch.setenv("DEFAULT_ARTIFACT_REPOSITORY", "https://mirror.example/maven2/")
    log_file = dirs / "ivy-resolve.log"
    log_file.write_text("".join(f"line {n}\n\n" for n in range(1, 31)))
    error = delta_jars._resolve_error(
        "io.delta:delta-spark_4.1_2.13:4.4.0", log_file, "Ivy exited with code 1"
    )
    message = str(error)
    assert message.startswith(
        "could not fetch the Delta jars (io.delta:delta-spark_4.1_2.13:4.4.0) for local "
        "Spark: Ivy exited with code 1. "
    )
    assert f"Full log: {log_file}." in message
    shown = [line.strip() for line in message.splitlines() if line.startswith("  ")]
    assert shown == [f"line {n}" for n in range(11, 31)]  # the last 20, blank lines dropped
    assert "https://mirror.example/maven2/ must be reachable" in message
    assert f"pre-seed the Ivy cache {dirs / 'ivy'}" in message
    assert error.retryable is False


def test_an_empty_log_is_said_to_be_empty(dirs):
    error = delta_jars._resolve_error("g:a:1", dirs / "missing.log", "Ivy exited with code 1")
    assert "  (the log is empty)" in str(error)
    assert "https://repo1.maven.org/maven2/ must be reachable" in str(error)


def test_the_ivy_module_maps_and_excludes_as_spark_does():
    module = ET.fromstring(delta_jars._ivy_module("io.delta:delta-spark_4.1_2.13:4.4.0", "m"))
    (dependency,) = module.iter("dependency")
    assert dependency.attrib == {
        "org": "io.delta",
        "name": "delta-spark_4.1_2.13",
        "rev": "4.4.0",
        "conf": "default->default(runtime)",
    }
    excluded = {(e.get("org"), e.get("module")) for e in module.iter("exclude")}
    assert ("*", "scala-library") in excluded
    assert ("org.apache.spark", "spark-sql_*") in excluded
    assert ("org.apache.spark", "spark-core_*") in excluded
    assert len(excluded) == 16  # scala-library and Spark's 15 components


def test_the_settings_chain_spark_resolvers_without_spark_packages(dirs, monkeypatch):
    monkeypatch.setenv("DEFAULT_ARTIFACT_REPOSITORY", "file:///srv/mirror/")
    settings = ET.fromstring(delta_jars._ivy_settings(dirs / "ivy"))
    (cache,) = settings.iter("caches")
    assert cache.get("defaultCacheDir") == str((dirs / "ivy" / "cache").resolve())
    chain = [(r.tag, r.get("name"), r.get("root")) for r in settings.find("resolvers/chain")]
    assert [name for _, name, _ in chain] == ["local-m2-cache", "local-ivy-cache", "central"]
    assert chain[2][2] == "file:///srv/mirror/"


def test_retrieved_jars_carry_spark_names_in_ivy_order(tmp_path):
    ivy = tmp_path / "ivy"
    cached = [
        ivy
        / "cache"
        / "io.delta"
        / "delta-spark_4.1_2.13"
        / "jars"
        / "delta-spark_4.1_2.13-4.4.0.jar",
        ivy / "cache" / "com.x" / "y" / "bundles" / "y-1.0-tests.jar",
        ivy / "cache" / "com.x" / "z" / "jars" / "z-2.0.jar",
    ]
    for path in cached:
        path.parent.mkdir(parents=True)
        path.write_bytes(b"jar")
    (ivy / "jars").mkdir()
    for name in ("io.delta_delta-spark_4.1_2.13-4.4.0.jar", "com.x_y-1.0-tests.jar"):
        (ivy / "jars" / name).write_bytes(b"jar")
    cache_path = tmp_path / "cachepath.txt"
    cache_path.write_text(":".join(str(p) for p in cached) + "\n")
    assert delta_jars._retrieved_jars(cache_path, ivy) == [
        f"file://{ivy.resolve()}/jars/io.delta_delta-spark_4.1_2.13-4.4.0.jar",
        f"file://{ivy.resolve()}/jars/com.x_y-1.0-tests.jar",
        f"file://{cached[2]}",  # not retrieved (never happens with Ivy): the cached file
    ]


def test_the_jvm_log_marks_each_start_appends_and_rotates_when_large(tmp_path, monkeypatch):
    monkeypatch.setattr(delta_jars, "_JVM_LOG_MAX_BYTES", 100)
    log_file = tmp_path / "logs" / "spark-jvm.log"
    with delta_jars._jvm_log(log_file) as sink:
        sink.write(b"first start\n" * 10)
    with delta_jars._jvm_log(log_file) as sink:
        sink.write(b"second\n")
    with delta_jars._jvm_log(log_file) as sink:
        sink.write(b"third\n")
    lines = log_file.read_text().splitlines()
    mark = "--- odibi_core starts local Spark at "
    assert [line for line in lines if not line.startswith(mark)] == ["second", "third"]
    assert (
        sum(line.startswith(mark) and line.endswith(f"(pid {os.getpid()})") for line in lines) == 2
    )
    rotated = (tmp_path / "logs" / "spark-jvm.log.1").read_text().splitlines()
    assert rotated[1:] == ["first start"] * 10
    assert delta_jars._log_tail(log_file, since=mark) == "  third"


def test_an_unwritable_cache_folder_is_named_with_the_fix(dirs, monkeypatch):
    blocker = dirs / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("ODIBI_CACHE_DIR", str(blocker / "odibi_core"))
    with pytest.raises(EngineError) as caught:
        ensure_delta_jars()
    assert str(caught.value) == (
        f"cannot fetch the Delta jars: the folder of the resolver's log, {blocker / 'odibi_core'}, "
        "cannot be created (Not a directory); set ODIBI_CACHE_DIR to a writable folder"
    )
