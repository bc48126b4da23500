"""The Delta jars a local session needs: which ones, and where they were resolved to.

Delta 4.x publishes one artifact per Spark line. The first local start resolves it through
Maven Central (Ivy); the paths it resolved to are remembered, so later starts skip Ivy.
"""

from __future__ import annotations

import logging
import os
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


def delta_coordinate(spark_version: str | None = None, delta_version: str | None = None) -> str:
    """Maven coordinate of the Delta jar matching the installed pyspark and delta-spark.

    Delta 4.x publishes one artifact per Spark line: ``delta-spark_<major.minor>_2.13``.
    """
    spark_version = spark_version or metadata.version("pyspark")
    delta_version = delta_version or metadata.version("delta-spark")
    major_minor = ".".join(spark_version.split(".")[:2])
    return f"io.delta:delta-spark_{major_minor}_2.13:{delta_version}"


def jar_cache_file() -> Path:
    """Where the resolved Delta jar paths are remembered, per coordinate."""
    root = Path(os.environ.get("ODIBI_CACHE_DIR", Path.home() / ".cache" / "odibi_core"))
    return root / (delta_coordinate().replace(":", "_") + ".jars")


def delta_jars_conf() -> dict[str, str]:
    """Use the jars resolved on first use; resolve through Maven Central only once.

    Skipping Ivy on later starts saves seconds and keeps the resolver's output off the
    user's terminal.
    """
    cache = jar_cache_file()
    if cache.is_file():
        jars = [line.strip() for line in cache.read_text().splitlines() if line.strip()]
        if jars and all(Path(jar.removeprefix("file://")).is_file() for jar in jars):
            return {"spark.jars": ",".join(jars)}
    return {"spark.jars.packages": delta_coordinate()}


def remember_resolved_jars(session: SparkSession) -> None:
    """Keep the jar paths Ivy resolved for this session, for the next start."""
    conf = session.sparkContext.getConf()
    if not conf.get("spark.jars.packages", None):
        return
    jars = [jar for jar in conf.get("spark.jars", "").split(",") if jar.startswith("file:")]
    if not any("delta-spark" in jar for jar in jars):
        return
    cache = jar_cache_file()
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        tmp.write_text("\n".join(jars) + "\n")
        os.replace(tmp, cache)
    except OSError as exc:  # a read-only home only costs the next start a resolve
        log.debug("could not remember the Delta jars in %s: %s", cache, exc)
