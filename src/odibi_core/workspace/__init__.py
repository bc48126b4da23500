"""A Databricks workspace, through databricks-sdk: the deployed jobs of pipelines, their runs
and repairs. Importing this package imports no SDK; a client is made on demand."""

from __future__ import annotations

from odibi_core.workspace.jobs import (
    PIPELINE_TAG,
    RERUN_RESULTS,
    TARGET_TAG,
    DeployedJob,
    JobRun,
    Repair,
    TaskRun,
    WorkspaceConfigError,
    WorkspaceError,
    WorkspaceJobs,
    choose_job,
)

__all__ = [
    "PIPELINE_TAG",
    "RERUN_RESULTS",
    "TARGET_TAG",
    "DeployedJob",
    "JobRun",
    "Repair",
    "TaskRun",
    "WorkspaceConfigError",
    "WorkspaceError",
    "WorkspaceJobs",
    "choose_job",
]
