"""The real class-data archive: built by a JVM launched as a local session's is, then
mapped by the next fresh session, which loads Spark's and Delta's classes from it."""

import json
import os
import subprocess
import sys

import pytest

from odibi_core.engine import class_archive
from odibi_core.engine.session import local_launch_conf

pytestmark = [pytest.mark.spark, pytest.mark.slow]

_FRESH_SESSION = """
from odibi_core.engine.session import get_spark
spark = get_spark()
spark.range(3).write.format("delta").save({table!r})
print(spark.read.format("delta").load({table!r}).count())
"""


def test_a_built_archive_is_mapped_by_the_next_fresh_session(tmp_path, monkeypatch):
    monkeypatch.setenv("ODIBI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(class_archive.ENV_SWITCH, raising=False)
    conf = local_launch_conf(tmp_path / "warehouse")
    archive = class_archive.archive_path(conf)
    # Built as a session's background build is: a process of its own (this one may hold
    # the suite's SparkContext), from the settings file and claim it is handed.
    settings, claim = tmp_path / "settings.json", archive.with_suffix(".building")
    settings.write_text(json.dumps(conf))
    claim.parent.mkdir(parents=True, exist_ok=True)
    claim.write_text("test")
    env = {**os.environ, "ODIBI_CACHE_DIR": str(tmp_path / "cache")}
    build = subprocess.run(
        [sys.executable, "-m", "odibi_core.engine.class_archive", str(settings), str(claim)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    assert class_archive.is_complete(archive)
    assert list(archive.parent.glob("*.part")) == [] and not claim.exists()

    loaded = tmp_path / "class-load.log"
    env["JAVA_TOOL_OPTIONS"] = f"-Xlog:class+load=info:file={loaded}"
    code = _FRESH_SESSION.format(table=str(tmp_path / "t"))
    run = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split()[-1] == "3"
    sources = {
        line.split()[1]: line
        for line in loaded.read_text().splitlines()
        if "org.apache.spark.sql.delta.DeltaLog " in line
        or "org.apache.spark.sql.SparkSession " in line
    }
    assert sources, "the fresh session loaded neither SparkSession nor DeltaLog"
    for name, line in sources.items():
        assert "shared objects file (top)" in line, f"{name} was not mapped from {archive}"
