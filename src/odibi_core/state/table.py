"""A Delta state table: appended to idempotently under the table lock (the first append
creates it, schema and properties in the same commit), read back filtered, and evolved when
a newer layout adds columns.

Every table carries its layout's schema version in the table property
``odibi.state.schemaVersion``. A newer odibi_core adds the columns its layout has and the
table lacks (``ALTER TABLE ... ADD COLUMNS``; never a drop or a type change) and raises the
version before it appends; an older one leaves a newer table as it is, reads only the
columns it knows, and its rows hold NULL in the columns it does not.

Locally a table is a path-based Delta table whose commits take ``table_lock``, because Delta
on a plain file system is only safe within one JVM; a Unity Catalog table relies on the
catalog to serialise commits. Spark is imported inside methods only, and only started
(through the session provider) when a table is actually written or read.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from odibi_core.core.errors import StateError
from odibi_core.engine.failures import retry_commit_conflicts
from odibi_core.state.location import StateTableRef
from odibi_core.state.lock import table_lock

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# A column of a state table: (name, Spark type name). Type names are the keys of the
# mapping in ``DeltaStateTable._struct_type`` so the schemas stay plain data that imports
# no pyspark.
Column = tuple[str, str]
SPARK_TYPE_NAMES = ("string", "timestamp", "long", "int", "double", "boolean")

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# Delta keeps one idempotency marker per txnAppId forever unless told otherwise; state
# tables get one per run, so markers older than this are dropped at checkpoint time.
_TXN_RETENTION = "interval 30 days"
SCHEMA_VERSION_PROPERTY = "odibi.state.schemaVersion"


class DeltaStateTable:
    """One state table with a fixed schema: idempotent append (the first one creates it), read.

    Local commits (creation and appends) run under ``table_lock`` so that concurrent
    writers, threads or processes, never race Delta's file-system commit.
    """

    def __init__(
        self,
        ref: StateTableRef,
        columns: Sequence[Column],
        *,
        spark_provider: Callable[[], SparkSession],
        lock_timeout: float | None = None,
        stats_columns: Sequence[str] = (),
        schema_version: int = 1,
    ):
        unknown = [t for _, t in columns if t not in SPARK_TYPE_NAMES]
        if unknown:
            raise StateError(
                f"state table {ref.name}: unsupported column types {unknown}; "
                f"use one of {', '.join(SPARK_TYPE_NAMES)}"
            )
        self.ref = ref
        self.columns = tuple(columns)
        self.column_names = tuple(name for name, _ in self.columns)
        self._check_columns(stats_columns)
        self.stats_columns = tuple(stats_columns)
        self._spark_provider = spark_provider
        self._lock_timeout = lock_timeout
        # The version of ``columns``: raise it with every column a layout adds.
        self.schema_version = schema_version
        self._known_to_exist = False
        self._evolved = False  # the table holds this layout's columns and version

    # ------------------------------------------------------------------ existence

    def exists(self) -> bool:
        """Whether the table exists. Locally this looks at the file system, without Spark."""
        if self._known_to_exist:
            return True
        if self.ref.path is not None:
            # The first commit file appears atomically; a bare _delta_log folder may be a
            # creation still in progress in another process.
            found = any((self.ref.path / "_delta_log").glob("*.json"))
        else:
            found = self._spark().catalog.tableExists(self.ref.name)
        self._known_to_exist = found
        return found

    def _create_with(self, spark: SparkSession, frame: DataFrame, txn: Mapping[str, str]) -> bool:
        """Create the missing table with its first rows in one commit: whether it did.

        ``CREATE TABLE AS SELECT`` through the V2 writer (Spark Connect runs it too) carries
        the schema, the table properties and the append's ``txnAppId`` at once, so a retried
        first append is skipped like any other; an empty ``CREATE TABLE`` and then an append
        cost twice the Spark jobs. A table that exists (or that another cluster created in
        the meantime) is left to the ordinary append.
        """
        if self._known_to_exist:
            return False
        self._check_catalog(spark)  # first: every lookup of a catalog table fails without it
        if self.exists():
            return False
        self._create_schema(spark)
        writer = frame.writeTo(self._sql_name()).using("delta").options(**txn)
        for key, value in self._properties().items():
            writer = writer.tableProperty(key, value)
        try:
            writer.create()
        except Exception as exc:
            self._known_to_exist = False
            if not self.exists():
                raise StateError(
                    f"could not create state table {self.ref}: {_first_line(exc)}; check that "
                    "the state schema exists and that this job may create tables in it"
                ) from exc
            return False
        self._known_to_exist = self._evolved = True
        return True

    def _properties(self) -> dict[str, str]:
        """The table properties a new table gets, its schema version among them."""
        properties = {
            "delta.setTransactionRetentionDuration": _TXN_RETENTION,
            SCHEMA_VERSION_PROPERTY: str(self.schema_version),
        }
        if self.stats_columns:
            # Reads filter on a few key columns; statistics on every JSON text column would
            # cost each small append more than the append itself.
            properties["delta.dataSkippingStatsColumns"] = ",".join(self.stats_columns)
        return properties

    def _sql_name(self) -> str:
        """The table in SQL text: a quoted path locally, the quoted name in a catalog."""
        if self.ref.path is not None:
            return "delta.`" + str(self.ref.path).replace("`", "``") + "`"
        return ".".join(f"`{part}`" for part in self.ref.name.split("."))

    def _check_catalog(self, spark: SparkSession) -> None:
        """A catalog table's catalog must exist: its absence is named, not left to Spark."""
        parts = self.ref.name.split(".")
        if self.ref.path is None and len(parts) == 3 and not _catalog_exists(spark, parts[0]):
            raise StateError(
                f"catalog '{parts[0]}' of state table {self.ref.name} does not exist, or this "
                f"job lacks USE CATALOG on it; create it, or set the state schema to an "
                "existing catalog"
            )

    def _create_schema(self, spark: SparkSession) -> None:
        """The state schema, before its first table: a fresh workspace has none.

        Locally it is a folder; in a catalog, a missing privilege is named.
        """
        if self.ref.path is not None:
            self.ref.path.parent.mkdir(parents=True, exist_ok=True)
            return
        parts = self.ref.name.split(".")[:-1]
        schema = ".".join(f"`{part}`" for part in parts)
        try:
            spark.sql(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        except Exception as exc:
            raise StateError(schema_error(self.ref.name, ".".join(parts), exc)) from exc

    # ------------------------------------------------------------------ writing

    def append(
        self, rows: Sequence[Mapping[str, Any]], *, txn_app_id: str, txn_version: int
    ) -> None:
        """Append ``rows`` exactly once per (``txn_app_id``, ``txn_version``).

        A retried append with the same pair is skipped by Delta, so it adds no duplicates.
        """
        if not rows:
            return
        values = [self._row_values(row) for row in rows]
        txn = {"txnAppId": txn_app_id, "txnVersion": str(txn_version)}
        self._spark()  # start Spark before holding the lock others wait on
        with table_lock(self.ref.path, timeout=self._lock_timeout):
            spark = self._spark()
            try:
                # One file per commit: state rows are few, and small files slow every read.
                # Through Arrow: a list of rows would go through a Python worker, a second
                # or so per append even for one row.
                frame = spark.createDataFrame(self._arrow_table(values)).coalesce(1)
                if self._create_with(spark, frame, txn):
                    return
                self._evolve(spark)
                # mergeSchema: should an earlier layout's table appear between the check
                # and this append, its missing columns are still added. Only this
                # framework's own columns ever reach a state table.
                writer = (
                    frame.write.format("delta")
                    .mode("append")
                    .options(**txn)
                    .option("mergeSchema", "true")
                )
                # Another writer's commit (a catalog table has no local lock) conflicts
                # with this one; txnAppId makes appending again safe.
                retry_commit_conflicts(
                    lambda: _save(writer, self.ref), what=f"an append to state table {self.ref}"
                )
            except StateError:
                raise
            except Exception as exc:
                raise StateError(
                    f"could not append {len(values)} row(s) to state table {self.ref} "
                    f"(txnAppId {txn_app_id}): {_first_line(exc)}"
                ) from exc

    def _row_values(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        unknown = sorted(set(row) - set(self.column_names))
        if unknown:
            raise StateError(
                f"row for state table {self.ref.name} has unknown columns {unknown}; "
                f"its columns are {', '.join(self.column_names)}"
            )
        return tuple(row.get(name) for name in self.column_names)

    def delete(
        self,
        keys: Sequence[Mapping[str, Any]],
        *,
        time_columns: Sequence[str] = (),
        before: datetime | None = None,
    ) -> None:
        """Delete the rows equal to one of ``keys`` (column -> value) that were also last
        written before ``before`` (when given): the first non-NULL of ``time_columns`` is
        earlier.

        Values reach SQL hex-encoded, never as their text: Delta's DELETE takes no SQL
        parameters.
        """
        self._check_columns([*time_columns, *(name for key in keys for name in key)])
        if not keys or not self.exists():
            return
        condition = f"({_matching(keys)})"
        if before is not None:
            written = "coalesce(" + ", ".join(f"`{name}`" for name in time_columns) + ")"
            micros = (before - _EPOCH) // timedelta(microseconds=1)
            condition += f" AND {written} < timestamp_micros({micros})"
        self._change(
            f"DELETE FROM {self._sql_name()} WHERE {condition}",
            what=f"delete {len(keys)} key(s) from",
        )

    def _change(self, statement: str, *, what: str) -> None:
        """Run a DELETE under the table lock, retried on a commit conflict."""
        self._spark()  # start Spark before holding the lock others wait on
        with table_lock(self.ref.path, timeout=self._lock_timeout):
            try:
                retry_commit_conflicts(
                    lambda: self._spark().sql(statement).collect(),
                    what=f"a change of state table {self.ref}",
                )
            except Exception as exc:
                raise StateError(
                    f"could not {what} state table {self.ref}: {_first_line(exc)}"
                ) from exc

    # ------------------------------------------------------------------ evolving

    def stored_schema_version(self) -> int:
        """The table's schema version: 0 for a table created before versions were kept."""
        rows = self._spark().sql(f"SHOW TBLPROPERTIES {self._sql_name()}").collect()
        found = {row[0]: row[1] for row in rows}.get(SCHEMA_VERSION_PROPERTY)
        try:
            return int(found) if found is not None else 0
        except ValueError:
            raise StateError(
                f"state table {self.ref} has schema version {found!r}, not a number; set "
                f"TBLPROPERTIES ('{SCHEMA_VERSION_PROPERTY}' = '<n>') to the layout it holds"
            ) from None

    def _evolve(self, spark: SparkSession) -> None:
        """Bring a table of an earlier layout up to this one, once per instance.

        A table of this version or a newer one is left alone. SQL, not the ``DeltaTable``
        API, so that Spark Connect runs it too.
        """
        if self._evolved:
            return
        try:
            self._bring_up_to_date(spark)
        except StateError:
            raise
        except Exception:
            # Another writer of a catalog table may have evolved it meanwhile: look again.
            try:
                self._bring_up_to_date(spark)
            except StateError:
                raise
            except Exception as exc:
                raise StateError(
                    f"could not bring state table {self.ref} to schema version "
                    f"{self.schema_version}: {_first_line(exc)}; this job needs MODIFY on it"
                ) from exc
        self._evolved = True

    def _bring_up_to_date(self, spark: SparkSession) -> None:
        if self.stored_schema_version() >= self.schema_version:
            return
        self._add_missing_columns(spark)
        spark.sql(
            f"ALTER TABLE {self._sql_name()} SET TBLPROPERTIES "
            f"('{SCHEMA_VERSION_PROPERTY}' = '{self.schema_version}')"
        )

    def _add_missing_columns(self, spark: SparkSession) -> None:
        missing = self._missing_columns(spark)
        if missing:
            columns = _column_list(missing)
            spark.sql(f"ALTER TABLE {self._sql_name()} ADD COLUMNS ({columns})")

    def _missing_columns(self, spark: SparkSession) -> list[Any]:
        """This layout's fields the table lacks; a column of another type is refused."""
        present = {field.name.lower(): field.dataType for field in self._raw(spark).schema}
        missing = []
        for field in self._struct_type():
            found = present.get(field.name.lower())
            if found is None:
                missing.append(field)
            elif found.simpleString() != field.dataType.simpleString():
                raise StateError(
                    f"column {field.name} of state table {self.ref} is "
                    f"{found.simpleString()}, but this odibi_core writes it as "
                    f"{field.dataType.simpleString()}; state columns are never retyped, so "
                    "move the table aside (rename it) and let the next run create it again"
                )
        return missing

    # ------------------------------------------------------------------ reading

    def read(
        self,
        where: Mapping[str, Any] | None = None,
        *,
        order_by: Sequence[str] = (),
        descending: bool = False,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Rows whose columns equal ``where``'s values. A missing table has no rows.

        Timestamps come back as timezone-aware UTC datetimes, whatever the local time zone.
        """
        where = dict(where or {})
        self._check_columns([*where, *order_by])
        if not self.exists():
            return []
        local = self._read_here(where, order_by, descending, limit)
        if local is not None:
            return local
        from pyspark.sql import functions as F

        spark = self._spark()
        try:
            frame = self._load(spark)
            for name, value in where.items():
                frame = frame.where(F.col(name).isNull() if value is None else F.col(name) == value)
            if order_by:
                sort = [F.col(c).desc_nulls_last() if descending else F.col(c) for c in order_by]
                frame = frame.orderBy(*sort)
            if limit is not None:
                frame = frame.limit(limit)
            # Timestamps travel as epoch microseconds: collect() would otherwise turn them
            # into naive datetimes in the Python process's local time zone.
            frame = frame.select(
                *[
                    F.unix_micros(F.col(name)).alias(name) if kind == "timestamp" else F.col(name)
                    for name, kind in self.columns
                ]
            )
            collected = frame.collect()
        except Exception as exc:
            raise StateError(f"could not read state table {self.ref}: {_first_line(exc)}") from exc
        timestamps = {name for name, kind in self.columns if kind == "timestamp"}
        return [
            {
                name: _from_epoch_micros(value) if name in timestamps else value
                for name, value in row.asDict().items()
            }
            for row in collected
        ]

    def _read_here(
        self,
        where: Mapping[str, Any],
        order_by: Sequence[str],
        descending: bool,
        limit: int | None,
    ) -> list[dict[str, Any]] | None:
        """``read`` of a plain local table by this process: its log and parquet files, no
        Spark job (and no JVM for a command that only reads). None when Spark must read it
        (a catalog table, a log cleaned after a checkpoint, a file that does not read)."""
        if self.ref.path is None:
            return None
        from odibi_core.engine.delta_snapshot import read_local_delta

        table = read_local_delta(str(self.ref.path))
        if table is None:
            return None
        present = {name.lower(): name for name in table.column_names}
        try:  # before the rows become Python objects
            table = _matching_rows(table, where, present)
        except (TypeError, ValueError):  # a value of another type than its column: Spark's
            return None
        columns = {}
        for name, kind in self.columns:  # an older layout's table lacks later columns: NULL
            found = present.get(name.lower())
            if found is None:
                columns[name] = [None] * table.num_rows
            elif kind == "timestamp":
                micros = table.column(found).cast("int64").to_pylist()
                columns[name] = [_from_epoch_micros(value) for value in micros]
            else:
                columns[name] = table.column(found).to_pylist()
        rows = [dict(zip(columns, values)) for values in zip(*columns.values())]
        for name in reversed(order_by):  # NULLs first ascending, last descending, as Spark
            rows.sort(key=lambda row: (row[name] is not None, row[name]), reverse=descending)
        return rows if limit is None else rows[:limit]

    def _load(self, spark: SparkSession) -> DataFrame:
        """The table, with columns of the current layout that an older table lacks as NULL."""
        from pyspark.sql import functions as F

        frame = self._raw(spark)
        present = {name.lower() for name in frame.columns}
        types = {field.name: field.dataType for field in self._struct_type().fields}
        for name, _ in self.columns:
            if name.lower() not in present:
                frame = frame.withColumn(name, F.lit(None).cast(types[name]))
        return frame

    def _raw(self, spark: SparkSession) -> DataFrame:
        if self.ref.path is not None:
            return spark.read.format("delta").load(str(self.ref.path))
        return spark.read.table(self.ref.name)

    def _check_columns(self, names: Sequence[str]) -> None:
        unknown = [name for name in names if name not in self.column_names]
        if unknown:
            raise StateError(
                f"state table {self.ref.name} has no column(s) {unknown}; "
                f"its columns are {', '.join(self.column_names)}"
            )

    # ------------------------------------------------------------------ helpers

    def _spark(self) -> SparkSession:
        return self._spark_provider()

    def _arrow_table(self, values: Sequence[tuple[Any, ...]]) -> Any:
        import pyarrow as pa

        arrow_types = {
            "string": pa.string(),
            "timestamp": pa.timestamp("us", tz="UTC"),
            "long": pa.int64(),
            "int": pa.int32(),
            "double": pa.float64(),
            "boolean": pa.bool_(),
        }
        return pa.table(
            {
                name: pa.array([row[i] for row in values], type=arrow_types[kind])
                for i, (name, kind) in enumerate(self.columns)
            }
        )

    def _struct_type(self):
        from pyspark.sql import types as T

        spark_types = {
            "string": T.StringType(),
            "timestamp": T.TimestampType(),
            "long": T.LongType(),
            "int": T.IntegerType(),
            "double": T.DoubleType(),
            "boolean": T.BooleanType(),
        }
        return T.StructType(
            [T.StructField(name, spark_types[kind], nullable=True) for name, kind in self.columns]
        )


def _matching(keys: Sequence[Mapping[str, Any]]) -> str:
    """SQL true for the rows equal to one of ``keys`` (column -> value)."""
    return " OR ".join(
        "(" + " AND ".join(_equals(name, value) for name, value in key.items()) + ")"
        for key in keys
    )


def _equals(name: str, value: str | int | None) -> str:
    """``name = value`` in SQL; text goes in hex, so no quote in it can end the literal."""
    if value is None:
        return f"`{name}` IS NULL"
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise StateError(f"a key of a state table delete must be text or a whole number: {value!r}")
    if isinstance(value, int):
        return f"`{name}` = {value}"
    return f"`{name}` = decode(unhex('{value.encode('utf-8').hex()}'), 'UTF-8')"


def _column_list(fields: Any) -> str:
    return ", ".join(f"`{field.name}` {field.dataType.simpleString()}" for field in fields)


def drop_data_table(ref: StateTableRef, spark_provider: Callable[[], SparkSession]) -> None:
    """Remove a checkpoint, handoff or cache data table: its folder, or the catalog table."""
    if ref.path is not None:
        shutil.rmtree(ref.path, ignore_errors=True)
    else:
        name = ".".join(f"`{part}`" for part in ref.name.split("."))
        spark_provider().sql(f"DROP TABLE IF EXISTS {name}")


def _save(writer: Any, ref: StateTableRef) -> None:
    if ref.path is not None:
        writer.save(str(ref.path))
    else:
        writer.saveAsTable(ref.name)


def _matching_rows(table: Any, where: Mapping[str, Any], present: Mapping[str, str]) -> Any:
    """The rows of an Arrow ``table`` whose columns equal ``where``'s values (None: NULL);
    a column the table lacks is NULL in every row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    mask = pa.array([True] * table.num_rows, type=pa.bool_())
    for name, value in where.items():
        found = present.get(name.lower())
        if found is None:
            keep = pa.array([value is None] * table.num_rows, type=pa.bool_())
        elif value is None:
            keep = pc.is_null(table.column(found))
        else:
            column = table.column(found)
            keep = pc.fill_null(pc.equal(column, pa.scalar(value, type=column.type)), False)
        mask = pc.and_(mask, keep)
    return table.filter(mask)


def _from_epoch_micros(value: int | None) -> datetime | None:
    return None if value is None else _EPOCH + timedelta(microseconds=value)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _catalog_exists(spark: SparkSession, catalog: str) -> bool:
    return any(found.name == catalog for found in spark.catalog.listCatalogs())


# Unity Catalog names the privilege a statement lacks; these are the ones schema creation needs.
_PRIVILEGES = ("USE CATALOG", "CREATE SCHEMA", "USE SCHEMA")


def schema_error(table: str, schema: str, exc: BaseException) -> str:
    """What to say when the state schema cannot be created: the privilege, if one is named."""
    text = str(exc)
    if any(word in text for word in ("PERMISSION_DENIED", "INSUFFICIENT_PERMISSIONS")):
        missing = [name for name in _PRIVILEGES if name in text.upper()] or list(_PRIVILEGES[:2])
        return (
            f"could not create state schema {schema} for {table}: this job lacks "
            f"{' and '.join(missing)}; grant it, or set the state schema to one it may use"
        )
    return f"could not create state schema {schema} for {table}: {_first_line(exc)}"
