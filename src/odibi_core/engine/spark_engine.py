"""The Spark engine: Spark SQL over per-execution temp views, and Delta reads and writes.

pyspark and delta-spark are imported inside the methods that need them, so importing
this module (the pandas engine does, for the shared write rules) never loads Spark.

SQL: each logical input becomes a temp view named for this execution only
(``odibi_<logical>_<hex8>``) and the query is rewritten to use it, so parallel steps
that both call their input ``data`` never meet. Views live until ``close()``, because
Spark Connect and serverless analyse a view lazily, when an action finally runs.

Delta writes are tagged with ``userMetadata`` and their commit is then looked up by that
tag, so the row counts come from the commit's own metrics, even with concurrent writers.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from odibi_core.engine import tables
from odibi_core.engine.base import Frame, ReadSpec, WriteResult, WriteSpec
from odibi_core.engine.schema import (
    json_safe_rows,
    normalize_arrow_table,
    normalize_arrow_type,
    pandas_to_arrow,
)
from odibi_core.engine.sql import rewrite_table_names
from odibi_core.errors import EngineError, OdibiError, PipelineConfigError, did_you_mean

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

FILE_FORMATS = ("csv", "json", "parquet")
DELTA_FORMATS = ("delta", "table")
WRITE_MODES = ("overwrite", "append", "merge")
USER_METADATA_CONF = "spark.databricks.delta.commitInfo.userMetadata"
_HISTORY_WINDOWS = (25, None)  # recent commits first, the whole history if needed
_DATA_OPERATIONS = (
    "WRITE",
    "MERGE",
    "CREATE TABLE AS SELECT",
    "REPLACE TABLE AS SELECT",
    "CREATE OR REPLACE TABLE AS SELECT",
)
# SQLSTATE classes of errors that recur on retry: cardinality (e.g. a MERGE source row
# matching twice), data (division by zero, bad casts), integrity, syntax and analysis.
_DETERMINISTIC_SQLSTATE_CLASSES = ("21", "22", "23", "42")
# The session conf that tags a MERGE is shared by every thread of the session.
_session_tag_lock = threading.Lock()


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
        options = {key: _option_text(value) for key, value in spec.options.items()}
        try:
            if fmt == "csv":
                for key in ("header", "inferSchema"):
                    if not any(k.lower() == key.lower() for k in options):
                        options[key] = "true"
            if fmt in (*FILE_FORMATS, "delta"):
                frame = self.spark.read.format(fmt).options(**options).load(spec.source)
                if fmt == "csv" and "schema" not in {k.lower() for k in spec.options}:
                    frame = _widen_inferred_integers(frame)
                return frame
            if fmt == "table":
                target = self.delta_target("table", spec.source, step=step)
                if target.table is not None:
                    return self.spark.read.options(**options).table(target.table)
                if not target.exists(self.spark):
                    raise EngineError(
                        f"step '{step}': table '{spec.source}' does not exist "
                        f"(locally it is the Delta table at {target.path}); "
                        "write it first with a store step of format table"
                    )
                return self.spark.read.format("delta").options(**options).load(target.path)
        except OdibiError:
            raise
        except Exception as exc:
            raise spark_error(exc, step=step, action=f"read {fmt} '{spec.source}'") from exc
        raise PipelineConfigError(
            f"step '{step}': cannot read format '{spec.format}' from '{spec.source}'; "
            "use csv, json, parquet, delta or table"
        )

    # -- writes -----------------------------------------------------------------------

    def write(self, frame: Frame, spec: WriteSpec, *, step: str) -> WriteResult:
        check_write_spec(spec, step=step)
        frame = self.adopt(frame)
        fmt = spec.format.lower()
        try:
            if fmt in FILE_FORMATS:
                return self._write_files(frame, spec, fmt)
            target = self.delta_target(fmt, spec.target, step=step)
            return _DeltaWrite(self.spark, target, spec, step=step).run(frame)
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

    def _write_files(self, frame: DataFrame, spec: WriteSpec, fmt: str) -> WriteResult:
        options = {key: _option_text(value) for key, value in spec.options.items()}
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

    def to_arrow(self, frame: Frame) -> Any:
        try:
            return normalize_arrow_table(self.adopt(frame).toArrow())
        except Exception as exc:
            raise spark_error(exc, step=None, action="collect the data to Arrow") from exc

    def from_arrow(self, table: Any) -> DataFrame:
        return self.spark.createDataFrame(normalize_arrow_table(table))

    def adopt(self, frame: Frame) -> DataFrame:
        if is_spark_frame(frame):
            return frame
        if is_pandas_frame(frame):
            return self.from_arrow(pandas_to_arrow(frame))
        if type(frame).__module__.startswith("pyarrow"):
            return self.from_arrow(frame)
        raise EngineError(
            f"the Spark engine cannot use a {type(frame).__name__}; "
            "steps exchange pandas or Spark DataFrames"
        )

    def observe_count(self, frame: Frame, name: str) -> tuple[DataFrame, ObservedCount]:
        """``frame`` with a row count attached, settled by the next action on it."""
        from pyspark.sql import Observation
        from pyspark.sql import functions as F

        observation = Observation(f"{_view_name(name)}_rows")
        observed = self.adopt(frame).observe(observation, F.count(F.lit(1)).alias("rows"))
        return observed, ObservedCount(observation)

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


@dataclass(frozen=True)
class DeltaTarget:
    """A Delta table addressed by path (local, or format delta) or by name (Databricks)."""

    path: str | None = None
    table: str | None = None

    @property
    def label(self) -> str:
        return self.table or str(self.path)

    @property
    def sql_ref(self) -> str:
        """The table as SQL text. Names are validated; a path has its backticks doubled."""
        if self.table is not None:
            return self.table
        return "delta.`" + str(self.path).replace("`", "``") + "`"

    def exists(self, spark: SparkSession) -> bool:
        from delta.tables import DeltaTable

        if self.table is not None:
            return spark.catalog.tableExists(self.table)
        return DeltaTable.isDeltaTable(spark, self.path)

    def delta_table(self, spark: SparkSession) -> Any:
        from delta.tables import DeltaTable

        if self.table is not None:
            return DeltaTable.forName(spark, self.table)
        return DeltaTable.forPath(spark, self.path)


class _DeltaWrite:
    """One Delta write (overwrite, append or merge), tagged and measured by its commit."""

    def __init__(self, spark: SparkSession, target: DeltaTarget, spec: WriteSpec, *, step: str):
        self.spark = spark
        self.target = target
        self.spec = spec
        self.step = step
        self.tag = spec.commit_tag or f"odibi:{uuid.uuid4().hex}"

    def run(self, frame: DataFrame) -> WriteResult:
        spec = self.spec
        exists = self.target.exists(self.spark)
        if spec.mode == "merge":
            self._check_merge_keys(frame)
        if spec.mode == "merge" and exists:
            self._merge(frame)
        else:
            if spec.mode == "append" and exists and not spec.merge_schema:
                self._check_append_schema(frame)
            # A first merge creates the table: every row is an insert.
            self._save(frame, "overwrite" if spec.mode == "overwrite" else "append")
        result = self._result()
        try:
            if spec.cluster_by:
                self._ensure_clustering()
            if spec.properties or spec.comment is not None:
                self._set_table_metadata()
        except Exception as exc:
            # The data is committed: a retry would write it again, so never retry.
            cause = spark_error(exc, step=self.step, action="set the table's clustering/properties")
            raise EngineError(
                f"{cause} (the data itself was written to {self.target.label} as version "
                f"{result.delta_version})",
                retryable=False,
            ) from exc
        return result

    def _save(self, frame: DataFrame, mode: str) -> None:
        spec = self.spec
        options = {key: _option_text(value) for key, value in spec.options.items()}
        writer = frame.write.format("delta").mode(mode).options(**options)
        writer = writer.option("userMetadata", self.tag)
        if spec.merge_schema:
            writer = writer.option("mergeSchema", "true")
        if mode == "append" and spec.txn_app_id is not None:
            writer = writer.option("txnAppId", spec.txn_app_id)
            writer = writer.option("txnVersion", str(spec.txn_version))
        if spec.partition_by:
            writer = writer.partitionBy(*spec.partition_by)
        if self.target.table is not None:
            writer.saveAsTable(self.target.table)
        else:
            writer.save(self.target.path)

    def _merge(self, frame: DataFrame) -> None:
        spec = self.spec
        condition = " AND ".join(f"t.{_quote(k)} = s.{_quote(k)}" for k in spec.merge_keys)
        builder = self.target.delta_table(self.spark).alias("t").merge(frame.alias("s"), condition)
        if spec.update_columns is not None:
            assignments = {_quote(c): f"s.{_quote(c)}" for c in spec.update_columns}
            builder = builder.whenMatchedUpdate(set=assignments)
        else:
            builder = builder.whenMatchedUpdateAll()
        builder = builder.whenNotMatchedInsertAll()
        if spec.merge_schema:
            builder = builder.withSchemaEvolution()
        with session_commit_tag(self.spark, self.tag):
            builder.execute()

    def _check_merge_keys(self, frame: DataFrame) -> None:
        columns = {c.lower() for c in frame.columns}
        wanted = [*self.spec.merge_keys, *(self.spec.update_columns or ())]
        absent = [c for c in wanted if c.lower() not in columns]
        if absent:
            raise PipelineConfigError(
                f"step '{self.step}': cannot merge into {self.target.label}: the data has no "
                f"column {', '.join(repr(c) for c in absent)} named in merge_keys/"
                f"update_columns; its columns are {', '.join(frame.columns)}"
            )

    def _check_append_schema(self, frame: DataFrame) -> None:
        if self.target.table is not None:
            table_fields = self.spark.table(self.target.table).schema.fields
        else:
            table_fields = self.spark.read.format("delta").load(self.target.path).schema.fields
        table = {f.name.lower(): f for f in table_fields}
        data = {f.name.lower(): f for f in frame.schema.fields}
        missing = [table[name].name for name in table if name not in data]
        extra = [data[name].name for name in data if name not in table]
        changed = [
            f"{data[name].name} ({table[name].dataType.simpleString()} -> "
            f"{data[name].dataType.simpleString()})"
            for name in data
            if name in table
            and table[name].dataType.simpleString() != data[name].dataType.simpleString()
        ]
        if not (missing or extra or changed):
            return
        problems = [
            f"{label}: {', '.join(names)}"
            for label, names in (
                ("missing", missing),
                ("extra", extra),
                ("type changed", changed),
            )
            if names
        ]
        raise EngineError(
            f"step '{self.step}': cannot append to {self.target.label}: the data's columns "
            f"differ from the table's ({'; '.join(problems)}); set merge_schema: true to add "
            "new columns, or select and cast the columns to match the table"
        )

    def _result(self) -> WriteResult:
        commit = self._find_commit()
        if commit is None:
            if self.spec.mode == "append" and self.spec.txn_app_id is not None:
                # Delta skipped the append: this txnAppId/txnVersion was committed before.
                log.info("step %s: append to %s already committed", self.step, self.target.label)
                return WriteResult(rows=0, rows_inserted=0, count_source="commit_metrics")
            log.warning(
                "step %s: commit tagged %s not found in the history of %s",
                self.step,
                self.tag,
                self.target.label,
            )
            return WriteResult(rows=None, count_source="unknown")
        metrics = commit["operationMetrics"] or {}
        version = int(commit["version"])
        if commit["operation"] == "MERGE":
            inserted = int(metrics.get("numTargetRowsInserted", 0))
            updated = int(metrics.get("numTargetRowsUpdated", 0))
            return WriteResult(
                rows=inserted + updated,
                rows_inserted=inserted,
                rows_updated=updated,
                delta_version=version,
                count_source="commit_metrics",
            )
        rows = int(metrics.get("numOutputRows", 0))
        created_by_merge = self.spec.mode == "merge"
        return WriteResult(
            rows=rows,
            rows_inserted=rows if created_by_merge else None,
            rows_updated=0 if created_by_merge else None,
            delta_version=version,
            count_source="commit_metrics",
        )

    def _find_commit(self) -> Any:
        from pyspark.sql import functions as F

        table = self.target.delta_table(self.spark)
        for window in _HISTORY_WINDOWS:
            history = table.history(window) if window else table.history()
            found = (
                history.where(F.col("userMetadata") == self.tag)
                .where(F.col("operation").isin(*_DATA_OPERATIONS))
                .orderBy(F.col("version").desc())
                .select("version", "operation", "operationMetrics")
                .limit(1)
                .collect()
            )
            if found:
                return found[0]
        return None

    def _ensure_clustering(self) -> None:
        wanted = list(self.spec.cluster_by)
        detail = self.spark.sql(f"DESCRIBE DETAIL {self.target.sql_ref}").first()
        current = list(detail["clusteringColumns"] or []) if detail is not None else []
        if [c.lower() for c in current] != [c.lower() for c in wanted]:
            columns = ", ".join(_quote(c) for c in wanted)
            self.spark.sql(f"ALTER TABLE {self.target.sql_ref} CLUSTER BY ({columns})")

    def _set_table_metadata(self) -> None:
        properties = dict(self.spec.properties)
        if self.spec.comment is not None:
            properties["comment"] = self.spec.comment
        assignments = ", ".join(
            f"{_sql_string(key)} = {_sql_string(str(value))}" for key, value in properties.items()
        )
        self.spark.sql(f"ALTER TABLE {self.target.sql_ref} SET TBLPROPERTIES ({assignments})")


class ObservedCount:
    """A ``DeferredCount`` backed by a ``pyspark.sql.Observation``."""

    def __init__(self, observation: Any):
        self._observation = observation
        self._lock = threading.Lock()
        self._rows: int | None = None
        self._reason: str | None = None

    @property
    def reason(self) -> str | None:
        return self._reason

    def get(self, timeout: float) -> int | None:
        """The count, waiting up to ``timeout`` seconds for the action to finish."""
        with self._lock:
            if self._rows is None:
                self._rows, self._reason = self._wait(timeout)
            return self._rows

    def _wait(self, timeout: float) -> tuple[int | None, str | None]:
        java_observation = getattr(self._observation, "_jo", None)
        if java_observation is not None and not _await_future(
            self._observation, java_observation.future(), timeout
        ):
            return None, f"no action ran over the observed frame within {timeout:g}s"
        try:
            metrics = self._observation.get
        except Exception as exc:
            return None, f"the action over the observed frame failed: {exc}"
        if "rows" not in metrics:  # Spark Connect reports {} until an action has run
            return None, "no action has run over the observed frame"
        return int(metrics["rows"]), None


@contextmanager
def session_commit_tag(spark: SparkSession, tag: str) -> Iterator[None]:
    """Tag Delta commits made inside the block with ``userMetadata = tag``.

    For operations without a writer option (MERGE, SQL DML). The session conf is shared
    by every thread, so the block holds a process-wide lock; writers that pass the
    ``userMetadata`` option are unaffected, since the option wins over the conf.
    """
    with _session_tag_lock:
        spark.conf.set(USER_METADATA_CONF, tag)
        try:
            yield
        finally:
            spark.conf.unset(USER_METADATA_CONF)


def is_spark_frame(frame: Any) -> bool:
    """True for a classic or Spark Connect DataFrame, without importing pyspark."""
    spark_sql = sys.modules.get("pyspark.sql")
    return spark_sql is not None and isinstance(frame, spark_sql.DataFrame)


def is_pandas_frame(frame: Any) -> bool:
    """True for a pandas DataFrame, without importing pandas."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(frame, pandas.DataFrame)


def _await_future(observation: Any, future: Any, timeout: float) -> bool:
    """Block on the JVM future for up to ``timeout`` seconds; True once it completed."""
    if future.isCompleted():
        return True
    jvm = observation._jvm  # noqa: SLF001 - set by Observation when it is attached
    duration = jvm.scala.concurrent.duration.Duration.create(max(int(timeout * 1000), 1), "ms")
    try:
        jvm.scala.concurrent.Await.ready(future, duration)
    except Exception as exc:
        if "TimeoutException" in str(exc):
            return False
        raise
    return True


def _view_name(logical: str) -> str:
    safe = re.sub(r"\W", "_", logical).lower()
    return f"odibi_{safe}_{uuid.uuid4().hex[:8]}"


def _option_text(value: Any) -> Any:
    """Spark options are text; YAML booleans become Spark's ``true``/``false``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def check_write_spec(spec: WriteSpec, *, step: str) -> None:
    """Refuse write specs no engine can honour, before any data moves."""
    fmt = spec.format.lower()
    where = f"step '{step}' (writing '{spec.target}')"
    if fmt not in (*FILE_FORMATS, *DELTA_FORMATS):
        raise PipelineConfigError(
            f"{where}: unknown format '{spec.format}'"
            f"{did_you_mean(fmt, (*FILE_FORMATS, *DELTA_FORMATS))}; "
            "use csv, json, parquet, delta or table"
        )
    if spec.mode not in WRITE_MODES:
        raise PipelineConfigError(
            f"{where}: unknown mode '{spec.mode}'{did_you_mean(spec.mode, WRITE_MODES)}; "
            "use overwrite, append or merge"
        )
    if fmt in FILE_FORMATS and spec.mode != "overwrite":
        raise PipelineConfigError(
            f"{where}: mode '{spec.mode}' is not supported for {fmt} files, which can only "
            f"be overwritten; use format: delta (or table) to {spec.mode}"
        )
    if fmt in FILE_FORMATS and spec.cluster_by:
        raise PipelineConfigError(f"{where}: cluster_by needs format delta or table, not {fmt}")
    if spec.partition_by and spec.cluster_by:
        raise PipelineConfigError(
            f"{where}: partition_by and cluster_by cannot be combined; Delta liquid "
            "clustering replaces partitioning, so keep one of them"
        )
    if spec.mode == "merge" and not spec.merge_keys:
        raise PipelineConfigError(
            f"{where}: mode merge needs merge_keys, the columns that identify a row"
        )
    if spec.update_columns is not None and spec.mode != "merge":
        raise PipelineConfigError(
            f"{where}: update_columns only applies to mode merge, not {spec.mode}"
        )
    if (spec.txn_app_id is None) != (spec.txn_version is None):
        raise PipelineConfigError(
            f"{where}: txn_app_id and txn_version go together; set both or neither"
        )


def spark_error(exc: BaseException, *, step: str | None, action: str) -> EngineError:
    """An ``EngineError`` for a failure raised by Spark, saying whether a retry can help.

    Analysis and parse errors, and errors whose SQLSTATE says the data or the query is
    at fault, are not retryable; a missing path names the path. Other Spark and Py4J
    failures (lost executors, network) are retryable.
    """
    where = f"step '{step}': " if step else ""
    condition = _exception_detail(exc, "getCondition") or _exception_detail(exc, "getErrorClass")
    if condition == "PATH_NOT_FOUND":
        parameters = _exception_detail(exc, "getMessageParameters") or {}
        path = parameters.get("path", "")
        return EngineError(
            f"{where}cannot {action}: the path {path} does not exist; check the step's value",
            retryable=False,
        )
    message = _concise(str(exc))
    if not _is_spark_exception(exc):
        retryable = isinstance(exc, OSError)
        return EngineError(
            f"{where}could not {action}: {type(exc).__name__}: {message}", retryable=retryable
        )
    from pyspark.errors import AnalysisException

    sqlstate = _exception_detail(exc, "getSqlState") or ""
    deterministic = (
        isinstance(exc, AnalysisException) or sqlstate[:2] in _DETERMINISTIC_SQLSTATE_CLASSES
    )
    return EngineError(f"{where}Spark could not {action}: {message}", retryable=not deterministic)


def _is_spark_exception(exc: BaseException) -> bool:
    module = type(exc).__module__
    return module.startswith("pyspark") or module.startswith("py4j")


def _exception_detail(exc: BaseException, method: str) -> Any:
    getter = getattr(exc, method, None)
    if getter is None:
        return None
    try:
        return getter()
    except Exception:
        return None


def _concise(message: str, limit: int = 2000) -> str:
    """Spark's message without the JVM stack trace."""
    kept = []
    for line in message.splitlines():
        if line.lstrip().startswith("at ") or "JVM stacktrace" in line:
            break
        kept.append(line)
    text = "\n".join(kept).strip()
    return text if len(text) <= limit else text[:limit] + " ..."


def _quote(column: str) -> str:
    return "`" + column.replace("`", "``") + "`"


def _sql_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


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
