"""A class-data archive for the local JVM, so that a fresh local session starts sooner.

A local Spark session loads about 24,000 classes from some 300 jars before its first Delta
write. Java's class-data sharing (CDS) maps classes from one archive file instead of
finding, reading and verifying each of them again: on 2 cores a fresh session and its
first Delta write take seconds less. The archive belongs to one Java, one set of jars and
one set of JVM options (``archive_path``); the JVM checks the jars again when it maps it
and quietly ignores an archive that no longer fits. The two used last are kept.

The archive is made once, by ``build``: a JVM started exactly as a session's would be runs
a small Delta workload, and writes the classes it loaded when it exits
(``-XX:ArchiveClassesAtExit``). The first local session that finds no archive starts that
build in a background process (``java_options``) and runs without one; the sessions after
it use the archive. ``ODIBI_CLASS_ARCHIVE=off`` turns all of this off.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)

ENV_SWITCH = "ODIBI_CLASS_ARCHIVE"
JAVA_OPTIONS_KEY = "spark.driver.extraJavaOptions"
# The JVM's own "cannot use this archive" warnings would go to the JVM log on every start.
_QUIET = "-Xshare:auto -Xlog:cds=off -Xlog:cds+dynamic=off -Xlog:class+path=off"
# The first four bytes of a complete dynamic archive (HotSpot's CDS_DYNAMIC_ARCHIVE_MAGIC).
# The JVM writes the header last, so a file cut short by a kill never carries it.
_DYNAMIC_ARCHIVE_MAGIC = 0xF00BABA8
# A build claimed longer ago than this died without finishing: another may start.
_CLAIM_STALE_SECONDS = 3600.0
_BUILD_TIMEOUT_SECONDS = 600.0
_ARCHIVES_KEPT = 2
_BUILD_MASTER = "local[2]"
# Launch settings that decide which classes load and how the JVM lays them out.
_LAUNCH_KEYS = ("spark.jars", "spark.driver.memory", JAVA_OPTIONS_KEY)


def enabled() -> bool:
    return os.environ.get(ENV_SWITCH, "auto").strip().lower() not in {"off", "0", "false", "no"}


def java_options(conf: Mapping[str, str], *, build_if_missing: bool = True) -> str:
    """The Java options that make a JVM launched with ``conf`` use its archive, or ``""``
    when there is none yet (then, with ``build_if_missing``, one is built in the
    background for the next session)."""
    if not enabled():
        return ""
    archive = archive_path(conf)
    if is_complete(archive):
        with contextlib.suppress(OSError):
            os.utime(archive)  # in use: the last ones to be removed (_keep_recent)
        return f"-XX:SharedArchiveFile={archive} {_QUIET}"
    if build_if_missing:
        _start_background_build(conf, archive)
    return ""


def archive_path(conf: Mapping[str, str]) -> Path:
    """Where the archive of a JVM launched with ``conf`` lives: one file per Java, Spark
    jars (names, sizes, times) and launch settings."""
    from odibi_core.engine.delta_jars import cache_dir, java_executable, spark_jars_dir

    java = Path(java_executable()).resolve()
    jars = sorted(spark_jars_dir().glob("*.jar"))
    described = [_file_identity(java), *(_file_identity(jar) for jar in jars)]
    described += [f"{key}={_without_properties(conf.get(key, ''))}" for key in _LAUNCH_KEYS]
    digest = hashlib.sha256("\n".join(described).encode()).hexdigest()[:20]
    return cache_dir() / "jvm" / f"classes-{digest}.jsa"


def _without_properties(value: str) -> str:
    """Launch settings without Java system properties (``-Dname=value``): they change no
    class the JVM loads, and one names this installation's log configuration file."""
    return " ".join(part for part in value.split() if not part.startswith("-D"))


def is_complete(archive: Path) -> bool:
    try:
        with open(archive, "rb") as handle:
            head = handle.read(4)
    except OSError:
        return False
    return len(head) == 4 and struct.unpack("<I", head)[0] == _DYNAMIC_ARCHIVE_MAGIC


def build(conf: Mapping[str, str], *, timeout: float = _BUILD_TIMEOUT_SECONDS) -> Path:
    """Make the archive for ``conf`` now (about a minute on 2 cores) and return its path.

    The JVM writes it to a file of its own and the file takes the archive's name only
    once complete, so a build that dies leaves no archive a JVM would try to map.
    """
    archive = archive_path(conf)
    if is_complete(archive):
        return archive
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(f"{archive.stem}.{os.getpid()}.part")
    partial.unlink(missing_ok=True)
    options = f"{conf.get(JAVA_OPTIONS_KEY, '')} -XX:ArchiveClassesAtExit={partial} {_QUIET}"
    # In local mode whatever the session's master is: the workload must not become an
    # application of a cluster (ODIBI_SPARK_MASTER). The classes a JVM may map depend on
    # its jars and options, not on the master.
    workload = {**conf, JAVA_OPTIONS_KEY: options.strip(), "spark.master": _BUILD_MASTER}
    try:
        _run_workload(workload, timeout=timeout)
        if not is_complete(partial):
            raise RuntimeError(f"the JVM exited without writing a complete archive ({partial})")
        os.replace(partial, archive)
    finally:
        partial.unlink(missing_ok=True)
    _keep_recent(archive.parent)
    log.info("class-data archive ready: %s", archive)
    return archive


def _keep_recent(folder: Path) -> None:
    """Remove all but the ``_ARCHIVES_KEPT`` archives used last (each is about 190 MB):
    another Java, Spark or set of JVM options makes a new one."""
    archives = sorted(folder.glob("classes-*.jsa"), key=_used_at, reverse=True)
    for stale in archives[_ARCHIVES_KEPT:]:
        with contextlib.suppress(OSError):
            stale.unlink()


def _used_at(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _run_workload(conf: Mapping[str, str], *, timeout: float) -> None:
    """Start a local session with ``conf``, use what a pipeline uses (Arrow in, Delta
    create, append, merge, read, SQL, parquet), then let the JVM exit and wait for it."""
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    from odibi_core.engine.delta_jars import start_local_context

    with tempfile.TemporaryDirectory(prefix="odibi-class-archive-") as work:
        table, files = Path(work) / "table", Path(work) / "files"
        conf = {**conf, "spark.sql.warehouse.dir": str(Path(work) / "warehouse")}
        start_local_context(conf)
        gateway_process = SparkContext._gateway.proc  # noqa: SLF001 - pyspark keeps it there
        try:
            spark = SparkSession.builder.getOrCreate()
            _exercise(spark, table, files)
            spark.stop()
        finally:
            gateway_process.stdin.close()  # the gateway JVM exits when its stdin closes
            gateway_process.wait(timeout=timeout)


def _exercise(spark, table: Path, files: Path) -> None:
    import pyarrow as pa

    rows = pa.table({"id": [1, 2, 3], "name": ["a", "b", "c"], "amount": [1.5, 2.5, 3.5]})
    frame = spark.createDataFrame(rows)
    frame.write.format("delta").save(str(table))
    frame.write.format("delta").mode("append").save(str(table))
    spark.createDataFrame(rows).createOrReplaceTempView("changes")
    spark.sql(
        f"MERGE INTO delta.`{table}` AS t USING changes AS s ON t.id = s.id "
        "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
    ).collect()
    spark.sql(f"DESCRIBE HISTORY delta.`{table}`").collect()
    frame.write.mode("overwrite").parquet(str(files))
    ids = spark.read.parquet(str(files)).select("id")
    read = ids.join(spark.read.format("delta").load(str(table)), "id")
    read.groupBy("name").agg({"amount": "sum"}).orderBy("name").toArrow()


def _start_background_build(conf: Mapping[str, str], archive: Path) -> None:
    """Build the archive in a process of its own, unless one is already building it."""
    claim = archive.with_suffix(".building")
    try:
        claim.parent.mkdir(parents=True, exist_ok=True)
        if not _claim(claim):
            return
        settings = claim.with_suffix(".conf.json")
        settings.write_text(json.dumps(dict(conf)))
        with (claim.parent / "class-archive.log").open("ab") as log_file:
            subprocess.Popen(  # noqa: S603 - this interpreter, this module
                [sys.executable, "-m", __name__, str(settings), str(claim)],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,  # outlives this run; a Ctrl-C here does not stop it
            )
        log.info("building the class-data archive %s in the background", archive)
    except OSError as exc:  # a read-only cache: run without an archive, as before
        log.info("no class-data archive (%s)", exc)


def _claim(claim: Path) -> bool:
    """Take the build of one archive: False when another process holds it and is recent."""
    try:
        descriptor = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        try:
            age = time.time() - claim.stat().st_mtime
        except OSError:
            return False
        if age < _CLAIM_STALE_SECONDS:
            return False
        claim.unlink(missing_ok=True)
        return _claim(claim)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(str(os.getpid()))
    return True


def _file_identity(path: Path) -> str:
    stat = path.stat()
    return f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}"


def main(arguments: list[str]) -> int:
    """``python -m odibi_core.engine.class_archive SETTINGS CLAIM``: the background build."""
    settings, claim = Path(arguments[0]), Path(arguments[1])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    os.nice(10)  # the runs that started it come first; its JVM inherits this
    try:
        build(json.loads(settings.read_text()))
    except Exception:
        # The claim stays until it is stale, so a failing build is retried hourly at most.
        log.exception("the class-data archive was not built; sessions run without it")
        return 1
    finally:
        settings.unlink(missing_ok=True)
    claim.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
