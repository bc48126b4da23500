"""Engines: the contract a step needs, and the pandas (DuckDB) and Spark (Delta) engines.

Importing this package loads neither pandas, pyspark nor DuckDB: the engine classes are
imported on first attribute access.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from odibi_core.engine.base import (
    DeferredCount,
    EngineContext,
    Frame,
    ReadSpec,
    WriteResult,
    WriteSpec,
)

if TYPE_CHECKING:
    from odibi_core.engine.pandas_engine import PandasEngineContext
    from odibi_core.engine.registry import Engines
    from odibi_core.engine.spark_engine import SparkEngineContext

__all__ = [
    "DeferredCount",
    "EngineContext",
    "Engines",
    "Frame",
    "PandasEngineContext",
    "ReadSpec",
    "SparkEngineContext",
    "WriteResult",
    "WriteSpec",
]

_LAZY = {
    "Engines": "odibi_core.engine.registry",
    "PandasEngineContext": "odibi_core.engine.pandas_engine",
    "SparkEngineContext": "odibi_core.engine.spark_engine",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'odibi_core.engine' has no attribute {name!r}")
