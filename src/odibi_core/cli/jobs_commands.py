"""``odibi jobs``: a pipeline's deployed job on a Databricks workspace.

``odibi jobs run PIPELINE`` starts the job the bundle deployed for the pipeline (``--wait``
follows it to the end), ``odibi jobs status PIPELINE|RUN_ID`` prints the latest runs, or one
run, with the state of every task, and ``odibi jobs repair RUN_ID`` reruns a run's failed
tasks. The client is databricks-sdk's, configured the standard way: ``DATABRICKS_HOST`` and
``DATABRICKS_TOKEN``, or ``--profile`` of ~/.databrickscfg.

Exit codes: 0 done (and, with ``--wait``, the run succeeded), 1 the run failed or the
workspace refused a request, 2 bad arguments, no configuration or no deployed job.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from odibi_core.cli.arguments import EXIT_FAILED, EXIT_OK, parse_params
from odibi_core.workspace.jobs import DeployedJob, JobRun, WorkspaceConfigError
from odibi_core.workspace.jobs import WorkspaceJobs as _Jobs

_PIPELINE_SUFFIXES = (".yaml", ".yml", ".json")


def add_jobs_parser(subparsers: Any) -> None:
    """Register ``odibi jobs`` (``run``, ``status``, ``repair``) on the ``odibi`` subparsers."""
    jobs = subparsers.add_parser(
        "jobs", help="run, follow and repair a pipeline's deployed job on Databricks"
    )
    actions = jobs.add_subparsers(dest="jobs_action", required=True, metavar="ACTION")
    run = actions.add_parser("run", help="start the pipeline's job now (run-now)")
    run.add_argument("pipeline", help="a pipeline file, or a pipeline's name")
    _add_job_choice(run)
    run.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a job parameter for this run (repeatable)",
    )
    _add_wait(run, "wait for the run to end; exit 0 only if it succeeded")
    status = actions.add_parser("status", help="the latest runs of a pipeline's job, or one run")
    status.add_argument("subject", metavar="PIPELINE|RUN_ID", help="a pipeline, or a run id")
    _add_job_choice(status)
    status.add_argument("--limit", type=int, default=5, help="how many runs (default 5)")
    repair = actions.add_parser(
        "repair", help="rerun a run's failed tasks and the tasks downstream"
    )
    repair.add_argument("run_id", type=int, help="the job run id")
    _add_wait(repair, "wait for the repair to end; exit 0 only if the run then succeeded")
    for action, handler in (
        (run, cmd_jobs_run),
        (status, cmd_jobs_status),
        (repair, cmd_jobs_repair),
    ):
        action.add_argument(
            "--profile", help="a ~/.databrickscfg profile (default: the environment)"
        )
        action.add_argument(
            "--timeout",
            type=int,
            default=60,
            help="seconds to keep retrying an unreachable or busy workspace (default 60)",
        )
        action.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
        action.set_defaults(handler=handler)


def _add_job_choice(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", help="the bundle target the job was deployed to (dev, prod)")
    parser.add_argument(
        "--job-id", type=int, help="this job, when several are deployed for one target"
    )


def _add_wait(parser: argparse.ArgumentParser, text: str) -> None:
    parser.add_argument("--wait", action="store_true", help=text)
    parser.add_argument(
        "--poll-seconds", type=float, default=10.0, help="seconds between checks (default 10)"
    )


def cmd_jobs_run(args: argparse.Namespace) -> int:
    params = parse_params(args.param)
    _check_positive(args, "poll_seconds")
    jobs = _connect(args)
    job = _job(jobs, args, args.pipeline)
    jobs.check_parameters(job, params)
    run = jobs.run_now(job, params)
    print(f"started run {run.run_id} of {job.describe()}")
    print(f"  {run.url or 'no run page URL'}")
    if not args.wait:
        return EXIT_OK
    return _report_end(_follow(jobs, run.run_id, args.poll_seconds))


def cmd_jobs_status(args: argparse.Namespace) -> int:
    _check_positive(args, "limit")
    jobs = _connect(args)
    if args.subject.isdigit() and not Path(args.subject).exists():
        run = jobs.run(int(args.subject), history=True)
        print(f"run {run.run_id} of job {run.job_id}{_after_repair(run)}")
        _print_run(run)
        return EXIT_OK
    job = _job(jobs, args, args.subject)
    runs = jobs.latest_runs(job, args.limit)
    if not runs:
        print(f"{job.describe()} has no runs yet; start one with `odibi jobs run {args.subject}`")
        return EXIT_OK
    print(f"{job.describe()}: the latest {len(runs)} run(s)")
    for run in runs:
        _print_run(run)
    return EXIT_OK


def cmd_jobs_repair(args: argparse.Namespace) -> int:
    _check_positive(args, "poll_seconds")
    jobs = _connect(args)
    run, repair_id = jobs.repair_failed(args.run_id)
    if repair_id is None:
        print(
            f"run {run.run_id} has no failed task ({_state(run.life_cycle, run.result)}): "
            "nothing to repair"
        )
        return EXIT_OK
    rerun = ", ".join(task.task_key for task in run.failed_tasks())
    print(
        f"repair {repair_id} of run {run.run_id}{_after_repair(run)}: "
        f"rerunning {rerun} and the tasks downstream"
    )
    print(f"  {run.url or 'no run page URL'}")
    if not args.wait:
        return EXIT_OK
    return _report_end(_follow(jobs, run.run_id, args.poll_seconds, repair_id))


def _connect(args: argparse.Namespace) -> _Jobs:
    _check_positive(args, "timeout")
    return _Jobs.connect(args.profile, timeout_seconds=args.timeout)


def _job(jobs: _Jobs, args: argparse.Namespace, pipeline: str) -> DeployedJob:
    name = _pipeline_name(pipeline)
    if args.job_id is None:
        return jobs.find_job(name, args.target)
    job = jobs.job(args.job_id)
    if job.pipeline != name:
        raise WorkspaceConfigError(
            f"--job-id {args.job_id}: {job.describe()} runs pipeline '{job.pipeline}', not '{name}'"
        )
    return job


def _pipeline_name(text: str) -> str:
    """A pipeline file's ``name``, or ``text`` itself when it names no file."""
    path = Path(text)
    if path.suffix.lower() in _PIPELINE_SUFFIXES or path.is_file():
        from odibi_core.core.config import load_pipeline

        return load_pipeline(path).name
    return text


def _check_positive(args: argparse.Namespace, name: str) -> None:
    value = getattr(args, name)
    if value <= 0:
        flag = "--" + name.replace("_", "-")
        raise WorkspaceConfigError(f"command line: {flag} must be more than 0, got {value}")


def _follow(jobs: _Jobs, run_id: int, poll_seconds: float, repair_id: int | None = None) -> JobRun:
    """Wait for the run, one line on stderr per task whose state changed."""
    seen: dict[str, str] = {}

    def changed(run: JobRun) -> None:
        states = [(f"task {t.task_key}", _state(t.life_cycle, t.result)) for t in run.tasks]
        states.append((f"run {run_id}", _state(run.life_cycle, run.result)))
        for name, text in states:
            if seen.get(name) != text:
                seen[name] = text
                stamp = datetime.now(timezone.utc).strftime("%H:%M:%S")
                print(f"{stamp}  {name}: {text}", file=sys.stderr)

    try:
        return jobs.wait(run_id, poll_seconds=poll_seconds, on_poll=changed, repair_id=repair_id)
    except KeyboardInterrupt:
        print(f"stopped waiting; run {run_id} goes on: odibi jobs status {run_id}", file=sys.stderr)
        raise


def _report_end(run: JobRun) -> int:
    state = _state(run.life_cycle, run.result)
    if run.succeeded:
        print(f"run {run.run_id} succeeded ({state})")
        return EXIT_OK
    print(f"run {run.run_id} did not succeed ({state}{_message(run.message)})")
    failed = run.failed_tasks()
    for task in failed:
        print(f"  {task.task_key}: {task.result} (attempt {task.attempt}){_message(task.message)}")
    if failed:
        print(f"rerun its failed tasks with: odibi jobs repair {run.run_id}")
    return EXIT_FAILED


def _print_run(run: JobRun) -> None:
    started = _when(run.start_time)
    print(f"run {run.run_id}  {_state(run.life_cycle, run.result)}  started {started}")
    if run.url:
        print(f"  {run.url}")
    rows = [("TASK", "STATE", "RESULT", "ATTEMPT")] + [
        (task.task_key, task.life_cycle, task.result or "-", str(task.attempt))
        for task in run.tasks
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    for row in rows:
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def _after_repair(run: JobRun) -> str:
    return f", after repair {run.latest_repair.repair_id}" if run.latest_repair else ""


def _state(life_cycle: str, result: str | None) -> str:
    return f"{life_cycle} {result}" if result else life_cycle


def _message(text: str) -> str:
    return f": {text}" if text else ""


def _when(epoch_ms: int | None) -> str:
    if not epoch_ms:
        return "-"
    return datetime.fromtimestamp(epoch_ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
