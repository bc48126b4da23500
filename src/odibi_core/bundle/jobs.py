"""A pipeline as a Databricks job, built with the typed models of ``databricks-bundles``.

``job_for(config, pipeline_path=...)`` turns the task plan of ``tasks.plan_tasks`` into a
``Job``: one ``python_wheel_task`` per task, calling the wheel's ``odibi-task`` entry point
with the argv of ``task_parameters``, ``depends_on`` lifted from the DAG, and a last task
that records the run once every other task is done. Clusters follow the task's class
(pandas: a single node; Spark: autoscaling), or the job runs on serverless. YAML is never
assembled here: ``Job.as_dict()`` is the only serialisation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any

from databricks.bundles.core import Variable, variables
from databricks.bundles.jobs import (
    AutoScale,
    ClusterSpec,
    CronSchedule,
    DataSecurityMode,
    Environment,
    Job,
    JobCluster,
    JobEmailNotifications,
    JobEnvironment,
    JobParameterDefinition,
    Library,
    PythonWheelTask,
    RunIf,
    Task,
    TaskDependency,
)

from odibi_core.bundle.tasks import RECORD_RUN_TASK, TaskSpec, plan_tasks
from odibi_core.core.config import PipelineConfig, TaskCompute
from odibi_core.core.errors import PipelineConfigError, did_you_mean

__all__ = [
    "ENTRY_POINT",
    "PACKAGE_NAME",
    "PYTHON_WHEEL",
    "STATE_SCHEMA",
    "BundleVariables",
    "job_for",
    "task_parameters",
    "workspace_pipeline_path",
]

PACKAGE_NAME = "odibi_core"  # the wheel's distribution name, as the tasks import it
ENTRY_POINT = "odibi-task"  # [project.scripts] of pyproject.toml
STATE_SCHEMA = "${var.catalog}.${var.schema}"  # resolved by the CLI at deploy time
ENVIRONMENT_KEY = "default"
DEFAULT_DATA_SECURITY_MODE = "SINGLE_USER"

# The wheel, relative to the directory the Databricks CLI resolves it against. A job
# defined in Python keeps the location of the CLI's virtual file
# ``<bundle root>/__generated_by_python__.yml`` for its library paths, so the path is
# relative to the bundle root: ``dist/*.whl`` (the templates' Python resources under
# resources/ say ``dist/*.whl`` too, while their YAML under resources/ says
# ``../dist/*.whl``). ``load_resources`` also pins the job's own location to
# databricks.yml, so either way the path resolves from the bundle root. A job file that
# ``odibi bundle write`` puts in resources/ resolves from its own folder instead, and is
# written with ``../dist/*.whl``.
PYTHON_WHEEL = "dist/*.whl"

_SINGLE_NODE_CONF = {
    "spark.databricks.cluster.profile": "singleNode",
    "spark.master": "local[*]",
}
_SINGLE_NODE_TAGS = {"ResourceClass": "SingleNode"}


@variables
class BundleVariables:
    """The databricks.yml variables a job refers to (``${var.<name>}``)."""

    catalog: Variable[str]
    schema: Variable[str]
    spark_version: Variable[str]
    node_type_id: Variable[str]
    min_workers: Variable[int]
    max_workers: Variable[int]
    environment_version: Variable[str]  # of the serverless environment


def job_for(config: PipelineConfig, *, pipeline_path: str, wheel: str = PYTHON_WHEEL) -> Job:
    """The job of ``config``, whose file is ``pipeline_path`` relative to the bundle root.

    ``wheel`` is the wheel's path as the job's file resolves it (``PYTHON_WHEEL`` for a
    job loaded from Python).
    """
    specs = plan_tasks(config)
    serverless = config.settings.compute == "serverless"
    workspace_path = workspace_pipeline_path(pipeline_path)
    names = list(config.parameters)
    tasks = [_task(spec, config, workspace_path, names, wheel, serverless) for spec in specs]
    tasks.append(_record_task(specs, config, workspace_path, names, wheel, serverless))
    return Job(
        name=config.name,
        max_concurrent_runs=1,
        timeout_seconds=config.settings.timeout_seconds,
        email_notifications=_notifications(config),
        # `odibi jobs` finds a job by these two tags: development mode renames jobs.
        tags={"odibi_pipeline": config.name, "odibi_target": "${bundle.target}"},
        parameters=[
            JobParameterDefinition(name=name, default=_text(value))
            for name, value in config.parameters.items()
        ],
        schedule=_schedule(config),
        tasks=tasks,
        job_clusters=[] if serverless else _job_clusters(specs, config),
        environments=[_environment(wheel)] if serverless else [],
    )


def task_parameters(
    *, pipeline_path: str, task_key: str, parameter_names: Sequence[str] = ()
) -> list[str]:
    """The argv of the ``odibi-task`` entry point for one task: the contract between the
    job definition and the entry point, order included.

    ``pipeline_path`` is the pipeline file's workspace path; the ``{{job...}}`` references
    are filled in by Databricks when the task runs, ``${var...}`` by the CLI at deploy.
    """
    argv = [
        "--pipeline",
        pipeline_path,
        "--task",
        task_key,
        "--run-id",
        "{{job.run_id}}",
        "--repair-count",
        "{{job.repair_count}}",
        "--job-id",
        "{{job.id}}",
        "--state-schema",
        STATE_SCHEMA,
    ]
    for name in parameter_names:
        argv += ["--param", f"{name}={{{{job.parameters.{name}}}}}"]
    return argv


def workspace_pipeline_path(pipeline_path: str) -> str:
    """Where the bundle syncs the pipeline file: ``${workspace.file_path}/<path>``."""
    relative = PurePosixPath(pipeline_path.replace("\\", "/"))
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise PipelineConfigError(
            f"pipeline path '{pipeline_path}' must be relative to the bundle root and inside "
            "it (e.g. pipelines/orders.yaml): the bundle deploys only the files under its root"
        )
    return f"${{workspace.file_path}}/{relative.as_posix()}"


def _task(
    spec: TaskSpec,
    config: PipelineConfig,
    workspace_path: str,
    names: Sequence[str],
    wheel: str,
    serverless: bool,
) -> Task:
    return Task(
        task_key=spec.key,
        depends_on=[TaskDependency(task_key=key) for key in spec.depends_on],
        python_wheel_task=_wheel_task(workspace_path, spec.key, names),
        max_retries=spec.retries,
        min_retry_interval_millis=round(config.settings.retry_delay * 1000),
        retry_on_timeout=False,
        **_compute_of(spec.compute, wheel, serverless),
    )


def _record_task(
    specs: Sequence[TaskSpec],
    config: PipelineConfig,
    workspace_path: str,
    names: Sequence[str],
    wheel: str,
    serverless: bool,
) -> Task:
    """Runs once all tasks are done, failed or skipped ones too, to write the run's row."""
    return Task(
        task_key=RECORD_RUN_TASK,
        depends_on=[TaskDependency(task_key=spec.key) for spec in specs],
        run_if=RunIf.ALL_DONE,
        python_wheel_task=_wheel_task(workspace_path, RECORD_RUN_TASK, names),
        **_compute_of("pandas", wheel, serverless),
    )


def _wheel_task(workspace_path: str, task_key: str, names: Sequence[str]) -> PythonWheelTask:
    return PythonWheelTask(
        package_name=PACKAGE_NAME,
        entry_point=ENTRY_POINT,
        parameters=task_parameters(
            pipeline_path=workspace_path, task_key=task_key, parameter_names=names
        ),
    )


def _compute_of(compute: TaskCompute, wheel: str, serverless: bool) -> dict[str, Any]:
    """Serverless: the job's environment (which installs the wheel); clusters: the job
    cluster of the task's class, with the wheel as a task library."""
    if serverless:
        return {"environment_key": ENVIRONMENT_KEY}
    return {"job_cluster_key": _cluster_key(compute), "libraries": [Library(whl=wheel)]}


def _cluster_key(compute: TaskCompute) -> str:
    return f"{compute}_cluster"


def _job_clusters(specs: Sequence[TaskSpec], config: PipelineConfig) -> list[JobCluster]:
    """One job cluster per class in use; the record task runs on the pandas class."""
    used = {spec.compute for spec in specs} | {"pandas"}
    return [
        JobCluster(job_cluster_key=_cluster_key(compute), new_cluster=_cluster(compute, config))
        for compute in ("pandas", "spark")
        if compute in used
    ]


def _cluster(compute: TaskCompute, config: PipelineConfig) -> ClusterSpec:
    chosen = config.settings.cluster
    common: dict[str, Any] = {
        "spark_version": chosen.get("spark_version", BundleVariables.spark_version),
        "node_type_id": chosen.get("node_type_id", BundleVariables.node_type_id),
        "data_security_mode": _access_mode(chosen, config),
    }
    if compute == "pandas":
        return ClusterSpec(
            num_workers=0,
            spark_conf=dict(_SINGLE_NODE_CONF),
            custom_tags=dict(_SINGLE_NODE_TAGS),
            **common,
        )
    workers = AutoScale(
        min_workers=chosen.get("min_workers", BundleVariables.min_workers),
        max_workers=chosen.get("max_workers", BundleVariables.max_workers),
    )
    return ClusterSpec(autoscale=workers, **common)


def _access_mode(chosen: Mapping[str, Any], config: PipelineConfig) -> DataSecurityMode:
    value = chosen.get("data_security_mode", DEFAULT_DATA_SECURITY_MODE)
    modes = [mode.value for mode in DataSecurityMode]
    if value not in modes:
        raise PipelineConfigError(
            f"{config.source or config.name}: settings.cluster.data_security_mode "
            f"{value!r} is not one of {', '.join(modes)}{did_you_mean(str(value), modes)}"
        )
    return DataSecurityMode(value)


def _environment(wheel: str) -> JobEnvironment:
    return JobEnvironment(
        environment_key=ENVIRONMENT_KEY,
        spec=Environment(
            environment_version=BundleVariables.environment_version, dependencies=[wheel]
        ),
    )


def _schedule(config: PipelineConfig) -> CronSchedule | None:
    """The pipeline's schedule. ``pause_status`` is left unset on purpose: a target in
    ``mode: development`` pauses every schedule it deploys (unless one says UNPAUSED),
    and production leaves it running."""
    schedule = config.schedule
    if not schedule:
        return None
    if not schedule.get("quartz_cron_expression"):
        raise PipelineConfigError(
            f"{config.source or config.name}: schedule needs quartz_cron_expression "
            '(e.g. "0 0 2 * * ?") and timezone_id (e.g. UTC)'
        )
    return CronSchedule(
        quartz_cron_expression=str(schedule["quartz_cron_expression"]),
        timezone_id=str(schedule.get("timezone_id", "UTC")),
    )


def _notifications(config: PipelineConfig) -> JobEmailNotifications | None:
    emails = list(config.settings.email_on_failure)
    return JobEmailNotifications(on_failure=emails) if emails else None


def _text(value: Any) -> str:
    """A job parameter's default is text; the entry point substitutes it as a local run
    does (``str(value)``), and a parameter declared without a default gets ''."""
    return "" if value is None else str(value)
