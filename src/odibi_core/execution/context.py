"""Who is running: the run's identity, set by the caller, and one execution of it.

The CLI, and a bundle task's entry point, set the run id and attempt; everything inside
the run (observers, tracker, audit) is given the frozen ``Execution`` and never the
orchestrator.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from odibi_core.core.execution_ids import execution_id


def new_run_id(now: datetime | None = None) -> str:
    """Local run ids: ``<yyyymmddTHHMMSS>_<6 hex>``; on Databricks the job run id is used."""
    now = now or datetime.now(timezone.utc)
    return f"{now.strftime('%Y%m%dT%H%M%S')}_{secrets.token_hex(3)}"


@dataclass(frozen=True)
class RunContext:
    """Run options the caller sets rather than the pipeline.

    ``run_id``: reuse one to make a rerun part of the same run (default: ``$ODIBI_RUN_ID``,
    else a new id); a Databricks job task passes the job run id. ``attempt``: the first
    execution's number within the run (a retried or repaired task passes its count).
    ``job_id`` and ``task_key``: the Databricks job and task, which a wheel task only gets
    as parameters (``{{job.id}}``, ``{{task.name}}``). ``warehouse``: where local tables and
    state live (default ``.odibi/warehouse``). ``execution_token``: shared by the processes
    of one execution (a job's tasks); by default each execution makes its own.
    """

    run_id: str | None = None
    attempt: int = 1
    warehouse: Path | None = None
    job_id: str | None = None
    task_key: str | None = None
    # The tasks of one job execution share it, so their audit rows read back as one run.
    execution_token: str | None = None

    def resolved_run_id(self) -> str:
        return self.run_id or os.environ.get("ODIBI_RUN_ID") or new_run_id()

    def databricks_identity(self, environment: Mapping[str, str | None]) -> dict[str, str | None]:
        """The audit's job, run and task columns: what was given, else ``environment``'s
        (``state.audit.databricks_context()``)."""
        # A job task's run id is the job run id: given with the job, it is that.
        given_run = self.run_id if self.job_id else None
        return {
            "job_id": self.job_id or environment.get("job_id"),
            "run_id": environment.get("run_id") or given_run,
            "task_key": self.task_key or environment.get("task_key"),
        }


@dataclass(frozen=True)
class Execution:
    """One execution of a run: what every event, record and audit row is keyed by."""

    pipeline_name: str
    run_id: str
    attempt: int

    @property
    def execution_id(self) -> str:
        return execution_id(self.run_id, self.attempt)
