"""Telling frames apart never imports an engine, and a module another thread is still
importing (pyspark, while the background Spark start runs beside the first steps) is
taken for not loaded rather than failing the step."""

import sys
import types

import pandas as pd
import pyarrow as pa

from odibi_core.engine.rules import (
    is_pandas_engine_frame,
    is_pandas_frame,
    is_spark_exception,
    is_spark_frame,
)


def test_a_module_still_being_imported_is_not_loaded_yet(monkeypatch):
    # As sys.modules holds pyspark.sql while its __init__ runs in another thread: no names.
    for name in ("pyspark.sql", "pyspark.errors", "pyspark.errors.exceptions.base"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    frame = pd.DataFrame({"n": [1]})
    assert is_spark_frame(frame) is False
    assert is_pandas_frame(frame) and is_pandas_engine_frame(frame)
    assert is_pandas_engine_frame(pa.table({"n": [1]}))
    assert is_spark_exception(ValueError("x")) is False
