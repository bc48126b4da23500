"""The engines of one pipeline run: pandas always, Spark only once a step needs it."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from odibi_core.core.errors import EngineError, PipelineConfigError, did_you_mean
from odibi_core.engine.base import EngineContext, Frame
from odibi_core.engine.rules import is_pandas_engine_frame, is_spark_frame

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from odibi_core.engine.pandas_engine import PandasEngineContext
    from odibi_core.engine.spark_engine import SparkEngineContext

ENGINE_NAMES = ("pandas", "spark")


class Engines:
    """One ``PandasEngineContext`` and one lazily created ``SparkEngineContext``.

    Where the session comes from is decided here, on the thread that builds the engines
    (``SessionHandle``); ``spark`` is a session to use as it is. Safe to use from several
    threads.
    """

    def __init__(
        self,
        *,
        spark: SparkSession | None = None,
        warehouse: str | Path | None = None,
        duckdb_threads: int | None = None,
    ):
        from odibi_core.engine.session import SessionHandle

        self.session = SessionHandle(spark, warehouse=warehouse)
        self._warehouse = warehouse
        self._duckdb_threads = duckdb_threads
        self._lock = threading.Lock()
        self._pandas: PandasEngineContext | None = None
        self._spark: SparkEngineContext | None = None

    def get(self, name: str) -> EngineContext:
        """The engine called ``name`` ("pandas" or "spark"), created on first use."""
        if name == "pandas":
            return self._pandas_engine()
        if name == "spark":
            return self._spark_engine()
        raise PipelineConfigError(
            f"unknown engine '{name}'{did_you_mean(name, ENGINE_NAMES)}; "
            "use pandas or spark (auto is resolved per step before an engine is asked for)"
        )

    @property
    def spark_started(self) -> bool:
        """True only once a step needed Spark (a session was obtained)."""
        with self._lock:
            return self._spark is not None and self._spark.started

    def frame_engine(self, frame: Frame) -> str:
        """Which engine ``frame`` belongs to: "pandas" or "spark"."""
        if is_spark_frame(frame):
            return "spark"
        if is_pandas_engine_frame(frame):
            return "pandas"
        raise EngineError(
            f"a step produced a {type(frame).__module__}.{type(frame).__name__}; "
            "steps exchange pandas or Spark DataFrames"
        )

    def convert(self, frame: Frame, to: str) -> Frame:
        """``frame`` as engine ``to``'s frame; converted through Arrow when needed (the
        pandas engine keeps the Arrow table: pandas only where pandas is asked for)."""
        source = self.frame_engine(frame)
        if source == to:
            return frame
        arrow = self.get(source).to_arrow(frame)
        return arrow if to == "pandas" else self.get(to).adopt(arrow)

    def presentable(self, frame: Frame) -> Frame:
        """``frame`` as a run returns it: pandas or Spark, never an engine's inner form."""
        return self.get("pandas").adopt(frame) if is_pandas_engine_frame(frame) else frame

    def close(self) -> None:
        """Close both engines, dropping Spark temp views. Never starts Spark."""
        with self._lock:
            pandas_engine, spark_engine = self._pandas, self._spark
        if pandas_engine is not None:
            pandas_engine.close()
        if spark_engine is not None:
            spark_engine.close()

    def _pandas_engine(self) -> PandasEngineContext:
        with self._lock:
            if self._pandas is None:
                from odibi_core.engine.pandas_engine import PandasEngineContext

                self._pandas = PandasEngineContext(
                    spark_engine=self._spark_engine, duckdb_threads=self._duckdb_threads
                )
            return self._pandas

    def _spark_engine(self) -> SparkEngineContext:
        with self._lock:
            if self._spark is None:
                from odibi_core.engine.log_scrubbing import guard_pyspark_loggers
                from odibi_core.engine.spark_engine import SparkEngineContext

                guard_pyspark_loggers(starting_spark=True)  # PySpark's error logs get masked
                self._spark = SparkEngineContext(self.session.get, warehouse=self._warehouse)
            return self._spark
