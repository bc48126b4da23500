"""The one place a SparkSession comes from.

Spark starts lazily: nothing here runs at import time, and a pandas-only pipeline with
no Delta I/O never calls ``get_spark``. On Databricks (or when the user passes a session)
the active session is reused; otherwise a local Delta-enabled session is built, with the
Delta jar resolved from Maven Central on first use.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from odibi_core.core.errors import EngineError
from odibi_core.core.tables import default_warehouse
from odibi_core.engine.delta_jars import delta_coordinate, delta_jars_conf, remember_resolved_jars

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
    conf["spark.driver.extraJavaOptions"] = f"-Dlog4j2.configurationFile=file:{log_config}"
    ivy = os.environ.get("ODIBI_IVY_DIR")
    if ivy:
        conf["spark.jars.ivy"] = ivy
    return conf


def get_spark(
    spark: SparkSession | None = None, *, warehouse: str | Path | None = None
) -> SparkSession:
    """Return the session to use: the one given, the active one, or a new local one."""
    global _session
    if spark is not None:
        return spark
    with _lock:
        if _session is not None and not _is_stopped(_session):
            return _session
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:
            raise EngineError(
                "this step needs Spark, but pyspark is not installed; "
                "install the local extra: pip install 'odibi_core[local]'"
            ) from exc
        active = SparkSession.getActiveSession()
        if active is not None:
            _session = active
            return active
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # local mode needs no routable address
        log.info("starting local Spark with Delta (%s)", delta_coordinate())
        builder = SparkSession.builder.master(
            os.environ.get("ODIBI_SPARK_MASTER", "local[*]")
        ).appName("odibi_core")
        for key, value in local_spark_conf(warehouse).items():
            builder = builder.config(key, value)
        _session = builder.getOrCreate()
        _session.sparkContext.setLogLevel("ERROR")
        remember_resolved_jars(_session)
        return _session


def _is_stopped(session: SparkSession) -> bool:
    try:
        return session.sparkContext._jsc is None  # noqa: SLF001 - pyspark exposes no public flag
    except Exception:
        return True
