"""``odibi job-run PIPELINE --simulate [--repair RUN_ID]``: the pipeline's job, run locally.

Each task runs in a process of its own through the wheel's entry point, in ``depends_on``
order, against the local warehouse; see ``odibi_core.bundle.local_job``.
"""

from __future__ import annotations

import sys


def add_job_run_parser(commands) -> None:
    job_run = commands.add_parser(
        "job-run",
        help="run a pipeline's job locally as Databricks would: each task in its own process",
    )
    job_run.add_argument("pipeline", help="the pipeline file")
    job_run.add_argument(
        "--simulate",
        action="store_true",
        help="run the job here (required: a deployed job runs with `odibi jobs run`)",
    )
    job_run.add_argument(
        "--repair",
        metavar="RUN_ID",
        help="rerun the tasks of that local job run that did not succeed, and those after them",
    )
    job_run.add_argument("--run-id", help="the job run's id (default: a new one)")
    job_run.add_argument("--state-schema", help="state location [catalog.]schema")
    job_run.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="a job parameter"
    )
    job_run.add_argument(
        "--max-parallel", type=int, default=4, help="tasks running at once (default 4)"
    )
    job_run.set_defaults(handler=_cmd_job_run)


def _cmd_job_run(args) -> int:
    from odibi_core.bundle.local_job import LocalJobRun
    from odibi_core.cli.arguments import EXIT_FAILED, EXIT_OK, parse_params
    from odibi_core.core.config import load_pipeline
    from odibi_core.core.errors import PipelineConfigError
    from odibi_core.core.tables import default_warehouse
    from odibi_core.execution.context import new_run_id
    from odibi_core.state.location import DEFAULT_STATE_SCHEMA

    if not args.simulate:
        raise PipelineConfigError(
            "odibi job-run needs --simulate (it runs the job on this machine); "
            "run the deployed job with `odibi jobs run PIPELINE`"
        )
    if args.max_parallel < 1:
        raise PipelineConfigError(f"--max-parallel must be 1 or more, got {args.max_parallel}")
    if args.repair and args.run_id and args.repair != args.run_id:
        raise PipelineConfigError("--repair names the run: give --repair or --run-id, not both")
    config = load_pipeline(args.pipeline)
    warehouse = default_warehouse().resolve()
    job = LocalJobRun(
        config=config,
        run_id=args.repair or args.run_id or new_run_id(),
        jobs_dir=warehouse.parent / "jobs",
        state_schema=args.state_schema or _schema_of(config) or DEFAULT_STATE_SCHEMA,
        params=parse_params(args.param),
        max_parallel=args.max_parallel,
        environment={"ODIBI_WAREHOUSE": str(warehouse)},
    )
    if args.repair:
        job.load_for_repair()
    print(f"job run {job.run_id} of {config.name}, execution {job.run_id}.{job.repair_count + 1}")
    ok = job.run(on_done=_print_outcome)
    print(f"job run {job.run_id}: {'SUCCESS' if ok else 'FAILED'}")
    if not ok:
        print(
            f"repair it with: odibi job-run {args.pipeline} --simulate --repair {job.run_id}",
            file=sys.stderr,
        )
    return EXIT_OK if ok else EXIT_FAILED


def _schema_of(config) -> str | None:
    return config.state.qualified if config.state is not None else None


def _print_outcome(outcome) -> None:
    print(f"  {outcome.key:<30} {outcome.state:<16} {outcome.seconds:6.1f} s", flush=True)
    if outcome.state == "FAILED" and outcome.log is not None:
        tail = outcome.log.read_text(errors="replace").strip().splitlines()[-5:]
        for line in tail:
            print(f"    | {line}", file=sys.stderr)
        print(f"    full log: {outcome.log}", file=sys.stderr)
