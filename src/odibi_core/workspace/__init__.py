"""A Databricks workspace, through databricks-sdk: the deployed jobs of pipelines, their runs
and repairs. Importing this package imports no SDK; a client is made on demand."""

from __future__ import annotations

from odibi_core.workspace import jobs
from odibi_core.workspace.jobs import *  # noqa: F403  (the names jobs.__all__ lists)

__all__ = list(jobs.__all__)
