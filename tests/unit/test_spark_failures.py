"""Spark and Delta failures classified by SQLSTATE, with real pyspark/delta exception classes.

Classic exceptions (pyspark.errors.exceptions.captured) need a running JVM to be built, and
Spark Connect's need grpc, which is not installed; the base classes below are the ones both
clients derive from, built in-process with the messages Spark 4 and Delta 4 really give.
"""

from __future__ import annotations

import pytest
from delta.exceptions.base import (
    ConcurrentAppendException,
    MetadataChangedException,
    ProtocolChangedException,
)
from pyspark.errors.exceptions.base import (
    AnalysisException,
    NumberFormatException,
    PySparkException,
)

from odibi_core.engine.failures import (
    describe_failure,
    is_commit_conflict,
    retry_commit_conflicts,
)
from odibi_core.engine.rules import spark_error

CONFLICT = (
    "Transaction conflict detected. a concurrent WRITE added data to table "
    "delta.`file:/tmp/t` committed at version 1. Please retry the operation."
)
CAST = (
    'The value \'x\' of the type "STRING" cannot be cast to "INT" because it is malformed. '
    "SQLSTATE: 22018\n== SQL (line 1, position 8) ==\nSELECT CAST(s AS INT) AS n FROM src\n"
    "       ^^^^^^^^^^^^^^\n"
)
# The JVM chain of a read of a corrupt Parquet file, as Spark 4.1 reports it.
BAD_PARQUET_JVM = """org.apache.spark.SparkException: Job aborted due to stage failure: Task 0 in stage 5.0 failed 1 times, most recent failure: Lost task 0.0 in stage 5.0 (TID 13) (localhost executor driver): org.apache.spark.SparkException: Exception thrown in awaitResult:
\tat org.apache.spark.util.SparkThreadUtils$.awaitResult(SparkThreadUtils.scala:53)
Caused by: org.apache.spark.SparkException: [FAILED_READ_FILE.CANNOT_READ_FILE_FOOTER] Encountered error while reading file file:/tmp/bad.parquet. Could not read footer.
If it is, you can choose to either ignore it or fix the corruption. SQLSTATE: KD001
\tat org.apache.spark.sql.errors.QueryExecutionErrors$.cannotReadFooterForFileError(QueryExecutionErrors.scala:1)
Caused by: java.lang.RuntimeException: file:/tmp/bad.parquet is not a Parquet file (length is too low: 5)
\tat org.apache.parquet.hadoop.ParquetFileReader.readFooter(ParquetFileReader.java:557)
\t... 30 more
"""


class _WithSqlState(PySparkException):
    """Spark Connect keeps the server's SQLSTATE; its own class needs grpc, so this stands in."""

    def __init__(self, message: str, sqlstate: str):
        super().__init__(message=message)
        self._sqlstate = sqlstate

    def getSqlState(self) -> str:
        return self._sqlstate


@pytest.mark.parametrize(
    "exc",
    [
        ConcurrentAppendException(
            message=CONFLICT, errorClass="DELTA_CONCURRENT_APPEND.WITHOUT_HINT"
        ),
        MetadataChangedException(message="metadata changed", errorClass="DELTA_METADATA_CHANGED"),
        ProtocolChangedException(message="protocol changed", errorClass="DELTA_PROTOCOL_CHANGED"),
        _WithSqlState("[DELTA_CONCURRENT_WRITE] a concurrent transaction wrote", "2D521"),
    ],
    ids=["append", "metadata", "protocol", "connect-write"],
)
def test_delta_commit_conflicts_are_retried(exc):
    error = spark_error(exc, step="load", action="write delta 'out'")
    assert error.retryable is True
    assert is_commit_conflict(exc)
    assert error.failure.sqlstates[0] == "2D521"


def test_connection_errors_are_retried():
    exc = _WithSqlState("[CONNECT_URL_INVALID] cannot reach the cluster", "08001")
    assert spark_error(exc, step="load", action="read").retryable is True


@pytest.mark.parametrize(
    "exc",
    [
        NumberFormatException(message=CAST, errorClass="CAST_INVALID_INPUT"),
        _WithSqlState("[DIVIDE_BY_ZERO] Division by zero.", "22012"),
        AnalysisException(
            message="A column `nme` cannot be resolved. SQLSTATE: 42703",
            errorClass="UNRESOLVED_COLUMN.WITH_SUGGESTION",
        ),
        _WithSqlState("[TABLE_OR_VIEW_NOT_FOUND] The table `x` cannot be found.", "42P01"),
    ],
    ids=["cast", "divide-by-zero", "unresolved-column", "connect-missing-table"],
)
def test_data_and_analysis_errors_are_not_retried(exc):
    error = spark_error(exc, step="clean", action="run the SQL")
    assert error.retryable is False
    assert not is_commit_conflict(exc)


def test_a_failure_without_a_telling_sqlstate_stays_retryable():
    exc = PySparkException(message="Lost executor 3: heartbeat timed out")
    assert spark_error(exc, step="load", action="count rows").retryable is True


def test_a_data_error_under_a_wrapper_is_still_not_retried():
    exc = _WithSqlState("[TASK_WRITE_FAILED] Task failed while writing rows", "58030")
    exc._stackTrace = (  # where the classic client keeps the JVM chain
        "org.apache.spark.SparkException: [TASK_WRITE_FAILED] Task failed\n"
        "\tat org.apache.spark.Foo.bar(Foo.scala:1)\n"
        "Caused by: org.apache.spark.SparkNumberFormatException: [CAST_INVALID_INPUT] "
        f"{CAST}"
    )
    error = spark_error(exc, step="store", action="write parquet 'out'")
    assert error.retryable is False
    assert "root cause: [CAST_INVALID_INPUT] The value 'x'" in str(error)


def test_a_wrapped_error_names_its_root_cause():
    exc = PySparkException(message="Job aborted due to stage failure: Task 0 in stage 5.0 failed")
    exc._stackTrace = BAD_PARQUET_JVM
    message = str(spark_error(exc, step="load", action="read parquet 'in'"))
    assert message.startswith("step 'load': Spark could not read parquet 'in': ")
    assert "[FAILED_READ_FILE.CANNOT_READ_FILE_FOOTER] Encountered error while reading file" in (
        message
    )
    assert "RuntimeException: file:/tmp/bad.parquet is not a Parquet file" in message
    assert "\tat " not in message


def test_the_failing_sql_fragment_is_read_from_the_message():
    exc = NumberFormatException(message=CAST, errorClass="CAST_INVALID_INPUT")
    assert describe_failure(exc).fragments == ("CAST(s AS INT)",)


def test_state_writes_retry_commit_conflicts_with_backoff_and_nothing_else():
    conflict = ConcurrentAppendException(
        message=CONFLICT, errorClass="DELTA_CONCURRENT_APPEND.WITHOUT_HINT"
    )
    calls, waits = [], []

    def append():
        calls.append(1)
        if len(calls) < 3:
            raise conflict
        return "committed"

    assert (
        retry_commit_conflicts(append, what="append", jitter=0, sleep=waits.append) == "committed"
    )
    assert len(calls) == 3
    assert waits == [0.2, 0.4]
    waits.clear()
    calls.clear()
    retry_commit_conflicts(append, what="append", sleep=waits.append)
    # Jitter spreads writers that conflicted with each other: within +/-50% of the backoff.
    assert 0.1 <= waits[0] <= 0.3 and 0.2 <= waits[1] <= 0.6

    def broken():
        calls.append(1)
        raise NumberFormatException(message=CAST, errorClass="CAST_INVALID_INPUT")

    calls.clear()
    with pytest.raises(NumberFormatException):
        retry_commit_conflicts(broken, what="append", sleep=waits.append)
    assert len(calls) == 1

    def always_conflicts():
        calls.append(1)
        raise conflict

    calls.clear()
    with pytest.raises(ConcurrentAppendException):
        retry_commit_conflicts(always_conflicts, what="append", attempts=3, sleep=lambda s: None)
    assert len(calls) == 3
