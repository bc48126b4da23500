"""The Spark engine: Spark SQL over per-execution temp views, reads, writes and counts.

pyspark and delta-spark are imported inside the methods that need them, so importing
this module never loads Spark.

SQL: each logical input becomes a temp view named for this execution only
(``odibi_<logical>_<hex8>``) and the query is rewritten to use it, so parallel steps
that both call their input ``data`` never meet. Views live until ``close()``, because
Spark Connect and serverless analyse a view lazily, when an action finally runs. Over
Spark Connect the inputs are passed as ``spark.sql`` arguments instead of views, so an
action's observed metrics include theirs.

Delta writes are delegated to ``delta_write``, which measures each write by its commit.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from odibi_core.core import fingerprints, tables
from odibi_core.core.errors import EngineError, OdibiError, PipelineConfigError
from odibi_core.core.locations import (
    check_replaceable,
    files_with_data,
    latest_delta_version,
    local_disk_path,
    path_exists,
)
from odibi_core.engine.base import Frame, ReadSpec, WriteResult, WriteSpec
from odibi_core.engine.connect import deliver_flows, is_connect
from odibi_core.engine.csv_rows import first_ragged_row
from odibi_core.engine.delta_write import DeltaTarget, write_delta
from odibi_core.engine.file_peek import FilePeek, peek_files, peekable_files
from odibi_core.engine.observed import ObservedCount, observations_under_limits
from odibi_core.engine.parquet_scan import ParquetScan
from odibi_core.engine.rules import (
    FILE_FORMATS,
    check_write_spec,
    is_pandas_frame,
    is_spark_frame,
    spark_error,
    spark_options,
)
from odibi_core.engine.schema import (
    json_safe_rows,
    normalize_arrow_table,
    normalize_arrow_type,
    pandas_to_arrow,
)
from odibi_core.engine.sql import rewrite_table_names

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)


class SparkEngineContext:
    """Spark with Delta, for one pipeline run. Thread-safe."""

    name = "spark"

    def __init__(
        self,
        spark_provider: Callable[[], SparkSession] | None = None,
        *,
        warehouse: str | Path | None = None,
    ):
        from odibi_core.engine.session import get_spark

        self._provider = spark_provider or (lambda: get_spark(warehouse=warehouse))
        self._warehouse = warehouse
        self._lock = threading.Lock()
        self._session: SparkSession | None = None
        self._views: list[str] = []

    @property
    def spark(self) -> SparkSession:
        """The session, obtained from the provider on first use."""
        with self._lock:
            if self._session is None:
                self._session = self._provider()
            return self._session

    @property
    def started(self) -> bool:
        """True once the session was needed."""
        return self._session is not None

    @property
    def views(self) -> list[str]:
        """Temp views created by ``sql`` and not yet dropped."""
        with self._lock:
            return list(self._views)

    def owns(self, frame: Frame) -> bool:
        return is_spark_frame(frame)

    # -- SQL and functions ------------------------------------------------------------

    def sql(self, query: str, inputs: Mapping[str, Frame], *, step: str) -> DataFrame:
        mapping = {logical: _view_name(logical) for logical in inputs}
        rewritten = rewrite_table_names(query, mapping, step=step)
        frames = {logical: self.adopt(frame) for logical, frame in inputs.items()}
        try:
            if is_connect(self.spark):
                # Over Connect the inputs go in as arguments of the query, not temp views:
                # an action then reports the inputs' observed counts (see connect.py).
                named = {mapping[logical]: frame for logical, frame in frames.items()}
                return self.spark.sql(_with_placeholders(rewritten, list(named)), **named)
            for logical, frame in frames.items():
                frame.createOrReplaceTempView(mapping[logical])
                with self._lock:
                    self._views.append(mapping[logical])
            # Passed as plain text: spark.sql's args/{} formatting would read braces
            # inside string literals as placeholders.
            return self.spark.sql(rewritten)
        except OdibiError:
            raise
        except Exception as exc:
            raise spark_error(exc, step=step, action="run the SQL") from exc

    def call(
        self,
        fn: Callable[..., Any],
        inputs: Mapping[str, Frame],
        params: Mapping[str, Any],
        *,
        step: str,
    ) -> Any:
        frames = {logical: self.adopt(frame) for logical, frame in inputs.items()}
        return fn(**frames, **params)

    # -- reads ------------------------------------------------------------------------

    def read(self, spec: ReadSpec, *, step: str) -> DataFrame:
        fmt = spec.format.lower()
        options = spark_options(spec.options)
        try:
            if fmt == "csv":
                # FAILFAST: a row with more or fewer fields than the header is an error,
                # as on the pandas engine, not silently cut or padded (PERMISSIVE).
                for key, value in _CSV_READ_DEFAULTS.items():
                    if not any(k.lower() == key.lower() for k in options):
                        options[key] = value
            if fmt == "delta":
                pinned = self._pinned(options, path=spec.source, step=step)
                return self.spark.read.format("delta").options(**pinned).load(spec.source)
            if fmt in FILE_FORMATS:
                # Checked here only on this machine's disk: Spark lists Volumes and URIs.
                local = local_disk_path(spec.source)
                if local is not None and path_exists(local):
                    files = files_with_data(local, fmt, step=step)
                    if fmt == "csv" and not tables.on_databricks():
                        _refuse_ragged_rows(files, spec.options, step=step)
                frame = self.spark.read.format(fmt).options(**options).load(spec.source)
                if not frame.schema.fields:  # known from inference: no job runs
                    raise EngineError(
                        f"step '{step}': cannot read {fmt} '{spec.source}': it holds no "
                        "data (empty files); check the step's value, or that the step "
                        "writing it ran",
                        retryable=False,
                    )
                if fmt == "csv" and "schema" not in {k.lower() for k in spec.options}:
                    frame = _widen_inferred_integers(frame)
                return frame
            if fmt == "table":
                target = self.delta_target("table", spec.source, step=step)
                if target.table is not None:
                    pinned = self._pinned(options, table=target.table, step=step)
                    return self.spark.read.options(**pinned).table(target.table)
                if not target.exists(self.spark):
                    raise EngineError(
                        f"step '{step}': table '{spec.source}' does not exist "
                        f"(locally it is the Delta table at {target.path}); "
                        "write it first with a store step of format table"
                    )
                pinned = self._pinned(options, path=target.path, step=step)
                return self.spark.read.format("delta").options(**pinned).load(target.path)
        except OdibiError:
            raise
        except Exception as exc:
            raise spark_error(exc, step=step, action=f"read {fmt} '{spec.source}'") from exc
        raise PipelineConfigError(
            f"step '{step}': cannot read format '{spec.format}' from '{spec.source}'; "
            "use csv, json, parquet, delta or table"
        )

    def _pinned(
        self,
        options: dict[str, Any],
        *,
        step: str,
        path: str | None = None,
        table: str | None = None,
    ) -> dict[str, Any]:
        """Reader options pinned to the Delta table's version at ingest (``versionAsOf``).

        Spark reads lazily and an unpinned Delta read resolves the table's version only
        when an action runs, so a step of the same run that overwrites the table would
        change what this read returns. A step that pins a version or time itself keeps it.
        """
        if any(key.lower() in ("versionasof", "timestampasof") for key in options):
            return options
        version = self._current_version(path=path, table=table)
        if version is None:
            return options
        log.debug("step '%s' reads %s at version %s", step, table or path, version)
        return {**options, "versionAsOf": str(version)}

    def _current_version(self, *, path: str | None, table: str | None) -> int | None:
        """The table's current version; None when it has none yet (the read then says so)."""
        local = local_disk_path(path) if path is not None else None
        if local is not None:
            return latest_delta_version(local / "_delta_log")
        name = table if table is not None else "delta.`" + str(path).replace("`", "``") + "`"
        try:
            rows = self.spark.sql(f"DESCRIBE HISTORY {name} LIMIT 1").select("version").collect()
        except Exception as exc:  # a missing table: the read itself reports it
            log.debug("no Delta version for %s: %s", name, exc)
            return None
        return int(rows[0][0]) if rows else None

    def delta_fingerprint(self, fmt: str, target: str, *, step: str) -> str | None:
        """Text that changes with every commit to the Delta table (or its re-creation);
        None when it does not exist. Local tables are known from their log alone."""
        place = self.delta_target(fmt, target, step=step)
        local = local_disk_path(place.path) if place.path is not None else None
        if local is not None:
            return fingerprints.delta_fingerprint(local)
        name = place.table or "delta.`" + str(place.path).replace("`", "``") + "`"
        try:
            detail = self.spark.sql(f"DESCRIBE DETAIL {name}").select("id").collect()
            version = self._current_version(path=place.path, table=place.table)
        except Exception as exc:  # a missing table has no fingerprint: the step runs
            log.debug("no Delta fingerprint for %s: %s", name, exc)
            return None
        return f"delta:{detail[0][0]}:{version}" if detail and version is not None else None

    # -- writes -----------------------------------------------------------------------

    def write(self, frame: Frame, spec: WriteSpec, *, step: str) -> WriteResult:
        check_write_spec(spec, step=step)
        local = local_arrow(frame)  # rows held here (a pandas-engine frame) are checked here
        frame = self.adopt(frame if local is None else local)
        fmt = spec.format.lower()
        try:
            if fmt in FILE_FORMATS:
                result = self._write_files(frame, spec, fmt, step=step)
            else:
                target = self.delta_target(fmt, spec.target, step=step)
                result = write_delta(self.spark, frame, target, spec, step=step, local_rows=local)
            deliver_flows(frame)  # Connect: the write read all of the frame
            return result
        except OdibiError:
            raise
        except Exception as exc:
            raise spark_error(exc, step=step, action=f"write {fmt} '{spec.target}'") from exc

    def delta_target(self, fmt: str, target: str, *, step: str) -> DeltaTarget:
        """Where a Delta write or read goes: a path, or a table by name on Databricks."""
        if fmt == "delta":
            return DeltaTarget(path=target)
        tables.validate_table_name(target, step=step)
        if tables.on_databricks():
            return DeltaTarget(table=target)
        return DeltaTarget(path=str(tables.local_table_path(target, self._warehouse)))

    def _write_files(
        self, frame: DataFrame, spec: WriteSpec, fmt: str, *, step: str
    ) -> WriteResult:
        local = local_disk_path(spec.target)
        if local is not None:  # Volumes and URIs are not listed: validation guards their roots
            check_replaceable(local, fmt, step=step)
        options = spark_options(spec.options)
        if fmt == "csv" and not any(k.lower() == "header" for k in options):
            options["header"] = "true"
        writer = frame.write.format(fmt).mode("overwrite").options(**options)
        if spec.partition_by:
            writer = writer.partitionBy(*spec.partition_by)
        writer.save(spec.target)
        # Counting would run the job again: file writes report no row count.
        return WriteResult(rows=None, count_source="unknown")

    # -- frames -----------------------------------------------------------------------

    def schema(self, frame: Frame) -> list[str]:
        from pyspark.sql.pandas.types import to_arrow_type

        described = []
        for field in self.adopt(frame).schema.fields:
            try:
                arrow_type = normalize_arrow_type(to_arrow_type(field.dataType))
                described.append(f"{field.name}: {arrow_type}")
            except Exception:
                # A type Arrow cannot carry (e.g. an interval) keeps Spark's own name.
                described.append(f"{field.name}: {field.dataType.simpleString()}")
        return described

    def count(self, frame: Frame) -> int:
        try:
            return self.adopt(frame).count()
        except Exception as exc:
            raise spark_error(exc, step=None, action="count rows") from exc

    def sample(self, frame: Frame, n: int) -> list[dict[str, Any]]:
        if n <= 0:
            return []
        # Through Arrow, so timestamps arrive as UTC instants, not local wall-clock time.
        try:
            rows = self.adopt(frame).limit(n).toArrow().to_pylist()
        except Exception as exc:
            raise spark_error(exc, step=None, action="take a sample") from exc
        return json_safe_rows(rows)

    def peek_read(self, frame: Frame, spec: ReadSpec, n: int) -> FilePeek:
        """An ingest's first ``n`` rows and (parquet) row count from its local files.

        No Spark job runs: a ``limit(n)`` sample would be one, and an observed count sits
        between the scan and the operators above it. ``FilePeek.NOTHING`` when the files
        are not on this machine or are not read here exactly as Spark reads them.
        """
        fmt = spec.format.lower()
        local = local_disk_path(spec.source) if not spec.options else None
        files = peekable_files(local, fmt) if local is not None else []
        schema = _arrow_schema(self.adopt(frame)) if files else None
        if schema is None:
            return FilePeek.NOTHING
        peek = peek_files(files, fmt, schema, n)
        rows = json_safe_rows(peek.rows) if peek.rows is not None else None
        return FilePeek(rows=rows, count=peek.count)

    def to_arrow(self, frame: Frame) -> Any:
        adopted = self.adopt(frame)
        try:
            table = adopted.toArrow()
        except Exception as exc:
            raise spark_error(exc, step=None, action="collect the data to Arrow") from exc
        deliver_flows(adopted)  # Connect: the collect read all of the frame
        return normalize_arrow_table(table)

    def from_arrow(self, table: Any) -> DataFrame:
        return self.spark.createDataFrame(normalize_arrow_table(table))

    def adopt(self, frame: Frame) -> DataFrame:
        if is_spark_frame(frame):
            return frame
        local = local_arrow(frame)
        if local is not None:
            return self.from_arrow(local)
        raise EngineError(
            f"the Spark engine cannot use a {type(frame).__name__}; "
            "steps exchange pandas or Spark DataFrames"
        )

    def observe_count(self, frame: Frame, name: str) -> tuple[DataFrame, ObservedCount]:
        """``frame`` with a row count attached, settled by the next action on it."""
        from pyspark.sql import Observation
        from pyspark.sql import functions as F

        observation_name = f"{_view_name(name)}_rows"
        observation = Observation(observation_name)
        adopted = self.adopt(frame)
        observed = adopted.observe(observation, F.count(F.lit(1)).alias("rows"))
        return observed, ObservedCount(observation, observation_name, connect=is_connect(adopted))

    def observations_under_limits(self, frame: Frame) -> set[str]:
        """Names of observations in ``frame``'s plan that sit below a limit or a sample.

        An action over such a plan may stop early, so those observations could settle with
        a partial count. Reading the analysed plan runs no job.
        """
        return observations_under_limits(frame)

    def close(self) -> None:
        """Drop this run's temp views. Never starts Spark."""
        with self._lock:
            views, self._views = self._views, []
            session = self._session
        if session is None:
            return
        for view in views:
            try:
                session.catalog.dropTempView(view)
            except Exception as exc:  # the session may already be stopped
                log.warning("could not drop temp view %s: %s", view, exc)


_CSV_READ_DEFAULTS = {"header": "true", "inferSchema": "true", "mode": "FAILFAST"}


def _refuse_ragged_rows(files: list[Path], options: Mapping[str, Any], *, step: str) -> None:
    """Name the first ragged row of a local csv at the ingest step, as the pandas engine does.

    Spark's FAILFAST mode would refuse it only at the first action, and without a row
    number. The pass costs about what Spark's own schema inference (on by default) does.
    """
    for file in files:
        ragged = first_ragged_row(file, options)
        if ragged:
            raise EngineError(f"step '{step}': cannot read csv '{file}': {ragged}", retryable=False)


def _with_placeholders(query: str, names: list[str]) -> str:
    """``query`` as a ``spark.sql`` format string whose placeholders are ``names``.

    Every other brace is doubled, so braces inside string literals stay text.
    """
    text = query.replace("{", "{{").replace("}", "}}")
    for name in names:
        text = text.replace(name, "{" + name + "}")
    return text


def local_arrow(frame: Frame) -> Any:
    """The rows of a frame held in this process (pandas, Arrow, or a pandas-engine parquet
    scan, read as that engine reads it) as an Arrow table; None for any other frame."""
    if is_pandas_frame(frame):
        return pandas_to_arrow(frame)
    if type(frame).__module__.startswith("pyarrow"):
        return frame
    if isinstance(frame, ParquetScan):
        return frame.to_arrow(step="")
    return None


def _view_name(logical: str) -> str:
    safe = re.sub(r"\W", "_", logical).lower()
    return f"odibi_{safe}_{uuid.uuid4().hex[:8]}"


def _arrow_schema(frame: DataFrame) -> Any:
    """The Arrow schema of Spark's ``toArrow`` for ``frame``; None for a type Arrow lacks."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_type

    try:
        return pa.schema(
            [
                pa.field(field.name, normalize_arrow_type(to_arrow_type(field.dataType)))
                for field in frame.schema.fields
            ]
        )
    except Exception:  # noqa: BLE001 - e.g. an interval: Spark samples it itself
        return None


def _widen_inferred_integers(frame: DataFrame) -> DataFrame:
    """CSV inference gives ``int`` for small whole numbers; pandas gives int64.

    Widening to ``long`` (a projection, no extra pass) keeps the schema strings of the
    same file equal on both engines.
    """
    from pyspark.sql.types import ByteType, IntegerType, LongType, ShortType

    narrow = (ByteType, ShortType, IntegerType)
    if not any(isinstance(field.dataType, narrow) for field in frame.schema.fields):
        return frame
    return frame.select(
        *[
            frame[f"`{field.name}`"].cast(LongType()).alias(field.name)
            if isinstance(field.dataType, narrow)
            else frame[f"`{field.name}`"]
            for field in frame.schema.fields
        ]
    )
