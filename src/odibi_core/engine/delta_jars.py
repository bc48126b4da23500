"""The Delta jars a local session needs: which ones, where they were resolved to, and a
quiet first start.

Delta 4.x publishes one artifact per Spark line. The first local start resolves it from
Maven Central with Ivy, the resolver Spark itself uses, but in a subprocess of its own and
before any session starts: its output (about 300 lines of resolver chatter) goes to a log
file instead of the run's live view. The resolved paths are remembered, so later starts
skip Ivy. The JVM's own start-up output ("Using incubator modules", launcher chatter) goes
to a log file as well.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from importlib import metadata, util
from pathlib import Path
from xml.sax.saxutils import quoteattr

from odibi_core.core.errors import EngineError
from odibi_core.core.files import write_atomically

log = logging.getLogger(__name__)

FETCH_MESSAGE = "fetching the Delta jars (first use only)"
RESOLVE_LOG_NAME = "ivy-resolve.log"
JVM_LOG_NAME = "spark-jvm.log"
MAVEN_CENTRAL = "https://repo1.maven.org/maven2/"
# Spark's own default Ivy home since 4.0 (Ivy 2.5.2 changed the layout of ~/.ivy2).
DEFAULT_IVY_DIR_NAME = ".ivy2.5.2"
# A first resolve downloads about 90 MB; a hung connection fails instead of waiting forever.
RESOLVE_TIMEOUT_SECONDS = 900
# Where and how Spark copies the jars of spark.jars.packages: <ivy>/jars/<org>_<file>.
SPARK_RETRIEVE_PATTERN = "[organization]_[artifact]-[revision](-[classifier]).[ext]"
# Ivy runs for seconds: the quick compiler and the serial collector spend less CPU on it.
_SHORT_JVM = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")
_LOG_TAIL_LINES = 20
_JVM_LOG_MAX_BYTES = 5_000_000
_JVM_START_MARK = "--- odibi_core starts local Spark"
# Spark's exclusions: what pyspark's own jars already hold is never fetched twice.
_SPARK_PROVIDED = (
    *("catalyst_", "core_", "graphx_", "kvstore_", "launcher_", "mllib_", "mllib-local_"),
    *("network-common_", "network-shuffle_", "repl_", "sketch_", "sql_", "streaming_"),
    *("tags_", "unsafe_"),
)


def delta_coordinate(spark_version: str | None = None, delta_version: str | None = None) -> str:
    """Maven coordinate of the Delta jar matching the installed pyspark and delta-spark.

    Delta 4.x publishes one artifact per Spark line: ``delta-spark_<major.minor>_2.13``.
    """
    spark_version = spark_version or metadata.version("pyspark")
    delta_version = delta_version or metadata.version("delta-spark")
    major_minor = ".".join(spark_version.split(".")[:2])
    return f"io.delta:delta-spark_{major_minor}_2.13:{delta_version}"


def cache_dir() -> Path:
    """odibi_core's own cache: ``$ODIBI_CACHE_DIR``, else ``~/.cache/odibi_core``."""
    return Path(os.environ.get("ODIBI_CACHE_DIR", Path.home() / ".cache" / "odibi_core"))


def jar_cache_file() -> Path:
    """Where the resolved Delta jar paths are remembered, per coordinate."""
    return cache_dir() / (delta_coordinate().replace(":", "_") + ".jars")


def ivy_dir() -> Path:
    """The Ivy home Spark uses: ``$ODIBI_IVY_DIR`` (passed on as ``spark.jars.ivy``), else
    Spark's default. Jars resolved here are shared with ``spark.jars.packages``."""
    return Path(os.environ.get("ODIBI_IVY_DIR") or Path.home() / DEFAULT_IVY_DIR_NAME)


def delta_jars_conf() -> dict[str, str]:
    """Use the jars resolved on first use; resolve through Maven Central only once.

    Skipping Ivy on later starts saves seconds and keeps the resolver's output off the
    user's terminal.
    """
    jars = _cached_jars()
    if jars:
        return {"spark.jars": ",".join(jars)}
    return {"spark.jars.packages": delta_coordinate()}


def ensure_delta_jars(
    *, on_fetch: Callable[[str], None] | None = None, log_dir: Path | None = None
) -> dict[str, str]:
    """The ``spark.jars`` conf of the Delta jars, resolving them first if need be.

    Call it before any session starts: a cache hit returns at once (no JVM, no
    subprocess); a miss calls ``on_fetch`` once with a line the caller may show, runs Ivy
    in a subprocess with all its output in ``<log_dir>/ivy-resolve.log`` (``log_dir``
    defaults to the cache folder), and remembers the jars for the next start. Nothing is
    printed to this process's stdout or stderr. Raises ``EngineError`` with the log's
    last lines when the resolve fails.
    """
    jars = _cached_jars()
    if jars:
        return {"spark.jars": ",".join(jars)}
    log_file = (log_dir or cache_dir()) / RESOLVE_LOG_NAME
    with _resolve_lock():
        jars = _cached_jars()  # another process may have resolved them while we waited
        if not jars:
            if on_fetch is not None:
                on_fetch(FETCH_MESSAGE)
            jars = resolve_delta_jars(delta_coordinate(), ivy_dir(), log_file)
            _remember(jars)
    return {"spark.jars": ",".join(jars)}


def _cached_jars() -> list[str] | None:
    """The remembered jars, or None when there are none or one of them has gone."""
    cache = jar_cache_file()
    if not cache.is_file():
        return None
    jars = [line.strip() for line in cache.read_text().splitlines() if line.strip()]
    if jars and all(Path(jar.removeprefix("file://")).is_file() for jar in jars):
        return jars
    return None


def _remember(jars: list[str]) -> None:
    try:
        write_atomically(jar_cache_file(), "\n".join(jars) + "\n")
    except OSError as exc:  # a read-only home only costs the next start a resolve
        log.debug("could not remember the Delta jars in %s: %s", jar_cache_file(), exc)


@contextmanager
def _resolve_lock() -> Iterator[None]:
    """One resolve at a time per cache folder: Ivy's cache is not safe for two writers."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock; concurrent first starts are rare there
        yield
        return
    lock_path = cache_dir() / "ivy-resolve.lock"
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock_path, "a")  # noqa: SIM115 - closed below, after the unlock
    except OSError:  # a read-only cache: resolve unlocked; the log's folder will say why
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def resolve_delta_jars(coordinate: str, ivy: Path, log_file: Path) -> list[str]:
    """Resolve ``coordinate`` as ``spark.jars.packages`` would, quietly, in a subprocess.

    The same resolvers, exclusions and Ivy home as Spark (so nothing is downloaded twice),
    with the jars copied to ``<ivy>/jars`` under Spark's names. Repositories follow Spark:
    ``~/.m2``, ``<ivy>/local``, then ``$DEFAULT_ARTIFACT_REPOSITORY`` or Maven Central;
    Spark's last resort, repos.spark-packages.org, is left out (it holds nothing Delta
    needs, and unreachable it prints "host not found" for every parent POM).
    """
    try:
        log_file.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EngineError(
            f"cannot fetch the Delta jars: the folder of the resolver's log, "
            f"{log_file.parent}, cannot be created ({exc.strerror}); "
            "set ODIBI_CACHE_DIR to a writable folder"
        ) from exc
    module = f"odibi-core-delta-{uuid.uuid4().hex[:12]}"
    with tempfile.TemporaryDirectory(prefix="odibi-ivy-") as work:
        settings, descriptor = Path(work) / "ivysettings.xml", Path(work) / "ivy.xml"
        settings.write_text(_ivy_settings(ivy))
        descriptor.write_text(_ivy_module(coordinate, module))
        cache_path = Path(work) / "cachepath.txt"
        command = [
            *_ivy_launcher(),
            *("-settings", str(settings), "-ivy", str(descriptor), "-confs", "default"),
            *("-retrieve", str(ivy / "jars" / SPARK_RETRIEVE_PATTERN)),
            *("-cachepath", str(cache_path)),
        ]
        try:
            _run_logged(command, coordinate, log_file)
            jars = _retrieved_jars(cache_path, ivy)
        finally:
            _clear_resolution_files(ivy / "cache", module)
    if not any("delta-spark" in jar for jar in jars):
        raise _resolve_error(coordinate, log_file, "Ivy resolved no delta-spark jar")
    return jars


def _run_logged(command: list[str], coordinate: str, log_file: Path) -> None:
    with open(log_file, "wb") as sink:
        try:
            done = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                timeout=RESOLVE_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired:
            reason = f"Ivy did not finish within {RESOLVE_TIMEOUT_SECONDS} s"
            raise _resolve_error(coordinate, log_file, reason) from None
        except OSError as exc:
            raise _resolve_error(
                coordinate, log_file, f"could not run {command[0]}: {exc}"
            ) from exc
    if done.returncode != 0:
        raise _resolve_error(coordinate, log_file, f"Ivy exited with code {done.returncode}")


def _resolve_error(coordinate: str, log_file: Path, reason: str) -> EngineError:
    tail = _log_tail(log_file)
    repository = os.environ.get("DEFAULT_ARTIFACT_REPOSITORY") or MAVEN_CENTRAL
    return EngineError(
        f"could not fetch the Delta jars ({coordinate}) for local Spark: {reason}. "
        f"Full log: {log_file}. Its last lines:\n{tail}\n"
        f"The repository {repository} must be reachable (check the network or proxy, or "
        f"set DEFAULT_ARTIFACT_REPOSITORY to a mirror), or pre-seed the Ivy cache "
        f"{ivy_dir()} from a machine that has the jars (set ODIBI_IVY_DIR to use another)."
    )


def _log_tail(log_file: Path, *, since: str | None = None) -> str:
    """The last non-blank lines of a log (after the last line starting with ``since``),
    indented, to quote in an error."""
    try:
        lines = log_file.read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    starts = [n for n, line in enumerate(lines) if since and line.startswith(since)]
    lines = lines[starts[-1] + 1 :] if starts else lines
    kept = [f"  {line.rstrip()}" for line in lines if line.strip()][-_LOG_TAIL_LINES:]
    return "\n".join(kept) or "  (the log is empty)"


def _ivy_launcher() -> list[str]:
    """``java`` with the Ivy (and the Oro its glob matcher needs) that ships with Spark."""
    jars = spark_jars_dir()
    ivy, oro = sorted(jars.glob("ivy-*.jar")), sorted(jars.glob("oro-*.jar"))
    if not ivy or not oro:
        raise EngineError(
            f"cannot fetch the Delta jars: Spark's Ivy or Oro jar is missing from {jars}; "
            "reinstall pyspark: pip install --force-reinstall 'odibi_core[local]'"
        )
    classpath = os.pathsep.join((str(ivy[-1]), str(oro[-1])))
    return [java_executable(), *_SHORT_JVM, "-cp", classpath, "org.apache.ivy.Main"]


def spark_jars_dir() -> Path:
    """The jars folder of the Spark a local session launches: SPARK_HOME's, else pyspark's."""
    home = os.environ.get("SPARK_HOME")
    if home and (Path(home) / "jars").is_dir():
        return Path(home) / "jars"
    spec = util.find_spec("pyspark")
    if spec is None or not spec.submodule_search_locations:
        raise EngineError(
            "local Spark needs pyspark, which is not installed; "
            "install the local extra: pip install 'odibi_core[local]'"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "jars"


def java_executable() -> str:
    """The ``java`` a local session launches: JAVA_HOME's, else the first on PATH."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).is_file():
        where = f"JAVA_HOME={home}" if home else "PATH"
        raise EngineError(
            f"local Spark needs Java 17 or later, but no java was found on {where}; "
            "install a JDK (e.g. apt install openjdk-17-jdk-headless) or set JAVA_HOME"
        )
    return java


def _ivy_settings(ivy: Path) -> str:
    """Spark's resolver chain (MavenUtils.createRepoResolvers), as an Ivy settings file."""
    central = os.environ.get("DEFAULT_ARTIFACT_REPOSITORY") or MAVEN_CENTRAL
    m2 = (Path.home() / ".m2" / "repository").as_uri() + "/"
    local = ivy.resolve() / "local"
    return f"""<ivysettings>
  <property name="ivy.maven.lookup.sources" value="false"/>
  <property name="ivy.maven.lookup.javadoc" value="false"/>
  <settings defaultResolver="spark-list"/>
  <caches defaultCacheDir={quoteattr(str(ivy.resolve() / "cache"))}/>
  <timeout-constraints>
    <timeout-constraint name="bounded" connectionTimeout="30000" readTimeout="120000"/>
  </timeout-constraints>
  <resolvers>
    <chain name="spark-list">
      <ibiblio name="local-m2-cache" m2compatible="true" usepoms="true" root={quoteattr(m2)}/>
      <filesystem name="local-ivy-cache" local="true">
        <ivy pattern={quoteattr(f"{local}/[organisation]/[module]/[revision]/ivys/ivy.xml")}/>
        <artifact pattern={quoteattr(f"{local}/[organisation]/[module]/[revision]/[type]s/[artifact](-[classifier]).[ext]")}/>
      </filesystem>
      <ibiblio name="central" m2compatible="true" usepoms="true" root={quoteattr(central)}
               timeoutConstraint="bounded"/>
    </chain>
  </resolvers>
</ivysettings>
"""


def _ivy_module(coordinate: str, module: str) -> str:
    """One dependency, mapped and excluded as Spark maps ``spark.jars.packages``."""
    group, artifact, version = coordinate.split(":")
    excludes = "\n".join(
        f'    <exclude org="org.apache.spark" module="spark-{part}*" matcher="glob" conf="default"/>'
        for part in _SPARK_PROVIDED
    )
    return f"""<ivy-module version="2.0">
  <info organisation="org.apache.spark" module={quoteattr(module)} revision="1.0"/>
  <configurations><conf name="default"/></configurations>
  <dependencies>
    <dependency org={quoteattr(group)} name={quoteattr(artifact)} rev={quoteattr(version)}
                conf="default->default(runtime)"/>
    <exclude org="*" module="scala-library" matcher="glob" conf="default"/>
{excludes}
  </dependencies>
</ivy-module>
"""


def _retrieved_jars(cache_path: Path, ivy: Path) -> list[str]:
    """The jars as Spark names them in ``<ivy>/jars``, in Ivy's order.

    Ivy's cache holds ``<org>/<module>/<type>s/<artifact>-<revision>[-<classifier>].jar``;
    the retrieve pattern names the same file ``<org>_<artifact>-<revision>...``.
    """
    cache = (ivy / "cache").resolve()
    jars = []
    for entry in cache_path.read_text().strip().split(os.pathsep):
        cached = Path(entry.strip())
        if not entry.strip() or cached.suffix != ".jar":
            continue
        organisation = cached.resolve().relative_to(cache).parts[0]
        retrieved = ivy.resolve() / "jars" / f"{organisation}_{cached.name}"
        jars.append(f"file://{retrieved if retrieved.is_file() else cached}")
    return jars


def _clear_resolution_files(cache: Path, module: str) -> None:
    """Ivy's per-resolve report files, which Spark deletes after its own resolves too."""
    for name in (
        f"org.apache.spark-{module}-default.xml",
        f"resolved-org.apache.spark-{module}-1.0.xml",
        f"resolved-org.apache.spark-{module}-1.0.properties",
    ):
        (cache / name).unlink(missing_ok=True)


def jvm_log_file() -> Path:
    """Where a local JVM's own output goes: ``<cache folder>/spark-jvm.log``."""
    return cache_dir() / JVM_LOG_NAME


def start_local_context(conf: Mapping[str, str], *, log_file: Path | None = None) -> None:
    """Start the local SparkContext that the next ``SparkSession.builder.getOrCreate()``
    picks up, with the JVM's stdout and stderr in ``log_file`` (default ``jvm_log_file()``).
    Call it only where a local session is to be built (no SparkContext is active).

    ``conf`` is the whole configuration, ``spark.master`` and ``spark.app.name`` included:
    launch-time settings (driver memory, ``spark.jars``, Java options) only take effect
    here. Unlike pointing fd 2 elsewhere, nothing in this process changes: Python's own
    stderr (the live view) keeps going to the terminal, also from other threads while the
    JVM starts. The JVM keeps the file for its life, so Spark's log4j warnings land there
    too; Spark's errors still reach Python as exceptions. When a gateway JVM already runs
    in this process (a session was stopped), it is reused and its output stays where it was.
    """
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway

    spark_conf = SparkConf(loadDefaults=False).setAll(list(conf.items()))
    gateway = None
    if SparkContext._gateway is None:  # noqa: SLF001 - pyspark has no public "JVM running"
        log_file = log_file or jvm_log_file()
        with _jvm_log(log_file) as sink:
            try:  # launch_gateway's documented hook "e.g. capturing stdout/stderr" of the JVM
                gateway = launch_gateway(spark_conf, popen_kwargs={"stdout": sink, "stderr": sink})
            except Exception as exc:
                raise EngineError(
                    f"local Spark's JVM did not start ({exc}). Its output is in {log_file}; "
                    f"the last lines:\n{_log_tail(log_file, since=_JVM_START_MARK)}\n"
                    "Fix what they name (Java 17 or later on PATH or JAVA_HOME, "
                    "ODIBI_SPARK_DRIVER_MEMORY, free memory) and run again."
                ) from exc
    SparkContext(conf=spark_conf, gateway=gateway)


@contextmanager
def _jvm_log(log_file: Path) -> Iterator[object]:
    """The JVM log opened for appending (safe with several JVMs), kept below ~5 MB."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with suppress(OSError):  # no log yet, or it cannot be rotated: append to it anyway
        if log_file.stat().st_size > _JVM_LOG_MAX_BYTES:
            os.replace(log_file, log_file.with_name(log_file.name + ".1"))
    with open(log_file, "ab") as sink:
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        sink.write(f"{_JVM_START_MARK} at {started} (pid {os.getpid()})\n".encode())
        sink.flush()
        yield sink
