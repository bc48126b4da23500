"""Delta writes: overwrite, append or merge, each measured by its own commit.

An overwrite or append is tagged with the writer option ``userMetadata`` and its commit
is then looked up by that tag (in a local table's log files, else ``DESCRIBE HISTORY``),
so the row counts come from the commit's own metrics, even with concurrent writers. A merge
is SQL ``MERGE INTO``, and its counts are the row the MERGE itself returns. After the data
is committed, the write sets the table's clustering, comment and properties when the spec
asks for them.

Everything here is SQL and the DataFrame reader/writer, which Spark Connect (serverless)
runs as well as a classic session; the ``DeltaTable`` Python API, which needs Delta's
Connect plugin there, is used only on a classic session, to ask whether a path is a table.

pyspark and delta-spark are imported inside the functions that need them.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from odibi_core.core import faults
from odibi_core.core.errors import EngineError, PipelineConfigError
from odibi_core.core.snapshot import REDACTED, Redactor
from odibi_core.engine.base import WriteResult, WriteSpec
from odibi_core.engine.connect import deliver_flows, is_connect
from odibi_core.engine.delta_log import LocalDeltaLog
from odibi_core.engine.duckdb_connection import isolated_duckdb, quote_identifier
from odibi_core.engine.failures import retry_commit_conflicts
from odibi_core.engine.rules import spark_error, spark_options
from odibi_core.engine.session import built_here

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

USER_METADATA_CONF = "spark.databricks.delta.commitInfo.userMetadata"
_HISTORY_WINDOWS = (25, None)  # recent commits first, the whole history if needed
_DATA_OPERATIONS = (
    "WRITE",
    "MERGE",
    "CREATE TABLE AS SELECT",
    "REPLACE TABLE AS SELECT",
    "CREATE OR REPLACE TABLE AS SELECT",
)
# The session conf that tags a MERGE is shared by every thread of the session.
_session_tag_lock = threading.Lock()
# Duplicated merge keys named in the error: enough to find the problem, few enough to read.
_SHOWN_KEYS = 5
# Tries at a commit that keeps conflicting with other writers (MERGEs into one table).
_COMMIT_ATTEMPTS = 6
_ROWS_COLUMN, _NULL_KEY_COLUMN = "_odibi_rows", "_odibi_null_key"
# Delta's error for a path that holds no Delta table (missing, empty, or other files).
_NOT_A_TABLE = "DELTA_MISSING_DELTA_TABLE"
_MERGE_SOURCE = "odibi_merge_source"


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
        if self.table is not None:
            return spark.catalog.tableExists(self.table)
        if not is_connect(spark):
            from delta.tables import DeltaTable

            return DeltaTable.isDeltaTable(spark, self.path)
        try:
            spark.sql(f"DESCRIBE DETAIL {self.sql_ref}").select("format").first()
        except Exception as exc:
            if _NOT_A_TABLE in str(exc):
                return False
            raise
        return True


def write_delta(
    spark: SparkSession,
    frame: DataFrame,
    target: DeltaTarget,
    spec: WriteSpec,
    *,
    step: str,
    local_rows: Any = None,
) -> WriteResult:
    """Write ``frame`` to ``target`` as ``spec`` says; the rows come from the commit.

    ``local_rows``: the same rows as an Arrow table, when they are held in this process (a
    pandas-engine frame); a merge then checks its keys on them, without a Spark job.
    """
    return _DeltaWrite(spark, target, spec, step=step).run(frame, local_rows)


class _DeltaWrite:
    """One Delta write (overwrite, append or merge), tagged and measured by its commit."""

    def __init__(self, spark: SparkSession, target: DeltaTarget, spec: WriteSpec, *, step: str):
        self.spark = spark
        self.target = target
        self.spec = spec
        self.step = step
        self.tag = spec.commit_tag or f"{self._txn_tag_prefix or 'odibi:'}{uuid.uuid4().hex}"
        self._merged: dict[str, Any] | None = None  # the row a MERGE returned
        self._before_merge: int | None = None  # the version before it, over Connect

    @property
    def _txn_tag_prefix(self) -> str | None:
        """The tag prefix of an exactly-once append, the same in every execution of the run,
        so a later execution finds the commit that made Delta skip its append."""
        if self.spec.mode != "append" or self.spec.txn_app_id is None:
            return None
        return f"{self.spec.txn_app_id}#{self.spec.txn_version}@"

    def run(self, frame: DataFrame, local_rows: Any = None) -> WriteResult:
        spec = self.spec
        if spec.mode == "merge":
            self._check_merge_keys(frame)
            self._check_merge_key_values(frame, local_rows)
        # A commit that conflicts with another writer's committed nothing, so it is tried
        # again here, where the conflict happens, rather than re-running the whole step.
        retry_commit_conflicts(
            lambda: self._commit(frame),
            what=f"step '{self.step}' writing {self.target.label}",
            attempts=_COMMIT_ATTEMPTS,
        )
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

    def _commit(self, frame: DataFrame) -> None:
        """One try at the commit; whether the table exists is asked again on each try."""
        spec = self.spec
        self._merged = None
        if spec.mode == "overwrite":  # replaces whatever is there, or creates the table
            self._save(frame, "overwrite")
            return
        exists = self.target.exists(self.spark)
        if spec.mode == "merge" and not exists:
            exists = not self._create_by_first_merge(frame)
        if spec.mode == "merge":
            if exists:
                self._merge(frame)
            return
        if spec.mode == "append" and exists and not spec.merge_schema:
            self._check_append_schema(frame)
        self._save(frame, "append")

    def _create_by_first_merge(self, frame: DataFrame) -> bool:
        """A first merge creates the table, every row an insert: True when it did.

        Creation fails if the table exists by then, so two writers merging into a new table
        at once never both insert everything: the one that lost merges into the other's.
        """
        try:
            self._save(frame, "error")  # "errorifexists" is refused by Spark Connect
        except Exception:
            if not self.target.exists(self.spark):
                raise
            log.info("step %s: %s was created meanwhile; merging", self.step, self.target.label)
            return False
        return True

    def _save(self, frame: DataFrame, mode: str) -> None:
        spec = self.spec
        options = spark_options(spec.options)
        writer = frame.write.format("delta").mode(mode).options(**options)
        writer = writer.option("userMetadata", self.tag)
        if spec.merge_schema:
            writer = writer.option("mergeSchema", "true")
        if mode == "append" and spec.txn_app_id is not None:
            writer = writer.option("txnAppId", spec.txn_app_id)
            writer = writer.option("txnVersion", str(spec.txn_version))
        if spec.partition_by:
            writer = writer.partitionBy(*spec.partition_by)
        with faults.during("delta_write", watch=self.target.path):
            if self.target.table is not None:
                writer.saveAsTable(self.target.table)
            else:
                writer.save(self.target.path)

    def _merge(self, frame: DataFrame) -> None:
        """SQL ``MERGE INTO``, on a classic session and over Spark Connect alike.

        Its counts are the row the MERGE returns (``num_inserted_rows``, ...), not a
        lookup of the table's latest commit, which another writer may have made.
        """
        spec = self.spec
        condition = " AND ".join(f"t.{_quote(k)} = s.{_quote(k)}" for k in spec.merge_keys)
        update = "*"
        if spec.update_columns is not None:
            update = ", ".join(f"t.{_quote(c)} = s.{_quote(c)}" for c in spec.update_columns)
        evolution = " WITH SCHEMA EVOLUTION" if spec.merge_schema else ""
        statement = (
            f"MERGE{evolution} INTO {_braced(self.target.sql_ref)} AS t "
            f"USING {{{_MERGE_SOURCE}}} AS s ON {_braced(condition)} "
            f"WHEN MATCHED THEN UPDATE SET {_braced(update)} WHEN NOT MATCHED THEN INSERT *"
        )
        self._before_merge = None if self._tags_merges else self._latest_version()
        with self._merge_tag(), faults.during("delta_write", watch=self.target.path):
            merged = self.spark.sql(statement, **{_MERGE_SOURCE: frame})
            row = merged.first()  # the command ran already: this reads its result
        deliver_flows(merged)
        self._merged = row.asDict() if row is not None else {}

    @property
    def _tags_merges(self) -> bool:
        """Whether the MERGE's commit is tagged through the session conf: only on the
        local session the framework built. A cluster's session is never reconfigured, and
        Spark Connect (serverless) may refuse the conf; there the commit is found by its
        counts instead (``_merge_commit``)."""
        return built_here(self.spark)

    def _merge_tag(self) -> Any:
        if self._tags_merges:
            return session_commit_tag(self.spark, self.tag)
        return nullcontext()

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

    def _check_merge_key_values(self, frame: DataFrame, local_rows: Any = None) -> None:
        """Refuse a source whose merge keys repeat, or are NULL (unless NULLs are inserted).

        Delta refuses a MERGE whose source rows match one target row twice, but only once
        the key exists in the target: the first MERGE into a new table would store the
        duplicates, and every later MERGE would fail. This costs one aggregation over the
        source (Delta's MERGE reads the source again), in DuckDB when the rows are held in
        this process, else in Spark; the groups are cut to a handful before anything
        reaches the driver.
        """
        if local_rows is not None:
            found = self._local_key_problems(local_rows)
        else:
            found = self._spark_key_problems(frame)
        found.sort(key=lambda problem: [(v is None, str(v)) for v in problem[0]])
        duplicates = [keys for keys, has_null in found if not has_null]
        if duplicates:
            raise self._merge_key_error(duplicates, "has more than one row for")
        if found:
            raise self._merge_key_error(
                [keys for keys, _ in found], "has NULL in the merge keys for"
            )

    def _spark_key_problems(self, frame: DataFrame) -> list[tuple[tuple[Any, ...], bool]]:
        """The problem groups (their key values, whether a key is NULL), by a Spark job."""
        from functools import reduce

        from pyspark.sql import functions as F

        keys = [F.col(_quote(k)) for k in self.spec.merge_keys]
        null_key = reduce(lambda a, b: a | b, [k.isNull() for k in keys])
        groups = frame.groupBy(*keys).agg(
            F.count(F.lit(1)).alias(_ROWS_COLUMN), F.max(null_key).alias(_NULL_KEY_COLUMN)
        )
        repeated, has_null = F.col(_ROWS_COLUMN) > 1, F.col(_NULL_KEY_COLUMN)
        if self.spec.merge_null_keys == "insert":
            problem = repeated & ~has_null  # NULL keys are inserted, never matched
        else:
            problem = repeated | has_null
        rows = groups.where(problem).orderBy(has_null.asc()).limit(_SHOWN_KEYS + 1).collect()
        width = len(keys)
        return [(tuple(row[:width]), bool(row[_NULL_KEY_COLUMN])) for row in rows]

    def _local_key_problems(self, table: Any) -> list[tuple[tuple[Any, ...], bool]]:
        """The same groups as ``_spark_key_problems``, from an Arrow table, by DuckDB."""
        keys = ", ".join(quote_identifier(k) for k in self.spec.merge_keys)
        null_key = " OR ".join(f"{quote_identifier(k)} IS NULL" for k in self.spec.merge_keys)
        if self.spec.merge_null_keys == "insert":
            problem = "count(*) > 1 AND NOT bool_or(" + null_key + ")"
        else:
            problem = "count(*) > 1 OR bool_or(" + null_key + ")"
        query = (
            f"SELECT {keys}, bool_or({null_key}) AS has_null FROM merge_source "
            f"GROUP BY {keys} HAVING {problem} ORDER BY has_null LIMIT {_SHOWN_KEYS + 1}"
        )
        with isolated_duckdb({"merge_source": table}) as connection:
            rows = connection.execute(query).fetchall()
        return [(tuple(row[:-1]), bool(row[-1])) for row in rows]

    def _merge_key_error(self, rows: list[Any], problem: str) -> EngineError:
        redactor = Redactor(self.spec.redact_columns)
        names = list(self.spec.merge_keys)
        masked = [redactor.is_redacted(name) for name in names]
        shown = [
            "(" + ", ".join(REDACTED if m else _key_text(v) for m, v in zip(masked, row)) + ")"
            for row in rows[:_SHOWN_KEYS]
        ]
        more = ", and more" if len(rows) > _SHOWN_KEYS else ""
        keys = ", ".join(names)
        if "NULL" in problem:
            fix = (
                "fill or filter the NULL keys before the store, or set "
                "params.merge_null_keys: insert to insert those rows without matching them"
            )
        else:
            fix = (
                "make the keys unique before the store (deduplicate, or aggregate the rows "
                "of each key), or add the column that tells the rows apart to merge_keys"
            )
        # Never retried: the same data fails the same way. Nothing was committed.
        return EngineError(
            f"step '{self.step}': cannot merge into {self.target.label}: the data {problem} "
            f"merge key ({keys}) = {', '.join(shown)}{more}; {fix}",
            retryable=False,
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
        if self._merged is not None:
            return self._merge_result(self._merged)
        commit = self._find_commit(self.tag)
        if commit is None:
            if self._txn_tag_prefix is not None:
                return self._already_committed()
            log.warning(
                "step %s: commit tagged %s not found in the history of %s",
                self.step,
                self.tag,
                self.target.label,
            )
            return WriteResult(rows=None, count_source="unknown", mode=self.spec.mode)
        metrics = commit["operationMetrics"] or {}
        undo = self._undo(int(commit["version"]))
        rows = int(metrics.get("numOutputRows", 0))
        created_by_merge = self.spec.mode == "merge"
        return WriteResult(
            rows=rows,
            rows_inserted=rows if created_by_merge else None,
            rows_updated=0 if created_by_merge else None,
            count_source="commit_metrics",
            **undo,
        )

    def _merge_result(self, merged: dict[str, Any]) -> WriteResult:
        """A MERGE's counts, from the row it returned; its version, from its commit."""
        inserted = int(merged.get("num_inserted_rows") or 0)
        updated = int(merged.get("num_updated_rows") or 0)
        version = self._merge_commit(merged)
        undo = self._undo(version) if version is not None else {"mode": self.spec.mode}
        return WriteResult(
            rows=inserted + updated,
            rows_inserted=inserted,
            rows_updated=updated,
            count_source="commit_metrics",
            **{"table_sql": self.target.sql_ref, **undo},
        )

    def _merge_commit(self, merged: dict[str, Any]) -> int | None:
        """The MERGE's version: its tagged commit on a classic session. Over Connect, the
        one MERGE commit after the version seen before it whose metrics are the returned
        counts; None (no undo statement) when that is not exactly one commit."""
        from pyspark.sql import functions as F

        if self._tags_merges:
            commit = self._find_commit(self.tag)
            return int(commit["version"]) if commit is not None else None
        wanted = {
            "numTargetRowsInserted": merged.get("num_inserted_rows"),
            "numTargetRowsUpdated": merged.get("num_updated_rows"),
            "numTargetRowsDeleted": merged.get("num_deleted_rows"),
        }
        after = -1 if self._before_merge is None else self._before_merge
        history = self._history(None).where(F.col("version") > after)
        history = history.where(F.col("operation") == "MERGE")
        found = [
            int(row["version"])
            for row in history.select("version", "operationMetrics").collect()
            if all(
                str((row["operationMetrics"] or {}).get(key)) == str(value)
                for key, value in wanted.items()
            )
        ]
        if len(found) != 1:
            log.warning(
                "step %s: the MERGE into %s is not told apart in its history (%d candidate "
                "commits): its version and undo statement are left out",
                self.step,
                self.target.label,
                len(found),
            )
            return None
        return found[0]

    def _latest_version(self) -> int | None:
        rows = self._history(1).select("version").collect()
        return int(rows[0][0]) if rows else None

    def _undo(self, version: int) -> dict[str, Any]:
        """The versions around the write's commit. Commits are serial, so the table as it
        was just before this write is ``version - 1``; version 0 is the table's creation."""
        return {
            "delta_version": version,
            "version_before": version - 1 if version > 0 else None,
            "created": version == 0,
            "mode": self.spec.mode,
            "table_sql": self.target.sql_ref,
        }

    def _already_committed(self) -> WriteResult:
        """Delta skipped the append: its txnAppId/txnVersion was committed before, by an
        earlier execution of this run (a retry, resume, repair or reused run id).

        Nothing was written now, so the write reports 0 rows and no new version; the
        earlier commit is named in the reason."""
        earlier = self._find_commit(self._txn_tag_prefix, prefix=True)
        run = self.spec.run_id or "an earlier execution"
        reason = f"already committed by run {run}"
        if earlier is not None:
            rows = int((earlier["operationMetrics"] or {}).get("numOutputRows", 0))
            reason += f" as version {int(earlier['version'])} with {rows:,} rows"
        reason += "; Delta skipped this append, so nothing was written again"
        log.info("step %s: append to %s %s", self.step, self.target.label, reason)
        return WriteResult(
            rows=0,
            rows_inserted=0,
            count_source="already_committed",
            count_reason=reason,
            mode=self.spec.mode,
            table_sql=self.target.sql_ref,
        )

    def _find_commit(self, tag: str, *, prefix: bool = False) -> Any:
        """The latest data commit whose ``userMetadata`` is ``tag`` (or, with ``prefix``,
        starts with it), or None. A local table's log files are read directly (no Spark
        job); any other table's history is asked with ``DESCRIBE HISTORY``."""
        from pyspark.sql import functions as F

        local = LocalDeltaLog.of(self.target.path) if self.target.table is None else None
        if local is not None:
            found = local.find(
                lambda meta: meta is not None and (meta.startswith(tag) if prefix else meta == tag),
                _DATA_OPERATIONS,
            )
            if found is not None:
                return found
        column = F.col("userMetadata")
        tagged = column.startswith(tag) if prefix else column == tag
        for window in _HISTORY_WINDOWS:
            found = (
                self._history(window)
                .where(tagged)
                .where(F.col("operation").isin(*_DATA_OPERATIONS))
                .orderBy(F.col("version").desc())
                .select("version", "operation", "operationMetrics")
                .limit(1)
                .collect()
            )
            if found:
                return found[0]
        return None

    def _history(self, limit: int | None) -> DataFrame:
        """``DESCRIBE HISTORY``, newest first: SQL, so it runs over Spark Connect too."""
        statement = f"DESCRIBE HISTORY {self.target.sql_ref}"
        return self.spark.sql(statement + (f" LIMIT {int(limit)}" if limit else ""))

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


def _braced(text: str) -> str:
    """``text`` inside a ``spark.sql`` format string: its braces kept as text."""
    return text.replace("{", "{{").replace("}", "}}")


def _quote(column: str) -> str:
    return "`" + column.replace("`", "``") + "`"


def _key_text(value: Any) -> str:
    """A key value as an error shows it: quoted text (so redaction of messages finds it)."""
    return "NULL" if value is None else "'" + str(value) + "'"


def _sql_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
