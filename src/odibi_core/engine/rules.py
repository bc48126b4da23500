"""Rules both engines share: valid writes, frame kinds, Spark options and Spark failures.

Nothing here imports pyspark, pandas or delta-spark at import time, so the pandas
engine and the engine registry can use these rules without loading Spark.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from odibi_core.core.errors import EngineError
from odibi_core.core.write_spec import FILE_FORMATS, WriteSpec
from odibi_core.core.write_spec import TRANSACTIONAL_FORMATS as DELTA_FORMATS
from odibi_core.engine.failures import SparkError, SparkFailure, describe_failure

__all__ = [
    "DELTA_FORMATS",
    "FILE_FORMATS",
    "check_write_spec",
    "is_pandas_engine_frame",
    "is_pandas_frame",
    "is_spark_exception",
    "is_spark_frame",
    "spark_error",
    "spark_options",
]


def check_write_spec(spec: WriteSpec, *, step: str) -> None:
    """Refuse write specs no engine can honour, before any data moves."""
    spec.check(step=step)


def is_spark_frame(frame: Any) -> bool:
    """True for a classic or Spark Connect DataFrame, without importing pyspark."""
    return _is_instance_of_loaded(frame, "pyspark.sql", "DataFrame")


def is_pandas_frame(frame: Any) -> bool:
    """True for a pandas DataFrame, without importing pandas."""
    return _is_instance_of_loaded(frame, "pandas", "DataFrame")


def _loaded(module: str, name: str) -> Any:
    """``module.name`` if ``module`` is imported, else None.

    Another thread may be importing it right now (the background Spark start imports
    pyspark while the first steps run): the module is then in ``sys.modules`` without its
    names yet. No object of a class not defined yet can exist, so None is the answer.
    """
    return getattr(sys.modules.get(module), name, None)


def _is_instance_of_loaded(value: Any, module: str, name: str) -> bool:
    cls = _loaded(module, name)
    return cls is not None and isinstance(value, cls)


def is_pandas_engine_frame(frame: Any) -> bool:
    """True for what the pandas engine holds between steps: a pandas DataFrame, an Arrow
    table, or a lazy parquet scan."""
    if is_pandas_frame(frame):
        return True
    if _is_instance_of_loaded(frame, "pyarrow", "Table"):
        return True
    return _is_instance_of_loaded(frame, "odibi_core.engine.parquet_scan", "ParquetScan")


def spark_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Reader or writer options as Spark takes them.

    Spark options are text, so YAML booleans become Spark's ``true``/``false``.
    """
    return {key: _option_text(value) for key, value in options.items()}


def spark_error(exc: BaseException, *, step: str | None, action: str) -> EngineError:
    """An ``EngineError`` for a failure raised by Spark, saying whether a retry can help.

    Retrying is decided by SQLSTATE (see ``engine.failures``): commit conflicts and
    connection errors are retryable, data and analysis errors are not, and so is a missing
    path, which the message names. Spark failures without a telling SQLSTATE (a lost
    executor) stay retryable. When Spark wraps the error (``TASK_WRITE_FAILED``, a stage
    failure), the message adds the root cause from the chain beneath it.
    """
    where = f"step '{step}': " if step else ""
    condition = _exception_detail(exc, "getCondition")
    if condition == "PATH_NOT_FOUND":
        parameters = _exception_detail(exc, "getMessageParameters") or {}
        path = parameters.get("path", "")
        return EngineError(
            f"{where}cannot {action}: the path {path} does not exist; check the step's value",
            retryable=False,
        )
    message = _concise(str(exc))
    if not is_spark_exception(exc):
        retryable = isinstance(exc, OSError)
        return EngineError(
            f"{where}could not {action}: {type(exc).__name__}: {message}", retryable=retryable
        )
    failure = describe_failure(exc)
    root = failure.root_cause_text()
    if root:
        message = f"{message}\nroot cause: {root}"
    return SparkError(
        f"{where}Spark could not {action}: {message}", failure, retryable=_retryable(exc, failure)
    )


def is_spark_exception(exc: BaseException) -> bool:
    """Raised by PySpark, Py4J or delta-spark (classic or Connect)."""
    if _is_instance_of_loaded(exc, "pyspark.errors", "PySparkException"):
        return True
    return type(exc).__module__.startswith(("pyspark", "py4j", "delta"))


def _retryable(exc: BaseException, failure: SparkFailure) -> bool:
    if failure.transient:
        return True
    if failure.deterministic:
        return False
    # An analysis error whose condition has no SQLSTATE yet (a legacy one) still recurs.
    return not _is_instance_of_loaded(exc, "pyspark.errors.exceptions.base", "AnalysisException")


def _option_text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


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
