"""The job of a pipeline: tasks and their graph, clusters per class, serverless, the entry
point's argv, schedule, parameters, tags and retries."""

import argparse
from dataclasses import replace

import pytest
from databricks.bundles.jobs import DataSecurityMode, Job, RunIf

from odibi_core.bundle.jobs import (
    ENTRY_POINT,
    PACKAGE_NAME,
    PYTHON_WHEEL,
    job_for,
    task_parameters,
    workspace_pipeline_path,
)
from odibi_core.bundle.tasks import RECORD_RUN_TASK, plan_tasks
from odibi_core.core.dag import DAGBuilder
from odibi_core.core.errors import PipelineConfigError
from tests.bundle.conftest import EXAMPLE

WORKSPACE_PIPELINE = "${workspace.file_path}/pipelines/customer_pipeline.yaml"


def with_settings(config, **values):
    return replace(config, settings=replace(config.settings, **values))


def job_of(config) -> Job:
    return job_for(config, pipeline_path=EXAMPLE)


def tasks_by_key(job: Job) -> dict:
    return {task.task_key: task for task in job.tasks}


def clusters_by_key(job: Job) -> dict:
    return {cluster.job_cluster_key: cluster.new_cluster for cluster in job.job_clusters}


@pytest.mark.parametrize("group_by", ["step", "chain", "layer"])
def test_the_tasks_and_their_graph_are_the_plan_and_the_dag_lifted(example, group_by):
    config = with_settings(example, group_by=group_by)
    plan = plan_tasks(config)
    tasks = tasks_by_key(job_of(config))

    assert list(tasks) == [spec.key for spec in plan] + [RECORD_RUN_TASK]
    for spec in plan:
        assert [d.task_key for d in tasks[spec.key].depends_on] == list(spec.depends_on)
        assert tasks[spec.key].run_if is None
    # Every DAG edge between two tasks is a depends_on, and every depends_on is one.
    task_of = {step: spec.key for spec in plan for step in spec.steps}
    lifted = {
        (task_of[producer], task_of[consumer])
        for producer, consumer, _ in DAGBuilder(config.steps).build().edges()
        if task_of[producer] != task_of[consumer]
    }
    declared = {
        (dep.task_key, key)
        for key, task in tasks.items()
        if key != RECORD_RUN_TASK
        for dep in task.depends_on
    }
    assert declared == lifted


@pytest.mark.parametrize("group_by", ["step", "chain", "layer"])
def test_every_data_key_crossing_tasks_has_a_handoff(example, group_by):
    config = with_settings(example, group_by=group_by)
    plan = {spec.key: spec for spec in plan_tasks(config)}
    task_of = {step: spec.key for spec in plan.values() for step in spec.steps}
    crossing = 0
    for producer, consumer, keys in DAGBuilder(config.steps).build().edges():
        frm, to = task_of[producer], task_of[consumer]
        if frm != to:
            crossing += 1
            assert set(keys) <= set(plan[frm].handoffs), (producer, consumer)
            assert set(keys) <= set(plan[to].reads), (producer, consumer)
    assert set(tasks_by_key(job_of(config))) == set(plan) | {RECORD_RUN_TASK}
    assert crossing == {"step": 5, "chain": 3, "layer": 4}[group_by]


def test_the_last_task_records_the_run_once_every_task_is_done(example):
    job = job_of(example)
    record = job.tasks[-1]
    assert record.task_key == RECORD_RUN_TASK
    assert record.run_if == RunIf.ALL_DONE
    assert [d.task_key for d in record.depends_on] == [spec.key for spec in plan_tasks(example)]
    assert record.job_cluster_key == "pandas_cluster"
    assert record.python_wheel_task.parameters[3] == RECORD_RUN_TASK


def test_each_task_calls_the_wheel_entry_point_with_the_contracted_argv(example):
    config = replace(example, parameters={"run_date": "2024-05-01", "country": None})
    task = tasks_by_key(job_of(config))["join_all"]
    wheel = task.python_wheel_task
    assert (
        (wheel.package_name, wheel.entry_point)
        == (PACKAGE_NAME, ENTRY_POINT)
        == (
            "odibi_core",
            "odibi-task",
        )
    )
    assert wheel.parameters == [
        "--pipeline",
        WORKSPACE_PIPELINE,
        "--task",
        "join_all",
        "--run-id",
        "{{job.run_id}}",
        "--repair-count",
        "{{job.repair_count}}",
        "--job-id",
        "{{job.id}}",
        "--state-schema",
        "${var.catalog}.${var.schema}",
        "--param",
        "run_date={{job.parameters.run_date}}",
        "--param",
        "country={{job.parameters.country}}",
    ]


def test_the_argv_parses_as_the_entry_point_reads_it():
    # The entry point's own parser belongs to the task module; this one states the
    # contract: named options, the params repeated, values kept whole.
    parser = argparse.ArgumentParser()
    for option in ("--pipeline", "--task", "--run-id", "--repair-count", "--job-id"):
        parser.add_argument(option, required=True)
    parser.add_argument("--state-schema", required=True)
    parser.add_argument("--param", action="append", default=[])
    argv = task_parameters(
        pipeline_path="/Workspace/p.yaml", task_key="t-1", parameter_names=["a", "b_2"]
    )
    args = parser.parse_args(argv)
    assert (args.pipeline, args.task, args.run_id) == ("/Workspace/p.yaml", "t-1", "{{job.run_id}}")
    assert (args.repair_count, args.job_id) == ("{{job.repair_count}}", "{{job.id}}")
    assert args.state_schema == "${var.catalog}.${var.schema}"
    assert args.param == ["a={{job.parameters.a}}", "b_2={{job.parameters.b_2}}"]


def test_pipeline_parameters_become_job_parameters_with_their_defaults(example):
    config = replace(example, parameters={"run_date": "2024-05-01", "limit": 10, "day": None})
    job = job_of(config)
    assert [(p.name, p.default) for p in job.parameters] == [
        ("run_date", "2024-05-01"),
        ("limit", "10"),
        ("day", ""),
    ]
    assert job_of(example).parameters == []


def test_spark_class_tasks_run_on_an_autoscaling_cluster_of_the_bundle_variables(example):
    job = job_of(example)  # engine auto: every step is Spark-class
    assert {t.job_cluster_key for t in job.tasks[:-1]} == {"spark_cluster"}
    spark = clusters_by_key(job)["spark_cluster"]
    assert spark.as_dict() == {
        "autoscale": {"min_workers": "${var.min_workers}", "max_workers": "${var.max_workers}"},
        "data_security_mode": "SINGLE_USER",
        "node_type_id": "${var.node_type_id}",
        "spark_version": "${var.spark_version}",
    }
    assert spark.num_workers is None


def test_pandas_class_tasks_run_on_a_single_node_cluster(example):
    job = job_of(replace(example, engine="pandas"))
    assert [c.job_cluster_key for c in job.job_clusters] == ["pandas_cluster"]
    assert {t.job_cluster_key for t in job.tasks} == {"pandas_cluster"}
    single = clusters_by_key(job)["pandas_cluster"]
    assert single.num_workers == 0
    assert single.autoscale is None
    assert single.spark_conf == {
        "spark.databricks.cluster.profile": "singleNode",
        "spark.master": "local[*]",
    }
    assert single.custom_tags == {"ResourceClass": "SingleNode"}
    assert single.data_security_mode == DataSecurityMode.SINGLE_USER


def test_task_compute_and_cluster_settings_shape_the_clusters(example):
    config = with_settings(
        example,
        task_compute={"read_customers": "pandas"},
        cluster={
            "spark_version": "16.4.x-scala2.12",
            "node_type_id": "Standard_D4ds_v5",
            "min_workers": 2,
            "max_workers": 8,
            "data_security_mode": "DATA_SECURITY_MODE_AUTO",
        },
    )
    job = job_of(config)
    tasks = tasks_by_key(job)
    assert tasks["read_customers"].job_cluster_key == "pandas_cluster"
    assert tasks["read_orders"].job_cluster_key == "spark_cluster"
    clusters = clusters_by_key(job)
    assert list(clusters) == ["pandas_cluster", "spark_cluster"]
    for cluster in clusters.values():
        assert cluster.spark_version == "16.4.x-scala2.12"
        assert cluster.node_type_id == "Standard_D4ds_v5"
        assert cluster.data_security_mode == DataSecurityMode.DATA_SECURITY_MODE_AUTO
    assert clusters["spark_cluster"].autoscale.as_dict() == {"min_workers": 2, "max_workers": 8}


def test_the_wheel_is_a_task_library_on_clusters(example):
    job = job_of(example)
    assert job.environments == []
    for task in job.tasks:
        assert [lib.whl for lib in task.libraries] == [PYTHON_WHEEL] == ["dist/*.whl"]
        assert task.environment_key is None


def test_serverless_uses_one_environment_holding_the_wheel_and_no_clusters(example):
    job = job_of(with_settings(example, compute="serverless"))
    assert job.job_clusters == []
    assert [e.as_dict() for e in job.environments] == [
        {
            "environment_key": "default",
            "spec": {
                "dependencies": ["dist/*.whl"],
                "environment_version": "${var.environment_version}",
            },
        }
    ]
    for task in job.tasks:
        assert task.environment_key == "default"
        assert (task.job_cluster_key, task.libraries) == (None, [])


def test_job_settings_come_from_the_pipeline(example):
    config = with_settings(
        example, timeout_seconds=3600, email_on_failure=("ops@example.com", "me@example.com")
    )
    job = job_of(config)
    assert job.name == "customer_pipeline"
    assert job.max_concurrent_runs == 1
    assert job.timeout_seconds == 3600
    assert job.email_notifications.on_failure == ["ops@example.com", "me@example.com"]
    assert job.tags == {"odibi_pipeline": "customer_pipeline", "odibi_target": "${bundle.target}"}
    quiet = job_of(example)
    assert (quiet.timeout_seconds, quiet.email_notifications) == (None, None)


def test_the_schedule_is_the_pipelines_and_its_pause_is_left_to_the_target_mode(example):
    job = job_of(example)
    assert job.schedule.as_dict() == {
        "quartz_cron_expression": "0 0 2 * * ?",
        "timezone_id": "UTC",
    }
    assert job.schedule.pause_status is None
    assert job_of(replace(example, schedule=None)).schedule is None
    with pytest.raises(PipelineConfigError, match="quartz_cron_expression"):
        job_of(replace(example, schedule={"timezone_id": "UTC"}))


def test_retries_are_the_tasks_and_the_interval_the_retry_delay(example):
    config = with_settings(example, max_retries=3, retry_delay=2.5)
    job = job_of(config)
    for spec in plan_tasks(config):
        task = tasks_by_key(job)[spec.key]
        assert (task.max_retries, task.min_retry_interval_millis) == (spec.retries, 2500)
        assert task.retry_on_timeout is False
    assert {t.max_retries for t in job.tasks[:-1]} == {3}


def test_a_step_with_its_own_retries_sets_its_tasks(example):
    steps = tuple(replace(s, retries=4) if s.name == "add_flag" else s for s in example.steps)
    tasks = tasks_by_key(job_of(replace(example, steps=steps)))
    assert tasks["add_flag"].max_retries == 4
    assert tasks["join_all"].max_retries == 1  # the pipeline's max_retries


def test_an_unknown_access_mode_names_the_choices(example):
    config = with_settings(example, cluster={"data_security_mode": "SINGLE_USR"})
    with pytest.raises(PipelineConfigError, match="did you mean 'SINGLE_USER'"):
        job_of(config)


@pytest.mark.parametrize("path", ["/abs/p.yaml", "../p.yaml", ""])
def test_the_pipeline_path_must_be_inside_the_bundle(path):
    with pytest.raises(PipelineConfigError, match="relative to the bundle root"):
        workspace_pipeline_path(path)
