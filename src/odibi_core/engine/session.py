"""The one place a SparkSession comes from, by rules decided on the calling thread.

In order: a session passed in is used as it is; Spark Connect (``SPARK_REMOTE``, a remote
session, databricks-connect) is reached through the builder, never with ``master``; on
Databricks the cluster's session is taken as it is; an active classic session in this
process is taken as it is; only otherwise is a local Delta session built. Only a session
built here gets the local configuration: a cluster's settings are never changed.

Nothing here runs at import time, and deciding the rule imports pyspark only when it is
already loaded, so a pandas-only run starts no JVM and imports no pyspark.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from odibi_core.core.errors import EngineError
from odibi_core.core.tables import default_warehouse
from odibi_core.core.waiting import event_set
from odibi_core.engine import class_archive
from odibi_core.engine.delta_jars import (
    delta_coordinate,
    delta_jars_conf,
    ensure_delta_jars,
    start_local_context,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)
_lock = threading.Lock()
_session: SparkSession | None = None


def local_spark_conf(
    warehouse: str | Path | None = None, *, shuffle_partitions: int = 4
) -> dict[str, str]:
    """Configuration of a local session: Delta, UTC, ANSI, no UI, no Hive metastore."""
    warehouse = Path(warehouse) if warehouse is not None else default_warehouse()
    conf = {
        **delta_jars_conf(),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.catalogImplementation": "in-memory",
        "spark.sql.warehouse.dir": str(warehouse.resolve() / "_spark"),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.ansi.enabled": "true",
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.default.parallelism": str(shuffle_partitions),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.memory": os.environ.get("ODIBI_SPARK_DRIVER_MEMORY", "4g"),
        # A local Delta log is small: one partition rebuilds its state fastest, and the
        # checksum file each commit would write costs a Spark job (about a second) per commit.
        "spark.databricks.delta.snapshotPartitions": "1",
        "spark.databricks.delta.writeChecksumFile.enabled": "false",
        "spark.databricks.delta.properties.defaults.enableChangeDataFeed": "false",
        "spark.sql.sources.parallelPartitionDiscovery.parallelism": "2",
    }
    log_config = Path(__file__).with_name("log4j2.properties")
    # The JVM's own zone is UTC too, as on Databricks: Delta takes any other default zone
    # (even GMT) for a non-UTC one and rebuilds the table's state after every commit to
    # check it, a Spark job or two per write.
    conf["spark.driver.extraJavaOptions"] = (
        f"-Dlog4j2.configurationFile=file:{log_config} -Duser.timezone=UTC"
    )
    conf["spark.executor.extraJavaOptions"] = "-Duser.timezone=UTC"
    ivy = os.environ.get("ODIBI_IVY_DIR")
    if ivy:
        conf["spark.jars.ivy"] = ivy
    return conf


# Where the run's session comes from, in the order the rules are tried.
SESSION_SOURCES = ("given", "connect", "databricks-connect", "databricks", "active", "local")

# Settings the pandas engine's parity assumes; read from the session, never set on it.
_PARITY = {"spark.sql.session.timeZone": "UTC", "spark.sql.ansi.enabled": "true"}
_UTC_NAMES = frozenset({"UTC", "ETC/UTC", "GMT", "ETC/GMT", "Z", "+00:00", "ZULU"})
_warned: set[tuple[str, str]] = set()


def session_source(given: SparkSession | None = None) -> str:
    """Which rule supplies the session here and now (one of ``SESSION_SOURCES``)."""
    if given is not None:
        return "given"
    if os.environ.get("SPARK_REMOTE") or _remote_mode():
        return "connect"
    if _databricks_connect_installed() and not os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        return "databricks-connect"
    if os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        return "databricks"
    with _lock:
        built_here = _session is not None and not _is_stopped(_session)
    if not built_here and _classic_session_running():
        return "active"
    return "local"


def get_spark(
    spark: SparkSession | None = None, *, warehouse: str | Path | None = None
) -> SparkSession:
    """Return the session to use, by the rules above; a local one is built only once."""
    return obtain_session(session_source(spark), spark, warehouse=warehouse)


def built_here(spark: SparkSession) -> bool:
    """True for the local session this process built: the only one the framework may
    configure (a cluster's or a Connect session is used as it is)."""
    with _lock:
        return spark is _session


def obtain_session(
    source: str, given: SparkSession | None = None, *, warehouse: str | Path | None = None
) -> SparkSession:
    """The session ``source`` names; only ``local`` builds (and configures) one."""
    if source == "given":
        return given  # type: ignore[return-value]
    SparkSession = _pyspark_session_class()
    if source == "connect":
        return SparkSession.builder.getOrCreate()  # SPARK_REMOTE or the remote mode decides
    if source == "databricks-connect":
        from databricks.connect import DatabricksSession

        return DatabricksSession.builder.getOrCreate()
    if source in ("databricks", "active"):
        return SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
    return _local_session(warehouse)


def session_settings(session: SparkSession, source: str) -> dict[str, str | None]:
    """The settings parity with the pandas engine relies on, as this session has them.

    They are read, never set. A difference from what parity assumes is warned about once.
    """
    found: dict[str, str | None] = {"source": source}
    for key in _PARITY:
        try:
            found[key] = session.conf.get(key, None)
        except Exception as exc:  # noqa: BLE001 - a session may refuse to show a setting
            log.debug("could not read %s from the Spark session: %s", key, exc)
            found[key] = None
    _warn_once_about_parity(found)
    return found


class SessionHandle:
    """The run's one session: its rule decided on the calling thread, obtained once.

    ``start()`` obtains it ahead of the first Spark step: a session that exists is taken on
    the calling thread; a local one is built in the background while pandas steps run, and
    the first Spark step waits for it in ``get()``.
    """

    def __init__(self, given: SparkSession | None = None, *, warehouse: str | Path | None = None):
        self.source = session_source(given)
        self._given = given
        self._warehouse = warehouse
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._session: SparkSession | None = None
        self._error: BaseException | None = None
        self._claimed = False
        self.settings: dict[str, str | None] | None = None

    @property
    def obtained(self) -> bool:
        return self._ready.is_set() and self._error is None

    def start(self) -> None:
        """Obtain the session now; a local build goes to a background thread."""
        if not self._claim():
            return
        if self.source != "local":
            self._obtain()
            return
        threading.Thread(target=self._obtain, name="odibi-spark-start", daemon=True).start()

    def get(self) -> SparkSession:
        """The session, obtained on first need; waits for a background build."""
        if self._claim():
            self._obtain()
        event_set(self._ready)
        if self._error is not None:
            raise self._error
        return self._session  # type: ignore[return-value]

    def _claim(self) -> bool:
        with self._lock:
            claimed, self._claimed = self._claimed, True
            return not claimed

    def _obtain(self) -> None:
        try:
            session = obtain_session(self.source, self._given, warehouse=self._warehouse)
            self.settings = session_settings(session, self.source)
            self._session = session
        except BaseException as exc:  # noqa: BLE001 - re-raised on the thread that needs it
            self._error = exc
        finally:
            self._ready.set()


def local_launch_conf(warehouse: str | Path | None = None) -> dict[str, str]:
    """The whole configuration a local session's JVM is launched with: the local settings,
    the Delta jars (resolved now if need be), the master and the app name."""
    conf = local_spark_conf(warehouse)
    conf.pop("spark.jars.packages", None)  # resolved here, with Ivy's output in a log
    conf.update(ensure_delta_jars(on_fetch=lambda line: log.info("%s", line)))
    conf["spark.master"] = os.environ.get("ODIBI_SPARK_MASTER", "local[*]")
    conf["spark.app.name"] = "odibi_core"
    return conf


def _local_session(warehouse: str | Path | None) -> SparkSession:
    """The local Delta session of this process, built (and configured) here only once."""
    global _session
    with _lock:
        if _session is not None and not _is_stopped(_session):
            return _session
        SparkSession = _pyspark_session_class()
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # local mode needs no routable address
        log.info("starting local Spark with Delta (%s)", delta_coordinate())
        conf = local_launch_conf(warehouse)
        archive_options = class_archive.java_options(conf)
        if archive_options:
            conf["spark.driver.extraJavaOptions"] += f" {archive_options}"
        start_local_context(conf)  # the JVM's own output goes to a log file
        _session = SparkSession.builder.getOrCreate()
        _session.sparkContext.setLogLevel("ERROR")
        return _session


def _pyspark_session_class() -> type[SparkSession]:
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise EngineError(
            "this step needs Spark, but pyspark is not installed; "
            "install the local extra: pip install 'odibi_core[local]'"
        ) from exc
    return SparkSession


def _remote_mode() -> bool:
    """pyspark's own Connect switch, read only when pyspark is already loaded."""
    if "pyspark" not in sys.modules:
        return False
    from pyspark.sql.utils import is_remote

    return is_remote()


def _databricks_connect_installed() -> bool:
    try:
        return importlib.util.find_spec("databricks.connect") is not None
    except (ImportError, ValueError):
        return False


def _classic_session_running() -> bool:
    """An active classic session or SparkContext in this process (no JVM is started)."""
    if "pyspark" not in sys.modules:
        return False  # nothing could have started one
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    if SparkContext._active_spark_context is not None:  # noqa: SLF001 - pyspark's own flag
        return True
    return SparkSession.getActiveSession() is not None


def _warn_once_about_parity(found: dict[str, str | None]) -> None:
    zone = (found.get("spark.sql.session.timeZone") or "").upper()
    ansi = (found.get("spark.sql.ansi.enabled") or "").lower()
    for key, value, same in (
        ("spark.sql.session.timeZone", zone, zone in _UTC_NAMES),
        ("spark.sql.ansi.enabled", ansi, ansi == "true"),
    ):
        if same or not value or (key, value) in _warned:
            continue
        _warned.add((key, value))
        log.warning(
            "the Spark session has %s=%s; the pandas engine assumes %s, so a step may give "
            "other results on the two engines; the session is used as it is: set %s=%s on "
            "the cluster for parity",
            key,
            found.get(key),
            _PARITY[key],
            key,
            _PARITY[key],
        )


def _is_stopped(session: SparkSession) -> bool:
    stopped = getattr(session, "is_stopped", None)  # Spark Connect sessions say so
    if isinstance(stopped, bool):
        return stopped
    try:
        return session.sparkContext._jsc is None  # noqa: SLF001 - classic has no public flag
    except Exception:
        return True
