"""A pipeline's deployed job on a Databricks workspace: find it, run it, read its runs, repair one.

Everything goes through ``databricks-sdk``'s ``WorkspaceClient``, configured the standard
way: ``DATABRICKS_HOST`` and ``DATABRICKS_TOKEN``, or a ``~/.databrickscfg`` profile. The SDK
is imported inside functions only, so ``odibi`` works without the ``bundle`` extra.

A job is found by its tags, never by its name: development mode renames a job to
``[dev user] name``, but the bundle tags every job ``odibi_pipeline: <pipeline>`` and
``odibi_target: <bundle target>``.

A repair reruns every task whose latest attempt ended in one of ``RERUN_RESULTS``, and the
tasks that depend on them (``rerun_dependent_tasks``), so the final ``run_if: ALL_DONE``
task records the repaired execution.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from odibi_core.core.errors import OdibiError, PipelineConfigError, did_you_mean

__all__ = [
    "FINAL_LIFE_CYCLES",
    "INSTALL_HINT",
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

PIPELINE_TAG = "odibi_pipeline"
TARGET_TAG = "odibi_target"
INSTALL_HINT = 'pip install "odibi_core[bundle]"'
# A repair reruns a task whose latest attempt failed, timed out, was cancelled, was never
# started for the job's concurrency limit, or never ran because an upstream task did not
# succeed. EXCLUDED (left out on purpose by `run_if` or `only`) and DISABLED tasks are not
# failures, and a successful task is restored by the run's checkpoints anyway.
RERUN_RESULTS = frozenset(
    {
        "FAILED",
        "TIMEDOUT",
        "CANCELED",
        "MAXIMUM_CONCURRENT_RUNS_REACHED",
        "UPSTREAM_FAILED",
        "UPSTREAM_CANCELED",
    }
)
FINAL_LIFE_CYCLES = frozenset({"TERMINATED", "SKIPPED", "INTERNAL_ERROR"})
_JOBS_PAGE = 100  # the most jobs/list returns at once
_RUNS_PAGE = 24  # the most runs/list returns at once


class WorkspaceError(OdibiError):
    """The workspace could not be reached, its Jobs API refused a request, or a run failed."""


class WorkspaceConfigError(PipelineConfigError):
    """The command cannot start: no SDK, no credentials, or arguments that name no job."""


@dataclass(frozen=True)
class DeployedJob:
    """A job the bundle deployed for a pipeline, as its tags describe it."""

    job_id: int
    name: str
    pipeline: str
    target: str | None
    creator: str | None = None

    def describe(self) -> str:
        by = f", created by {self.creator}" if self.creator else ""
        return f"job {self.job_id} '{self.name}' (target {self.target or 'not tagged'}{by})"


@dataclass(frozen=True)
class TaskRun:
    """The latest attempt of one task of a job run (attempts count from 0)."""

    task_key: str
    life_cycle: str
    result: str | None
    attempt: int
    message: str = ""

    @property
    def needs_rerun(self) -> bool:
        return self.result in RERUN_RESULTS


@dataclass(frozen=True)
class Repair:
    """One repair of a run, from the run's ``repair_history``."""

    repair_id: int
    life_cycle: str
    start_time: int


@dataclass(frozen=True)
class JobRun:
    """One job run and its tasks, as ``runs/get`` or ``runs/list`` describe it."""

    run_id: int
    job_id: int | None
    life_cycle: str
    result: str | None
    url: str | None
    start_time: int | None  # epoch milliseconds
    message: str
    tasks: tuple[TaskRun, ...]
    latest_repair: Repair | None  # only read with the run's history

    @property
    def finished(self) -> bool:
        return self.life_cycle in FINAL_LIFE_CYCLES

    @property
    def succeeded(self) -> bool:
        return self.result == "SUCCESS"

    def failed_tasks(self) -> tuple[TaskRun, ...]:
        return tuple(task for task in self.tasks if task.needs_rerun)


def choose_job(
    jobs: Iterable[DeployedJob], pipeline: str, target: str | None, host: str
) -> DeployedJob:
    """The one job of ``pipeline`` (in ``target``, if given); otherwise say what to pass."""
    deployed = list(jobs)
    chosen = [job for job in deployed if target is None or job.target == target]
    if len(chosen) == 1:
        return chosen[0]
    if not chosen:
        raise WorkspaceConfigError(_no_job(deployed, pipeline, target, host))
    listed = "\n".join(f"  {job.describe()}" for job in chosen)
    if target is None and len({job.target for job in chosen}) > 1:
        raise WorkspaceConfigError(
            f"pipeline '{pipeline}' is deployed to several targets on {host}; "
            f"pass --target with one of them:\n{listed}"
        )
    raise WorkspaceConfigError(
        f"{len(chosen)} jobs on {host} are tagged {PIPELINE_TAG}: {pipeline}"
        f"{f' and {TARGET_TAG}: {target}' if target else ''} (in development mode each user "
        f"deploys a copy); pass --job-id with one of them:\n{listed}"
    )


def _no_job(deployed: list[DeployedJob], pipeline: str, target: str | None, host: str) -> str:
    deploy = f"databricks bundle deploy -t {target or '<target>'}"
    if deployed:
        targets = ", ".join(sorted({job.target or "not tagged" for job in deployed}))
        return (
            f"pipeline '{pipeline}' has no job in target '{target}' on {host} (it is deployed "
            f"to: {targets}); run `{deploy}` first, or pass another --target"
        )
    return (
        f"no job on {host} is tagged {PIPELINE_TAG}: {pipeline}; deploy the bundle with "
        f"`{deploy}` first (and check the pipeline's name)"
    )


class WorkspaceJobs:
    """The Jobs API of one workspace. A failed call is a ``WorkspaceError`` naming the host."""

    def __init__(self, client: Any):
        self._jobs = client.jobs
        self.host: str = client.config.host
        self._error_status: int | None = None
        # The SDK's errors keep the HTTP status only as their class, which it sometimes
        # overrides (a 400 "Run 1 does not exist" is a NotFound): note the status itself.
        session = getattr(getattr(client.api_client, "_api_client", None), "_session", None)
        if session is not None:
            session.hooks["response"].append(self._note_status)

    def _note_status(self, response: Any, *args: Any, **kwargs: Any) -> None:
        if not response.ok:
            self._error_status = response.status_code

    @classmethod
    def connect(cls, profile: str | None = None, *, timeout_seconds: int = 60) -> WorkspaceJobs:
        """A client configured from the environment, or from ``profile`` of ~/.databrickscfg.

        The SDK retries a refused connection or a throttled call for ``timeout_seconds``
        (its own default, five minutes, is long for a command someone waits on).
        """
        try:
            from databricks.sdk import WorkspaceClient
            from databricks.sdk.config import Config
        except ImportError as exc:
            raise WorkspaceConfigError(
                f"odibi jobs talks to Databricks through databricks-sdk, which is not "
                f"installed: {INSTALL_HINT}"
            ) from exc
        try:
            config = Config(
                profile=profile,
                retry_timeout_seconds=timeout_seconds,
                product="odibi",
                product_version=_version(),
            )
            client = WorkspaceClient(config=config)
        except ValueError as exc:
            how = f"check profile '{profile}' in" if profile else "pass --profile NAME of"
            raise WorkspaceConfigError(
                f"cannot configure the Databricks client: {_first_line(exc)}; set "
                f"DATABRICKS_HOST and DATABRICKS_TOKEN, or {how} ~/.databrickscfg "
                "(DATABRICKS_CONFIG_FILE)"
            ) from exc
        return cls(client)

    def find_job(self, pipeline: str, target: str | None = None) -> DeployedJob:
        return choose_job(self.deployed_jobs(pipeline), pipeline, target, self.host)

    def deployed_jobs(self, pipeline: str) -> list[DeployedJob]:
        """Every job tagged with ``pipeline``, whatever development mode renamed it to."""
        with self._answering("listing the jobs"):
            listed = list(self._jobs.list(limit=_JOBS_PAGE))
        jobs = (_deployed_job(job) for job in listed)
        return [job for job in jobs if job is not None and job.pipeline == pipeline]

    def job(self, job_id: int) -> DeployedJob:
        """The job ``--job-id`` names, which must carry the pipeline tag."""
        with self._answering(f"reading job {job_id}"):
            job = _deployed_job(self._jobs.get(job_id))
        if job is None:
            raise WorkspaceConfigError(
                f"job {job_id} on {self.host} has no {PIPELINE_TAG} tag: it was not deployed "
                "from an odibi bundle"
            )
        return job

    def check_parameters(self, job: DeployedJob, params: Mapping[str, str]) -> None:
        """Refuse a ``--param`` the job does not declare, before starting anything."""
        if not params:
            return
        with self._answering(f"reading job {job.job_id}"):
            settings = self._jobs.get(job.job_id).settings
        declared = [p.name for p in (settings.parameters if settings else None) or ()]
        problems = [
            f"--param {key}: {job.describe()} has no parameter '{key}'"
            f"{did_you_mean(key, declared)}; it takes: {', '.join(declared) or 'none'}"
            for key in params
            if key not in declared
        ]
        if problems:
            raise WorkspaceConfigError(problems)

    def run_now(self, job: DeployedJob, params: Mapping[str, str]) -> JobRun:
        """Start ``job``; ``params`` override those job parameters for this run only."""
        with self._answering(f"starting {job.describe()}"):
            started = self._jobs.run_now(job.job_id, job_parameters=dict(params) or None)
        return self.run(started.response.run_id)

    def run(self, run_id: int, *, history: bool = False) -> JobRun:
        with self._answering(f"reading run {run_id}"):
            return _job_run(self._jobs.get_run(run_id, include_history=history or None))

    def latest_runs(self, job: DeployedJob, limit: int) -> list[JobRun]:
        """The job's ``limit`` latest runs, newest first, with their tasks."""
        with self._answering(f"listing the runs of {job.describe()}"):
            runs = self._jobs.list_runs(
                job_id=job.job_id, limit=min(limit, _RUNS_PAGE), expand_tasks=True
            )
            return [_job_run(run) for run in itertools.islice(runs, limit)]

    def wait(
        self,
        run_id: int,
        *,
        poll_seconds: float,
        on_poll: Callable[[JobRun], None],
        repair_id: int | None = None,
    ) -> JobRun:
        """Poll the run until it (or repair ``repair_id`` of it) has ended."""
        while True:
            run = self.run(run_id, history=repair_id is not None)
            on_poll(run)
            if _ended(run, repair_id):
                return run
            time.sleep(poll_seconds)

    def repair_failed(self, run_id: int) -> tuple[JobRun, int | None]:
        """Rerun the run's failed tasks and their dependents: the run and the new repair's id.

        No repair is asked for (the id is ``None``) when no task failed.
        """
        run = self.run(run_id, history=True)
        if not run.finished:
            raise WorkspaceError(
                f"run {run_id} on {self.host} is still {run.life_cycle}; repair it once it "
                f"has ended (odibi jobs status {run_id})"
            )
        failed = [task.task_key for task in run.failed_tasks()]
        if not failed:
            return run, None
        with self._answering(f"repairing run {run_id}"):
            repair = self._jobs.repair_run(
                run_id,
                rerun_tasks=failed,
                rerun_dependent_tasks=True,
                latest_repair_id=run.latest_repair.repair_id if run.latest_repair else None,
            )
        return run, repair.response.repair_id

    @contextmanager
    def _answering(self, what: str) -> Iterator[None]:
        """Turn the SDK's failures into one line naming the host and the HTTP status."""
        from databricks.sdk.errors import DatabricksError

        self._error_status = None
        try:
            yield
        except DatabricksError as exc:
            status = _http_status(exc, self._error_status)
            # The SDK appends its configuration to a 401 or 403; the message is enough here.
            message = _first_line(exc).split(" Config: ")[0]
            raise WorkspaceError(f"{what}: {self.host} answered {status}: {message}") from exc
        except OSError as exc:  # refused, DNS, TLS, or the SDK's retries ran out
            raise WorkspaceError(f"{what}: cannot reach {self.host}: {_first_line(exc)}") from exc


def _ended(run: JobRun, repair_id: int | None) -> bool:
    if repair_id is None:
        return run.finished
    repair = run.latest_repair
    return (
        repair is not None
        and repair.repair_id == repair_id
        and repair.life_cycle in FINAL_LIFE_CYCLES
        and run.finished
    )


def _deployed_job(job: Any) -> DeployedJob | None:
    settings = job.settings
    tags = (settings.tags if settings else None) or {}
    if PIPELINE_TAG not in tags:
        return None
    return DeployedJob(
        job_id=job.job_id,
        name=(settings.name if settings else None) or "",
        pipeline=tags[PIPELINE_TAG],
        target=tags.get(TARGET_TAG),
        creator=job.creator_user_name,
    )


def _job_run(run: Any) -> JobRun:
    state = run.state
    return JobRun(
        run_id=run.run_id,
        job_id=run.job_id,
        life_cycle=_word(state and state.life_cycle_state) or "UNKNOWN",
        result=_word(state and state.result_state),
        url=run.run_page_url,
        start_time=run.start_time,
        message=(state.state_message if state else None) or "",
        tasks=_latest_attempts(run.tasks or ()),
        latest_repair=_latest_repair(run.repair_history or ()),
    )


def _latest_attempts(tasks: Iterable[Any]) -> tuple[TaskRun, ...]:
    """One row per task key, its latest attempt; a retried or repaired task has several."""
    latest: dict[str, TaskRun] = {}
    for task in tasks:
        state = task.state
        row = TaskRun(
            task_key=task.task_key,
            life_cycle=_word(state and state.life_cycle_state) or "UNKNOWN",
            result=_word(state and state.result_state),
            attempt=task.attempt_number or 0,
            message=(state.state_message if state else None) or "",
        )
        kept = latest.get(row.task_key)
        if kept is None or row.attempt >= kept.attempt:
            latest[row.task_key] = row
    return tuple(latest.values())


def _latest_repair(history: Iterable[Any]) -> Repair | None:
    repairs = [
        Repair(
            repair_id=item.id,
            life_cycle=_word(item.state and item.state.life_cycle_state) or "UNKNOWN",
            start_time=item.start_time or 0,
        )
        for item in history
        if _word(item.type) == "REPAIR" and item.id is not None
    ]
    return max(repairs, key=lambda r: (r.start_time, r.repair_id), default=None)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("odibi_core")
    except PackageNotFoundError:
        return "0.0.0"


def _word(value: Any) -> str | None:
    """An SDK enum's name (``RunResultState.FAILED`` -> ``FAILED``), or None."""
    if value is None:
        return None
    return getattr(value, "value", value)


def _http_status(exc: Any, code: int | None) -> str:
    """``HTTP 403 PERMISSION_DENIED``; without the noted status, the one the error's class means."""
    from databricks.sdk.errors.platform import STATUS_CODE_MAPPING

    if code is None:
        codes = {error_class: code for code, error_class in STATUS_CODE_MAPPING.items()}
        code = next((codes[c] for c in type(exc).__mro__ if c in codes), None)
    status = f"HTTP {code}" if code else "an HTTP error"
    return f"{status} {exc.error_code}" if exc.error_code else status


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
