"""The pandas engine: Spark SQL run on DuckDB, files read without a JVM, pandas for users.

SQL is translated from Spark SQL with sqlglot and run on a new DuckDB connection per
call, so steps running in parallel never see each other's tables. Inputs are handed to
DuckDB as Arrow tables, which keeps their types exact.

Between steps, data stays in the form DuckDB reads fastest: a parquet ingest is a lazy
``ParquetScan`` (DuckDB reads the columns and row groups a query needs), and a SQL
step's result or a Delta read is an Arrow table. It becomes a pandas DataFrame only where
pandas is asked for: a function step's inputs and the frames a run returns (``adopt``).

csv, json and parquet are read and written with pandas and pyarrow, in the layout Spark
uses (a directory of ``part-*`` files), so either engine can read what the other wrote.
Delta and tables go through the Spark engine, which is only started when one is used.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from odibi_core.core.errors import EngineError, PipelineConfigError
from odibi_core.core.location_kind import pandas_cannot_reach
from odibi_core.core.locations import (
    check_replaceable,
    files_with_data,
    in_subfolders,
    local_path,
    path_exists,
)
from odibi_core.engine.base import EngineContext, Frame, ReadSpec, WriteResult, WriteSpec
from odibi_core.engine.csv_rows import first_ragged_row
from odibi_core.engine.delta_snapshot import read_local_delta
from odibi_core.engine.duckdb_connection import isolated_duckdb, quote_identifier
from odibi_core.engine.parquet_scan import ParquetScan, without_stored_index
from odibi_core.engine.rules import (
    DELTA_FORMATS,
    FILE_FORMATS,
    check_write_spec,
    is_pandas_engine_frame,
)
from odibi_core.engine.schema import (
    arrow_to_pandas,
    json_safe,
    json_safe_rows,
    normalize_arrow_table,
    pandas_schema_strings,
    pandas_to_arrow,
    schema_strings,
)
from odibi_core.engine.sql import to_duckdb

if TYPE_CHECKING:
    import duckdb

# Spark's csv option names, as pandas calls them.
_CSV_READ_OPTIONS = {
    "sep": "sep",
    "delimiter": "sep",
    "quote": "quotechar",
    "escape": "escapechar",
    "encoding": "encoding",
    "charset": "encoding",
    "comment": "comment",
    "linesep": "lineterminator",
}
_CSV_WRITE_OPTIONS = {
    "sep": "sep",
    "delimiter": "sep",
    "quote": "quotechar",
    "escape": "escapechar",
    "encoding": "encoding",
    "charset": "encoding",
    "nullvalue": "na_rep",
    "linesep": "lineterminator",
}
# DuckDB failures a retry can fix: memory taken by parallel steps, I/O, interrupts.
_RETRYABLE_DUCKDB_ERRORS = ("OutOfMemoryException", "IOException", "InterruptException")


class PandasEngineContext:
    """pandas + DuckDB, for one pipeline run. Thread-safe: it holds no shared state."""

    name = "pandas"

    def __init__(
        self,
        *,
        spark_engine: Callable[[], EngineContext] | None = None,
        duckdb_threads: int | None = None,
    ):
        self._spark_engine = spark_engine
        self._duckdb_threads = duckdb_threads

    def owns(self, frame: Frame) -> bool:
        return is_pandas_engine_frame(frame)

    # -- SQL and functions ------------------------------------------------------------

    def sql(self, query: str, inputs: Mapping[str, Frame], *, step: str) -> pa.Table:
        scans = {name: frame for name, frame in inputs.items() if isinstance(frame, ParquetScan)}
        tables = {
            name: self.to_arrow(frame, step=step)
            for name, frame in inputs.items()
            if name not in scans
        }
        column_types = {name: sql_types(table.schema) for name, table in tables.items()}
        column_types.update(
            {name: sql_types(scan.normalized_schema) for name, scan in scans.items()}
        )
        duckdb_sql = to_duckdb(query, step=step, column_types=column_types)
        import duckdb

        for scan in scans.values():
            scan.check_unchanged(step)
        try:
            with self.duckdb(tables, scans) as connection:
                relation = connection.sql(duckdb_sql)
                result = _spark_integer_widths(relation, relation.to_arrow_table())
        except duckdb.Error as exc:
            raise _duckdb_error(exc, step, duckdb_sql, list(inputs)) from exc
        except pa.ArrowInvalid as exc:
            raise EngineError(
                f"step '{step}': [ARITHMETIC_OVERFLOW] a sum does not fit in a BIGINT, "
                f"as Spark would report: {exc}. DuckDB SQL: {duckdb_sql}"
            ) from exc
        return normalize_arrow_table(result)

    @contextmanager
    def duckdb(
        self, tables: Mapping[str, pa.Table], scans: Mapping[str, ParquetScan] | None = None
    ) -> Iterator[Any]:
        """An in-memory DuckDB connection that sees ``tables`` and ``scans`` and nothing
        else, in UTC, with this engine's thread limit; the scans' views are dropped on
        leaving."""
        with isolated_duckdb(tables, threads=self._duckdb_threads) as connection:
            views = [quote_identifier(name) for name in scans or {}]
            for view, scan in zip(views, (scans or {}).values(), strict=True):
                connection.execute(f"CREATE VIEW {view} AS {_scan_select(scan)}")
            yield connection
            for view in views:
                connection.execute(f"DROP VIEW {view}")

    def call(
        self,
        fn: Callable[..., Any],
        inputs: Mapping[str, Frame],
        params: Mapping[str, Any],
        *,
        step: str,
    ) -> Any:
        frames = {
            logical: _private_copy(frame)
            if isinstance(frame, pd.DataFrame)
            else self.adopt(frame, step=step)
            for logical, frame in inputs.items()
        }
        return fn(**frames, **params)

    # -- reads ------------------------------------------------------------------------

    def read(self, spec: ReadSpec, *, step: str) -> Frame:
        fmt = spec.format.lower()
        if fmt in DELTA_FORMATS:
            local = _local_delta(spec, fmt)
            if local is not None:
                return local
            spark = self._spark(step, f"read {fmt} '{spec.source}'")
            return spark.to_arrow(spark.read(spec, step=step))
        if fmt not in FILE_FORMATS:
            raise PipelineConfigError(
                f"step '{step}': cannot read format '{spec.format}' from '{spec.source}'; "
                "use csv, json, parquet, delta or table"
            )
        source = _readable_source(spec, fmt, step=step)
        options = dict(spec.options)
        files = files_with_data(source, fmt, step=step)
        try:
            if fmt == "parquet":
                return _parquet(spec.source, source, files, options)
        except _FILE_ERRORS as exc:
            raise _file_error(
                exc, step=step, action="read", fmt=fmt, location=spec.source, options=options
            ) from exc
        reader = _read_csv if fmt == "csv" else _read_json
        parts = []
        for path in files:
            try:
                parts.append(reader(path, options))
            except _FILE_ERRORS as exc:
                raise _file_error(
                    exc, step=step, action="read", fmt=fmt, location=str(path), options=options
                ) from exc
        return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]

    # -- writes -----------------------------------------------------------------------

    def write(self, frame: Frame, spec: WriteSpec, *, step: str) -> WriteResult:
        check_write_spec(spec, step=step)
        fmt = spec.format.lower()
        if fmt in DELTA_FORMATS:
            spark = self._spark(step, f"write {fmt} '{spec.target}'")
            owned = self.owns(frame)  # a Spark frame goes to Spark as it is
            return spark.write(self.to_arrow(frame, step=step) if owned else frame, spec, step=step)
        frame = self.adopt(frame, step=step)
        if spec.partition_by and fmt != "parquet":
            raise PipelineConfigError(
                f"step '{step}': partition_by with {fmt} needs engine: spark; "
                "the pandas engine partitions parquet and delta only"
            )
        target = _local_place(spec.target, step=step, action=f"write {fmt}")
        check_replaceable(target, fmt, step=step)
        try:
            _replace_directory(target, lambda staging: _write_files(frame, spec, staging))
        except _FILE_ERRORS as exc:
            raise _file_error(
                exc, step=step, action="write", fmt=fmt, location=spec.target, options=spec.options
            ) from exc
        return WriteResult(rows=len(frame), count_source="in_memory")

    # -- frames -----------------------------------------------------------------------

    def schema(self, frame: Frame) -> list[str]:
        if isinstance(frame, (pa.Table, ParquetScan)):
            return schema_strings(frame.schema)
        return pandas_schema_strings(self.adopt(frame))

    def count(self, frame: Frame) -> int:
        if isinstance(frame, (pa.Table, ParquetScan)):
            return len(frame)
        return len(self.adopt(frame))

    def sample(self, frame: Frame, n: int) -> list[dict[str, Any]]:
        if n <= 0:
            return []
        if isinstance(frame, pa.Table):
            return json_safe_rows(frame.slice(0, n).to_pylist())
        if isinstance(frame, ParquetScan):
            return json_safe_rows(frame.head(n))
        return json_safe_rows(_first_records(self.adopt(frame), n))

    def to_arrow(self, frame: Frame, *, step: str = "") -> pa.Table:
        if isinstance(frame, pa.Table):
            return normalize_arrow_table(frame)
        if isinstance(frame, ParquetScan):
            return frame.to_arrow(step)
        if isinstance(frame, pd.DataFrame):
            return pandas_to_arrow(frame)
        if hasattr(frame, "toArrow"):  # a Spark DataFrame: no pyspark import needed
            return normalize_arrow_table(frame.toArrow())
        raise EngineError(
            f"the pandas engine cannot use a {type(frame).__name__}; "
            "steps exchange pandas or Spark DataFrames"
        )

    def from_arrow(self, table: Any) -> pd.DataFrame:
        return arrow_to_pandas(normalize_arrow_table(table))

    def adopt(self, frame: Frame, *, step: str = "") -> pd.DataFrame:
        """``frame`` as a pandas DataFrame: what function steps and a run's results get."""
        if isinstance(frame, pd.DataFrame):
            return frame
        return self.from_arrow(self.to_arrow(frame, step=step))

    def close(self) -> None:
        """Nothing to release: each SQL call closes its own DuckDB connection."""

    def _spark(self, step: str, action: str) -> EngineContext:
        if self._spark_engine is None:
            raise EngineError(
                f"step '{step}': cannot {action} on the pandas engine: Delta needs Spark, "
                "and this pandas engine was built without one"
            )
        return self._spark_engine()


def sql_types(schema: pa.Schema) -> dict[str, str]:
    """Spark SQL types of the columns whose type changes how Spark SQL reads."""
    types: dict[str, str] = {}
    for field in schema:
        kind = field.type
        if pa.types.is_integer(kind):
            types[field.name] = "BIGINT"
        elif pa.types.is_floating(kind):
            types[field.name] = "DOUBLE"
        elif pa.types.is_decimal(kind):
            types[field.name] = f"DECIMAL({kind.precision}, {kind.scale})"
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            types[field.name] = "STRING"
        elif pa.types.is_boolean(kind):
            types[field.name] = "BOOLEAN"
        elif pa.types.is_timestamp(kind):
            types[field.name] = "TIMESTAMP"
        elif pa.types.is_date(kind):
            types[field.name] = "DATE"
    return types


def _first_records(frame: pd.DataFrame, n: int) -> list[dict[str, Any]]:
    """``frame.head(n).to_dict("records")``, at half the cost when the names are unique."""
    if not frame.columns.is_unique:
        return frame.head(n).to_dict("records")
    names = list(frame.columns)
    return [dict(zip(names, row)) for row in frame.iloc[:n].itertuples(index=False, name=None)]


def _parquet(source: str, path: Path, files: list[Path], options: Mapping[str, Any]) -> Frame:
    """A lazy scan of plain parquet files; an Arrow table where pyarrow must resolve
    the layout (reader options, partition folders, files of different schemas)."""
    plain = not options and not in_subfolders(path, files)
    scan = ParquetScan.open(source, files) if plain else None
    if scan is not None:
        return scan
    return normalize_arrow_table(
        without_stored_index(pq.read_table(str(path), **options)).replace_schema_metadata(None)
    )


def _scan_select(scan: ParquetScan) -> str:
    """A view over the scan's files with the canonical types the Arrow path would give:
    naive timestamps are instants in UTC, as Spark reads them."""
    naive = [f.name for f in scan.schema if pa.types.is_timestamp(f.type) and f.type.tz is None]
    replace = ", ".join(
        f"CAST({quote_identifier(n)} AS TIMESTAMPTZ) AS {quote_identifier(n)}" for n in naive
    )
    star = f"* REPLACE ({replace})" if replace else "*"
    return f"SELECT {star} FROM {scan.duckdb_source()}"


def _local_delta(spec: ReadSpec, fmt: str) -> pa.Table | None:
    """A plain Delta table in a local folder, read without Spark (None: Spark reads it)."""
    if fmt != "delta" or set(spec.options) - {"versionAsOf"}:
        return None
    version = spec.options.get("versionAsOf")
    return read_local_delta(spec.source, int(version) if version is not None else None)


def _private_copy(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame a function may mutate without changing what any other reader sees.

    A function step receives the very frame other steps, the tracker and the store also
    read; ``inplace=True``, ``.loc`` and column assignment change that object. Each reader
    therefore gets its own frame: a shallow copy when pandas' copy-on-write mode is on
    (pandas 3, or ``pd.options.mode.copy_on_write = True``), which copies a column only
    when it is written; a deep copy otherwise, because a shallow copy without
    copy-on-write shares its arrays. The framework never switches copy-on-write on
    itself: it is process-wide and changes how user code behaves (``.values`` becomes
    read-only), so it stays the user's choice.
    """
    return frame.copy(deep=not _copy_on_write())


def _copy_on_write() -> bool:
    if int(pd.__version__.split(".", 1)[0]) >= 3:
        return True
    return pd.options.mode.copy_on_write is True


def _spark_integer_widths(relation: duckdb.DuckDBPyRelation, table: pa.Table) -> pa.Table:
    """Cast DuckDB's 128-bit sums to int64, the BIGINT Spark's ``sum`` returns.

    The cast is checked: a sum beyond int64 raises, as Spark's ANSI mode does.
    """
    for position, duckdb_type in enumerate(relation.types):
        if str(duckdb_type) in ("HUGEINT", "UHUGEINT"):
            column = table.column(position).cast(pa.int64())
            table = table.set_column(position, table.field(position).name, column)
    return table


def _duckdb_error(exc: Exception, step: str, duckdb_sql: str, inputs: list[str]) -> EngineError:
    kind = type(exc).__name__
    hint = ""
    if kind == "CatalogException" and "Table with name" in str(exc):
        hint = f"; the step's inputs are: {', '.join(inputs) or 'none'}"
    elif kind == "CatalogException" and "Function with name" in str(exc):
        hint = "; DuckDB lacks this Spark function, so run the step with engine: spark"
    return EngineError(
        f"step '{step}': DuckDB could not run the SQL{hint}\n{exc}\n"
        f"DuckDB SQL (translated from Spark SQL): {duckdb_sql}",
        retryable=kind in _RETRYABLE_DUCKDB_ERRORS,
    )


_FILE_ERRORS = (TypeError, OSError, ValueError, pa.ArrowException)


def _file_error(
    exc: BaseException,
    *,
    step: str,
    action: str,
    fmt: str,
    location: str,
    options: Mapping[str, Any],
) -> Exception:
    """Name the step and the file; an option pandas does not take is the user's to fix."""
    if isinstance(exc, TypeError):
        return PipelineConfigError(
            f"step '{step}': an option of this {fmt} {action} is not understood by the "
            f"pandas engine ({exc}); options: {sorted(options)}"
        )
    return EngineError(
        f"step '{step}': cannot {action} {fmt} '{location}': {exc}",
        retryable=isinstance(exc, OSError),
    )


def _readable_source(spec: ReadSpec, fmt: str, *, step: str) -> Path:
    """The local path of a file read; a URI only Spark reaches, or a missing path, is an error.

    A ``/Volumes/...`` path is read as it is written, through the Databricks FUSE mount.
    """
    source = _local_place(spec.source, step=step, action=f"read {fmt}")
    if not path_exists(source):
        raise EngineError(
            f"step '{step}': cannot read {fmt} '{spec.source}': the path does not exist; "
            "check the step's value",
            retryable=False,
        )
    return source


def _local_place(location: str, *, step: str, action: str) -> Path:
    """The path Python's file functions reach ``location`` by, or the step's error."""
    path = local_path(location)
    if path is None:
        reason = pandas_cannot_reach(location, writing=action.startswith("write"))
        raise EngineError(
            f"step '{step}': the pandas engine cannot {action} '{location}': {reason}",
            retryable=False,
        )
    return path


def _read_csv(path: Path, options: Mapping[str, Any]) -> pd.DataFrame:
    mode = next((str(v) for k, v in options.items() if k.lower() == "mode"), "FAILFAST")
    if mode.upper() != "FAILFAST":
        # A TypeError is reported as an option the pandas engine does not understand.
        raise TypeError(
            f"mode '{mode}' is a Spark csv mode; the pandas engine reads csv as FAILFAST "
            "only, so run the step with engine: spark"
        )
    ragged = first_ragged_row(path, options)
    if ragged:
        raise ValueError(ragged)
    kwargs: dict[str, Any] = {}
    header = True
    for key, value in options.items():
        lowered = key.lower()
        if lowered == "mode":
            continue
        if lowered == "header":
            header = _truthy(value)
        elif lowered == "inferschema":
            if not _truthy(value):
                kwargs["dtype"] = str
        elif lowered == "nullvalue":
            kwargs["na_values"] = [value]
        elif lowered in _CSV_READ_OPTIONS:
            kwargs[_CSV_READ_OPTIONS[lowered]] = value
        else:
            kwargs[key] = value
    frame = pd.read_csv(path, header=0 if header else None, **kwargs)
    if not header:
        # Spark's names for headerless columns.
        frame.columns = [f"_c{i}" for i in range(len(frame.columns))]
    if "dtype" not in kwargs:
        _infer_dates_and_timestamps(frame)
    return frame


_ISO_DATE = r"\d{4}-\d{2}-\d{2}"
_ISO_TIMESTAMP = _ISO_DATE + r"[ T]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?"


def _infer_dates_and_timestamps(frame: pd.DataFrame) -> None:
    """Type ISO date and timestamp text as Spark's CSV inference does (dates, then UTC timestamps).

    Without this the same file would be ``string`` on pandas and ``date32[day]`` on Spark.
    """
    for column in frame.columns:
        values = frame[column].dropna()
        if frame[column].dtype != object or values.empty or not isinstance(values.iloc[0], str):
            continue
        text = values.astype(str)
        if text.str.fullmatch(_ISO_DATE).all():
            frame[column] = pd.to_datetime(frame[column], format="%Y-%m-%d").dt.date
        elif text.str.fullmatch(f"{_ISO_TIMESTAMP}|{_ISO_DATE}").all():
            frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")


def _read_json(path: Path, options: Mapping[str, Any]) -> pd.DataFrame:
    kwargs: dict[str, Any] = {"lines": True, "convert_dates": False}
    for key, value in options.items():
        lowered = key.lower()
        if lowered == "multiline":
            kwargs["lines"] = not _truthy(value)
        elif lowered in ("encoding", "charset"):
            kwargs["encoding"] = value
        else:
            kwargs[key] = value
    return pd.read_json(path, **kwargs)


def _write_files(frame: pd.DataFrame, spec: WriteSpec, directory: Path) -> None:
    fmt = spec.format.lower()
    part = directory / f"part-00000-{uuid.uuid4()}.{fmt}"
    if fmt == "parquet":
        table = pandas_to_arrow(frame)
        if spec.partition_by:
            pq.write_to_dataset(
                table,
                root_path=str(directory),
                partition_cols=list(spec.partition_by),
                basename_template=f"part-{{i}}-{uuid.uuid4()}.parquet",
                **dict(spec.options),
            )
        else:
            pq.write_table(table, part, **dict(spec.options))
    elif fmt == "csv":
        kwargs: dict[str, Any] = {"index": False, "header": True}
        for key, value in spec.options.items():
            lowered = key.lower()
            if lowered == "header":
                kwargs["header"] = _truthy(value)
            elif lowered in _CSV_WRITE_OPTIONS:
                kwargs[_CSV_WRITE_OPTIONS[lowered]] = value
            else:
                kwargs[key] = value
        frame.to_csv(part, **kwargs)
    else:
        # JSON lines, as Spark writes them; values go through Arrow so dates and
        # timestamps are written as ISO strings and missing values as null.
        with part.open("w", encoding="utf-8") as out:
            for row in pandas_to_arrow(frame).to_pylist():
                out.write(json.dumps({k: json_safe(v) for k, v in row.items()}) + "\n")
    (directory / "_SUCCESS").touch()


def _replace_directory(target: Path, fill: Callable[[Path], None]) -> None:
    """Write into a staging directory, then swap it in for ``target``.

    A failed write leaves the previous contents of ``target`` in place.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.odibi-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        fill(staging)
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)
