"""odibi_core: Spark-native data pipelines as Steps.

Run locally on pandas/DuckDB and local Spark + Delta, or deploy as a Databricks asset bundle.
"""

from __future__ import annotations

from odibi_core.core.errors import OdibiError, PipelineConfigError, PipelineExecutionError
from odibi_core.core.step import NodeState, Step

__version__ = "0.1.0"

__all__ = [
    "NodeState",
    "OdibiError",
    "PipelineConfigError",
    "PipelineExecutionError",
    "Step",
    "__version__",
]
