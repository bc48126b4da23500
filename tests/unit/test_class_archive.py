"""The local JVM's class-data archive: found by its launch settings, used only when complete,
built once in the background, and switched off by ODIBI_CLASS_ARCHIVE=off."""

import json
import os
import struct
import time
from pathlib import Path

import pytest

from odibi_core.engine import class_archive

CONF = {
    "spark.jars": "file:///jars/delta-spark.jar",
    "spark.driver.memory": "4g",
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.master": "local[*]",
}


@pytest.fixture
def spawned(tmp_path, monkeypatch):
    """The background builds started. Popen is replaced here because the real build starts
    a JVM for about a minute; tests/spark/test_class_archive.py runs the real one."""
    monkeypatch.setenv("ODIBI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(class_archive.ENV_SWITCH, raising=False)
    started = []
    monkeypatch.setattr(
        class_archive.subprocess, "Popen", lambda command, **kwargs: started.append(command)
    )
    return started


def _complete(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<I", 0xF00BABA8) + b"\0" * 64)


def test_the_archive_is_named_by_java_jars_and_launch_settings(spawned):
    path = class_archive.archive_path(CONF)
    assert path == class_archive.archive_path(dict(CONF, **{"spark.master": "local[2]"}))
    for key, value in [
        ("spark.jars", "file:///jars/delta-spark-4.5.jar"),
        ("spark.driver.memory", "8g"),
        ("spark.driver.extraJavaOptions", "-XX:+UseSerialGC"),
    ]:
        assert class_archive.archive_path(dict(CONF, **{key: value})) != path, key
    assert path.parent.name == "jvm" and path.suffix == ".jsa"


def test_a_complete_archive_is_used_and_nothing_is_built(spawned):
    _complete(class_archive.archive_path(CONF))
    options = class_archive.java_options(CONF)
    assert f"-XX:SharedArchiveFile={class_archive.archive_path(CONF)}" in options.split()
    assert "-Xshare:auto" in options.split()
    assert spawned == []


def test_without_an_archive_one_background_build_starts_and_the_session_runs_without(spawned):
    assert class_archive.java_options(CONF) == ""
    assert class_archive.java_options(CONF) == ""  # the first build is still running
    assert len(spawned) == 1
    command = spawned[0]
    assert command[1:3] == ["-m", "odibi_core.engine.class_archive"]
    assert json.loads(Path(command[3]).read_text()) == CONF


def test_a_file_cut_short_is_never_used(spawned):
    archive = class_archive.archive_path(CONF)
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"\0" * 4096)  # the JVM writes the header last
    assert not class_archive.is_complete(archive)
    assert class_archive.java_options(CONF) == ""


def test_a_stale_claim_is_taken_over(spawned):
    assert class_archive.java_options(CONF) == ""
    claim = class_archive.archive_path(CONF).with_suffix(".building")
    old = time.time() - 2 * 3600
    os.utime(claim, (old, old))
    assert class_archive.java_options(CONF) == ""
    assert len(spawned) == 2


def test_switched_off_it_neither_uses_nor_builds(spawned, monkeypatch):
    _complete(class_archive.archive_path(CONF))
    monkeypatch.setenv(class_archive.ENV_SWITCH, "off")
    assert class_archive.java_options(CONF) == ""
    assert spawned == []


def test_a_read_only_cache_runs_without_an_archive(spawned, tmp_path, monkeypatch):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv("ODIBI_CACHE_DIR", str(blocker / "odibi_core"))
    assert class_archive.java_options(CONF) == ""
    assert spawned == []


def test_system_properties_do_not_change_the_archive(spawned):
    moved = dict(CONF, **{"spark.driver.extraJavaOptions": "-Duser.timezone=UTC -Dlog=/clone"})
    assert class_archive.archive_path(moved) == class_archive.archive_path(CONF)


def test_only_the_two_archives_used_last_are_kept(spawned, tmp_path):
    folder = tmp_path / "jvm"
    for age, name in enumerate(["newest", "recent", "old", "oldest"]):
        path = folder / f"classes-{name}.jsa"
        _complete(path)
        os.utime(path, (time.time() - age * 60, time.time() - age * 60))
    class_archive._keep_recent(folder)
    assert sorted(p.name for p in folder.glob("*.jsa")) == [
        "classes-newest.jsa",
        "classes-recent.jsa",
    ]


def test_the_build_runs_its_workload_in_local_mode_whatever_the_sessions_master(
    spawned, monkeypatch
):
    """A session on a cluster (ODIBI_SPARK_MASTER) must not get an archive-building
    application on that cluster. The workload is replaced here: the real one starts a JVM."""
    ran = []

    def workload(conf, *, timeout):
        ran.append(conf)
        options = conf[class_archive.JAVA_OPTIONS_KEY].split()
        target = next(o for o in options if o.startswith("-XX:ArchiveClassesAtExit="))
        _complete(Path(target.split("=", 1)[1]))

    monkeypatch.setattr(class_archive, "_run_workload", workload)
    on_cluster = dict(CONF, **{"spark.master": "spark://127.0.0.1:7077"})
    archive = class_archive.build(on_cluster)
    assert class_archive.is_complete(archive)
    assert archive == class_archive.archive_path(on_cluster)
    assert [conf["spark.master"] for conf in ran] == ["local[2]"]
    assert ran[0]["spark.driver.memory"] == "4g"  # the launch settings are the session's
