"""The example pipeline's job, run as Databricks runs it, on the wheel and on a cluster.

The wheel the bundle deploys is built and installed into a virtual environment of its
own; ``odibi job-run --simulate`` from there runs every task through that environment's
``odibi-task`` console script, each in a process of its own, and each task's Spark
session is an application of a Spark standalone cluster on 127.0.0.1 (a master and two
workers): its data files are read and written by executor processes and committed by the
driver. The target must equal that of a local ``odibi run``, and the run's audit must
hold one run row and one row per step, each under its task.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from chispa import assert_df_equality

from odibi_core.bundle.tasks import RECORD_RUN_TASK, plan_tasks
from odibi_core.cli import main
from odibi_core.core.config import StateLocation, load_pipeline
from odibi_core.core.tables import local_table_path
from odibi_core.state.audit import AuditStore

pytestmark = [pytest.mark.slow, pytest.mark.spark]

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "pipelines" / "customer_pipeline.yaml"
TARGET = "main.sales.orders_enriched"
RUN_ID = "cluster-1"
JOB_TIMEOUT_SECONDS = 1800


# A step on Spark whose Python UDFs (closures, pickled by value) run in the executors'
# Python workers; the working folder each one reports shows where that was.
UDF_MODULE = """\
import os

from pyspark.sql import functions as F, types as T


def tag_rows(data):
    factor = 3
    tripled = F.udf(lambda quantity: quantity * factor, T.LongType())
    ran_in = F.udf(lambda: os.getcwd(), T.StringType()).asNondeterministic()
    tagged = data.withColumn("tripled", tripled("quantity")).withColumn("ran_in", ran_in())
    rows = tagged.select("ran_in", (F.col("tripled") == F.col("quantity") * 3).alias("ok"))
    seen = rows.distinct().collect()
    print("udf ran in:", sorted({row.ran_in for row in seen}), "right:", all(r.ok for r in seen))
    return tagged
"""
UDF_STEP = """\
  - layer: transform
    name: tag_rows
    engine: spark
    value: "cluster_udfs:tag_rows"
    inputs: {data: enriched}
    outputs: {data: tagged}
"""


def generate_example_data(target: Path) -> None:
    """The example's inputs, as ``pipelines/generate_data.py`` writes them, under ``target``."""
    spec = importlib.util.spec_from_file_location(
        "generate_data", EXAMPLE.with_name("generate_data.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.generate(target)


@pytest.fixture
def example_dir(tmp_path) -> Path:
    """The example pipeline with one more step, a Spark one with Python UDFs, in a task of
    its own; its module next to it."""
    (tmp_path / EXAMPLE.name).write_text(EXAMPLE.read_text() + UDF_STEP)
    (tmp_path / "cluster_udfs.py").write_text(UDF_MODULE)
    generate_example_data(tmp_path / "data")
    return tmp_path


def installed_odibi_core(python: Path) -> Path:
    """Where ``python`` imports odibi_core from, checking the sources are not on its path
    and that every module of the installed package is the source's as it is now."""
    code = "import sys, odibi_core; print(odibi_core.__file__); print(sys.path)"
    done = subprocess.run(
        [python, "-c", code], capture_output=True, text=True, cwd="/", env=clean_env()
    )
    assert done.returncode == 0, done.stderr
    location, path = done.stdout.splitlines()
    assert str(REPO / "src") not in path, path
    package, sources = Path(location).parent, REPO / "src" / "odibi_core"
    stale = [
        str(module.relative_to(sources))
        for module in sources.rglob("*.py")
        if module.read_bytes() != (package / module.relative_to(sources)).read_bytes()
    ]
    assert not stale, f"the installed wheel differs from the sources in {stale}"
    return Path(location)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without what would point a child at the sources or at
    another Spark (PYTHONPATH, SPARK_REMOTE, SPARK_HOME), with ``extra``."""
    dropped = ("PYTHONPATH", "SPARK_REMOTE", "SPARK_HOME")
    return {**{k: v for k, v in os.environ.items() if k not in dropped}, **extra}


def run_job(python: Path, directory: Path, master: str) -> subprocess.CompletedProcess:
    """``odibi job-run --simulate`` of the pipeline in ``directory``, from the wheel's venv,
    its Spark sessions on ``master``."""
    env = clean_env(
        ODIBI_SPARK_MASTER=master,
        ODIBI_WAREHOUSE=str(directory / "warehouse"),
        ODIBI_SPARK_DRIVER_MEMORY="1g",
        PYSPARK_PYTHON=str(python),
        PYSPARK_DRIVER_PYTHON=str(python),
        PYTHONPATH=str(directory),  # the tasks import cluster_udfs; no odibi_core there
    )
    argv = [python.with_name("odibi"), "job-run", EXAMPLE.name, "--simulate"]
    argv += ["--run-id", RUN_ID, "--max-parallel", "2"]
    started = time.perf_counter()
    done = subprocess.run(
        [str(a) for a in argv],
        capture_output=True,
        text=True,
        cwd=directory,
        env=env,
        timeout=JOB_TIMEOUT_SECONDS,
    )
    print(done.stdout, done.stderr, f"job run: {time.perf_counter() - started:.0f}s", sep="\n")
    return done


def assert_each_task_ran_in_its_own_process(done, directory: Path, tasks: list[str]) -> None:
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line.split()[:2] for line in done.stdout.splitlines()]
    for key in [*tasks, RECORD_RUN_TASK]:
        assert [key, "SUCCESS"] in lines, (key, done.stdout)
    logs = directory / "jobs" / RUN_ID
    assert sorted(p.name for p in logs.glob("*.log")) == sorted(
        f"{key}.0.log" for key in [*tasks, RECORD_RUN_TASK]
    )
    for key in tasks:
        assert f"task {key} of run {RUN_ID}.1" in (logs / f"{key}.0.log").read_text()


def app_ids(cluster) -> set[str]:
    state = cluster.state()
    return {app["id"] for app in state["activeapps"] + state["completedapps"]}


def assert_each_task_was_a_cluster_application(cluster, before: set[str], count: int) -> None:
    """``count`` new applications, all finished, each with an executor that ran Spark tasks."""
    deadline = time.monotonic() + 60
    while (state := cluster.state())["activeapps"] and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not state["activeapps"], state["activeapps"]
    apps = {app["id"]: app for app in state["completedapps"] if app["id"] not in before}
    print("applications:", {i: (a["state"], a["duration"]) for i, a in apps.items()})
    assert len(apps) == count, apps
    for app_id in apps:
        executor_logs = [
            log
            for n in range(1, cluster.workers + 1)
            for log in (cluster.work_dir(n) / app_id).glob("*/stderr")
        ]
        ran = [log for log in executor_logs if "Running task" in log.read_text()]
        assert ran, f"no executor of {app_id} ran a Spark task: {executor_logs}"


def assert_udfs_ran_in_executors(cluster, directory: Path) -> None:
    """tag_rows's UDFs ran in Python workers of the executors: in their work folders."""
    log = (directory / "jobs" / RUN_ID / "tag_rows.0.log").read_text()
    ran_in = re.search(r"udf ran in: \[(.*)\] right: (\w+)", log)
    assert ran_in and ran_in.group(2) == "True", log
    folders = [Path(p.strip(" '")) for p in ran_in.group(1).split(",")]
    assert folders, log
    for folder in folders:
        assert folder.is_relative_to(cluster.root / "work"), folder


def assert_audit_of_the_execution(spark, warehouse: Path, config) -> None:
    """One run row for execution RUN_ID.1, and one audit row per step under its task."""
    store = AuditStore(
        StateLocation(schema="odibi_state"), spark_provider=lambda: spark, warehouse=warehouse
    )
    audit = store.read_run(RUN_ID)
    assert [(r["execution_id"], r["status"]) for r in audit["runs"]] == [(f"{RUN_ID}.1", "SUCCESS")]
    rows = [r for r in audit["steps"] if r["execution_id"] == f"{RUN_ID}.1"]
    assert len(rows) == len(config.steps) == 7  # the example's 6 and tag_rows
    task_of = {step: t.key for t in plan_tasks(config) for step in t.steps}
    assert sorted((r["step_name"], r["status"], r["databricks_task_key"]) for r in rows) == sorted(
        (s.name, "SUCCESS", task_of[s.name]) for s in config.steps
    )


def test_the_example_job_runs_from_the_wheel_on_a_standalone_cluster(
    standalone_cluster, wheel_venv, example_dir, spark, monkeypatch
):
    started = time.perf_counter()
    site = installed_odibi_core(wheel_venv)
    assert site.is_relative_to(wheel_venv.parents[1]), f"odibi_core imported from {site}"
    assert wheel_venv.with_name("odibi-task").is_file()  # the console script each task runs
    config = load_pipeline(example_dir / EXAMPLE.name)
    tasks = [t.key for t in plan_tasks(config)]
    before = app_ids(standalone_cluster)

    done = run_job(wheel_venv, example_dir, standalone_cluster.url)
    assert_each_task_ran_in_its_own_process(done, example_dir, tasks)
    assert_each_task_was_a_cluster_application(standalone_cluster, before, len(tasks) + 1)
    assert_udfs_ran_in_executors(standalone_cluster, example_dir)
    assert_audit_of_the_execution(spark, example_dir / "warehouse", config)

    # The same target as a local run of the pipeline (in this process, local mode).
    local_warehouse = example_dir / "local_warehouse"
    monkeypatch.chdir(example_dir)
    monkeypatch.setenv("ODIBI_WAREHOUSE", str(local_warehouse))
    monkeypatch.syspath_prepend(str(example_dir))
    assert main(["run", EXAMPLE.name, "--quiet"]) == 0
    expected = spark.read.format("delta").load(str(local_table_path(TARGET, local_warehouse)))
    actual = spark.read.format("delta").load(
        str(local_table_path(TARGET, example_dir / "warehouse"))
    )
    assert actual.count() == 5_000
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
    print(f"whole test: {time.perf_counter() - started:.0f}s")
