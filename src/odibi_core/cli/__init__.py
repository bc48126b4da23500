"""The ``odibi`` command.

Exit codes: 0 success, 1 pipeline failure (or a run its state tables could not record),
2 configuration error, 130 Ctrl-C, 143 SIGTERM. A user's mistake is one clear message;
``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from odibi_core.cli.arguments import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    parse_params,
)
from odibi_core.core.errors import OdibiError, PipelineConfigError
from odibi_core.core.step_table import Column, step_table
from odibi_core.engine.log_scrubbing import CurrentStderrHandler
from odibi_core.state.location import DEFAULT_STATE_SCHEMA

_parse_params = parse_params  # the name the commands here and the tests use
LINEAGE_COLUMNS: tuple[Column, ...] = (
    "step",
    "layer",
    "status",
    "duration",
    "row change",
    "schema change",
)


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: the run stops the way Ctrl-C stops it."""


def task_main(argv: Sequence[str] | None = None) -> int:
    """``odibi-task``, the wheel entry point of job tasks: ``odibi task`` with the same
    errors, signals and ``--debug``."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    debug = ["--debug"] if "--debug" in arguments else []
    return main([*debug, "task", *(a for a in arguments if a != "--debug")])


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[CurrentStderrHandler()],  # main may run where stderr is swapped
    )
    try:
        with _sigterm_as_interrupt():
            return args.handler(args)
    except BaseException as exc:
        interrupt = _interrupt_in_chain(exc)
        if interrupt is not None:
            _exit_interrupted(interrupt)
        if args.debug or not isinstance(exc, OdibiError):
            raise
        if isinstance(exc, PipelineConfigError):
            _print_config_error(exc)
            return EXIT_CONFIG
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _exit_interrupted(interrupt: KeyboardInterrupt) -> None:
    terminated = isinstance(interrupt, Terminated)
    print(
        f"{'terminated (SIGTERM)' if terminated else 'interrupted'}: no new step was "
        "started; steps still running were abandoned",
        file=sys.stderr,
    )
    sys.stderr.flush()
    sys.stdout.flush()
    # Worker threads running user code cannot be stopped; exiting now beats waiting on them.
    os._exit(EXIT_TERMINATED if terminated else EXIT_INTERRUPTED)


def _interrupt_in_chain(exc: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C (or SIGTERM) behind ``exc``, if any.

    An interrupt that lands while a lock is being re-acquired inside ``Condition.wait``
    surfaces as ``RuntimeError: cannot release un-acquired lock`` with the interrupt as its
    context; that is still an interrupt, and must exit at once rather than wait on workers.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into ``Terminated`` on the main thread while a command runs."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set on the main thread
        return

    def terminate(signum, frame) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _print_config_error(exc: PipelineConfigError) -> None:
    for problem in exc.problems:
        print(f"error: {problem}", file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="odibi", description="Run and inspect odibi_core pipelines."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser(
        "validate", help="check a pipeline file and report every problem"
    )
    validate.add_argument("pipeline", help="path to a pipeline .yaml or .json file")
    validate.set_defaults(handler=_cmd_validate)

    dag = commands.add_parser("dag", help="print a pipeline's DAG by level, or as Mermaid")
    dag.add_argument("pipeline")
    dag.add_argument("--mermaid", action="store_true", help="print Mermaid flowchart text")
    dag.set_defaults(handler=_cmd_dag)

    for register in _EXTRA_COMMANDS:
        register(commands)
    for sub in commands.choices.values():
        sub.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
    return parser


def _cmd_validate(args) -> int:
    from odibi_core.core.config import load_pipeline
    from odibi_core.core.dag import DAGBuilder
    from odibi_core.engine.quality_schema import raise_on_rule_columns

    config = load_pipeline(args.pipeline)
    dag = DAGBuilder(config.steps).build()
    raise_on_rule_columns(config)  # quality rules against the outputs known without data
    print(
        f"{args.pipeline}: pipeline '{config.name}' is valid: "
        f"{len(config.steps)} steps, {len(dag.levels())} levels, default engine {config.engine}"
    )
    return EXIT_OK


def _cmd_dag(args) -> int:
    from odibi_core.core.config import load_pipeline
    from odibi_core.core.dag import DAGBuilder

    config = load_pipeline(args.pipeline)
    dag = DAGBuilder(config.steps).build()
    if args.mermaid:
        print(dag.to_mermaid(), end="")
        return EXIT_OK
    print(f"pipeline {config.name}: {len(dag)} steps")
    for level, names in enumerate(dag.levels()):
        print(f"level {level}:")
        for name in names:
            step = dag.step(name)
            reads = ", ".join(step.input_keys) or "-"
            writes = ", ".join(step.output_keys) or "-"
            print(f"  {name} [{step.layer}]  reads: {reads}  writes: {writes}")
    return EXIT_OK


def _register_run(commands) -> None:
    run = commands.add_parser("run", help="run a pipeline locally, with live progress")
    run.add_argument("pipeline", help="path to a pipeline .yaml or .json file")
    run.add_argument(
        "--engine", choices=("pandas", "spark", "auto"), help="default engine for steps without one"
    )
    run.add_argument(
        "--select",
        help="run a subset: 'name', '+name' (with ancestors), 'name+' (with descendants), 'layer:transform'",
    )
    run.add_argument(
        "--max-workers", type=int, help="steps running at once (default: settings.max_workers or 4)"
    )
    run.add_argument("--retries", type=int, help="retries after a step's first failed attempt")
    run.add_argument(
        "--fail-fast", action="store_true", default=None, help="start nothing new after a failure"
    )
    run.add_argument("--lineage", metavar="OUT.json", help="write the lineage JSON here")
    run.add_argument("--report", metavar="OUT.html", help="write the HTML run report here")
    run.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a runtime parameter (repeatable)",
    )
    run.add_argument(
        "--state-schema",
        help=f"state location [catalog.]schema (default: {DEFAULT_STATE_SCHEMA} in .odibi/warehouse)",
    )
    run.add_argument("--no-state", action="store_true", help="do not write the audit tables")
    run.add_argument(
        "--run-id",
        help="this run's id; reuse one to rerun the same run (a job task: {{job.run_id}})",
    )
    run.add_argument(
        "--checkpoints",
        action="store_true",
        help="keep each finished step's outputs in Delta, so --resume skips the step "
        "(on whenever --run-id or --resume is given)",
    )
    run.add_argument(
        "--resume",
        metavar="RUN_ID",
        help="a new execution of that run (or of an execution id's run): steps checkpointed "
        "with an unchanged definition are restored, the rest run",
    )
    run.add_argument(
        "--cache",
        action="store_true",
        help="restore every step whose definition, code and inputs are unchanged since a "
        "cached run from the Delta cache, instead of running it (steps with cache: false "
        "excepted; steps with cache: true always use it)",
    )
    run.add_argument(
        "--cache-by-content",
        action="store_true",
        help="the cache knows source files by a hash of their bytes, not their size and "
        "modification time",
    )
    run.add_argument(
        "--attempt",
        type=int,
        help="number of this execution within the run (default 1; a retried or repaired task's count)",
    )
    run.add_argument("--job-id", help="the Databricks job id, for the audit ({{job.id}})")
    run.add_argument("--task-key", help="the Databricks task key, for the audit ({{task.name}})")
    run.add_argument(
        "--quiet", action="store_true", help="plain log lines instead of the live view"
    )
    run.set_defaults(handler=_cmd_run)


def _check_run_counts(args) -> None:
    """``--max-workers 0`` or ``--retries -1`` cannot mean anything: refuse before any work."""
    from odibi_core.core.execution_ids import run_id_of

    problems = [
        f"command line: {flag} must be {minimum} or more, got {value}"
        for flag, value, minimum in (
            ("--max-workers", args.max_workers, 1),
            ("--retries", args.retries, 0),
            ("--attempt", args.attempt, 1),
        )
        if value is not None and value < minimum
    ]
    resumed = getattr(args, "resume", None)
    if resumed and args.run_id and run_id_of(resumed) != args.run_id:
        problems.append(
            f"command line: --resume {resumed} is another run than --run-id {args.run_id}; "
            "give one of them"
        )
    if problems:
        raise PipelineConfigError(problems)


def _fetch_delta_jars_first(orchestrator, *, uses_state: bool, console) -> None:
    """Resolve the Delta jars of a local session before the live view starts.

    A first start resolves them through Ivy: one line says so, and Ivy's output goes to a
    log file instead of the middle of the progress display.
    """
    from importlib.util import find_spec

    from odibi_core.engine.session import session_source

    if not (orchestrator.plan.spark_steps or uses_state) or find_spec("pyspark") is None:
        return
    if session_source(orchestrator.spark) != "local":
        return
    from odibi_core.engine.delta_jars import ensure_delta_jars

    ensure_delta_jars(on_fetch=lambda line: console.print(line, highlight=False))


def _cmd_run(args) -> int:
    from rich.console import Console

    from odibi_core.cli.progress import LiveProgress, PlainProgress
    from odibi_core.core.config import load_pipeline
    from odibi_core.events.bus import EventBus
    from odibi_core.orchestrator import Orchestrator, RunContext

    _check_run_counts(args)
    config = load_pipeline(args.pipeline, engine=args.engine)
    state = None
    if not args.no_state:
        state = args.state_schema or config.state or DEFAULT_STATE_SCHEMA
    bus = EventBus(hook_timeout=config.settings.hook_timeout)
    console = Console(stderr=True)
    live = console.is_terminal and not args.quiet
    (LiveProgress(console) if live else PlainProgress(sys.stderr)).attach(bus)
    orchestrator = Orchestrator(
        pipeline=config,
        engine_type=args.engine,
        event_bus=bus,
        max_workers=args.max_workers,
        max_retries=args.retries,
        fail_fast=args.fail_fast,
        params=_parse_params(args.param),
        select=args.select,
        state_schema=state,
        enable_checkpoints=bool(args.checkpoints or args.run_id or args.resume),
        enable_cache=args.cache,
        cache_by_content=args.cache_by_content,
        **({"resume_from": args.resume} if args.resume else {}),
        context=RunContext(
            run_id=args.run_id,
            attempt=args.attempt or 1,
            job_id=args.job_id,
            task_key=args.task_key,
        ),
    )
    _fetch_delta_jars_first(
        orchestrator, uses_state=state is not None or args.cache, console=console
    )
    result = orchestrator.execute()
    tracker = result.tracker
    written_ok = _write_outputs(tracker, args.lineage, args.report)
    print(tracker.get_summary())
    if result.success:
        print(
            f"run {result.run_id}: {result.success_count}/{len(result.node_states)} steps succeeded in {result.duration_ms} ms"
        )
        if result.state_error:
            print(f"error: {result.state_error}", file=sys.stderr)
            return EXIT_FAILED
        return EXIT_OK if written_ok else EXIT_FAILED
    if result.state_error:
        print(f"error: {result.state_error}", file=sys.stderr)
    print(f"run {result.run_id} failed: {result.error}", file=sys.stderr)
    command = rerun_command(args, result.run_id, orchestrator.config.tracker.secret_params)
    # A resume restores checkpointed steps and runs the rest; appends are not repeated.
    print(f"rerun what failed with:\n  {command}", file=sys.stderr)
    return EXIT_FAILED


def _write_outputs(tracker, lineage_path: str | None, report_path: str | None) -> bool:
    """Write the lineage JSON and the report; a bad path is one message, not a traceback."""
    ok = True
    for path, kind in ((lineage_path, "lineage"), (report_path, "report")):
        if not path:
            continue
        try:
            if kind == "lineage":
                tracker.export_lineage(path)
            else:
                from odibi_core.report import write_report

                write_report(tracker.to_lineage(), path)
        except (OSError, OdibiError) as exc:
            print(f"error: could not write the {kind} to {path}: {exc}", file=sys.stderr)
            ok = False
        else:
            print(f"{kind} written to {path}")
    return ok


def rerun_command(args, run_id: str, secret_params: Sequence[str] = ()) -> str:
    """The command that resumes run ``run_id`` with the same options.

    Secret-looking parameters are shown as ``***``: the command is printed, so pass them
    again yourself.
    """
    import shlex

    from odibi_core.core.secrets import MASK, looks_secret

    parts = ["odibi", "run", args.pipeline, "--resume", run_id]
    if getattr(args, "select", None):
        parts += ["--select", args.select]
    for flag, value in (
        ("--engine", args.engine),
        ("--max-workers", args.max_workers),
        ("--retries", args.retries),
        ("--state-schema", args.state_schema),
    ):
        if value is not None:
            parts += [flag, str(value)]
    if args.no_state:
        parts.append("--no-state")
    for pair in args.param:
        key, sep, _ = pair.partition("=")
        masked = sep and looks_secret(key.strip(), secret_params)
        parts += ["--param", f"{key}={MASK}" if masked else pair]
    return shlex.join(parts)


def _register_lineage(commands) -> None:
    lineage = commands.add_parser("lineage", help="print a run's lineage from the audit table")
    lineage.add_argument("run_id", nargs="?", help="run id (default: the latest run)")
    lineage.add_argument(
        "--state-schema", default=DEFAULT_STATE_SCHEMA, help="state location [catalog.]schema"
    )
    lineage.add_argument("--execution", help="execution id (default: the run's latest)")
    lineage.add_argument("--json", action="store_true", help="print the lineage JSON")
    lineage.set_defaults(handler=_cmd_lineage)


def _lineage_from_state(
    state_schema: str, run_id: str | None, execution: str | None = None
) -> dict:
    from odibi_core.engine.session import get_spark
    from odibi_core.orchestrator import state_location_of
    from odibi_core.state.audit import AuditStore

    store = AuditStore(state_location_of(state_schema), spark_provider=get_spark)
    run_id = run_id or store.latest_run_id()
    if run_id is None:
        raise OdibiError(
            f"no runs recorded in state schema '{state_schema}'; run a pipeline with `odibi run` first"
        )
    return store.to_lineage(run_id, execution)


def _cmd_lineage(args) -> int:
    import json

    lineage = _lineage_from_state(args.state_schema, args.run_id, args.execution)
    if args.json:
        print(json.dumps(lineage, indent=2, default=str))
        return EXIT_OK
    print(format_lineage(lineage))
    return EXIT_OK


def format_lineage(lineage: dict) -> str:
    lines = [
        f"pipeline {lineage['pipeline_name']}  run {lineage.get('run_id')}  execution {lineage.get('execution_id')}",
        f"status {lineage.get('status')}  {lineage.get('start_time')} -> {lineage.get('end_time')}  ({lineage.get('total_duration_ms')} ms)",
    ]
    lines.append(
        step_table(lineage["steps"], LINEAGE_COLUMNS, header=False, indent="  ", notes=_step_notes)
    )
    return "\n".join(lines)


def _step_notes(step: dict) -> list[str]:
    """Under a step's row: its error, unless it succeeded, and its Delta write."""
    failed = step.get("error_message") and step["status"] != "SUCCESS"
    error = [step["error_message"]] if failed else []
    return error + _write_lines(step)


def _write_lines(step: dict) -> list[str]:
    """A Delta write's versions, and how to undo it."""
    write = step.get("write")
    if not write:
        return []
    table, mode = write.get("table"), write.get("mode")
    if write.get("already_committed"):
        reason = (step.get("after_snapshot") or {}).get("count_reason") or "already committed"
        return [f"{table}: {mode} {reason.split(';')[0]}; nothing was written again"]
    if write.get("created"):
        return [
            f"{table}: {mode} wrote version {write.get('version_after')}, "
            "created by this run (drop it to undo)"
        ]
    lines = [
        f"{table}: {mode} version {write.get('version_before')} -> {write.get('version_after')}"
    ]
    if write.get("restore"):
        lines.append(f"  undo with: {write['restore']}")
    return lines


def _register_report(commands) -> None:
    report = commands.add_parser("report", help="write a self-contained HTML report of a run")
    report.add_argument(
        "source", help="a run id (read from the audit table) or a lineage .json file"
    )
    report.add_argument("-o", "--output", default="report.html", help="output HTML file")
    report.add_argument(
        "--state-schema", default=DEFAULT_STATE_SCHEMA, help="state location [catalog.]schema"
    )
    report.set_defaults(handler=_cmd_report)


def _cmd_report(args) -> int:
    from pathlib import Path

    from odibi_core.report import load_lineage, write_report

    if args.source.endswith(".json") or Path(args.source).is_file():
        lineage = load_lineage(args.source)
    else:
        lineage = _lineage_from_state(args.state_schema, args.source)
    path = write_report(lineage, args.output)
    print(f"report of run {lineage.get('run_id')} written to {path}")
    return EXIT_OK


from odibi_core.cli.bundle_commands import add_bundle_parser  # noqa: E402 - registered below
from odibi_core.cli.cache_commands import add_cache_parser  # noqa: E402 - registered below
from odibi_core.cli.init_command import add_init_parser  # noqa: E402 - registered below
from odibi_core.cli.job_run import add_job_run_parser  # noqa: E402 - registered below
from odibi_core.cli.jobs_commands import add_jobs_parser  # noqa: E402 - registered below
from odibi_core.cli.quality_command import add_quality_parser  # noqa: E402 - registered below
from odibi_core.cli.state_commands import add_state_parser  # noqa: E402 - registered below
from odibi_core.cli.task import add_task_parser  # noqa: E402 - registered below

_EXTRA_COMMANDS: list = [
    _register_run,
    _register_lineage,
    _register_report,
    add_quality_parser,
    add_state_parser,
    add_cache_parser,
    add_jobs_parser,
    add_bundle_parser,
    add_task_parser,
    add_job_run_parser,
    add_init_parser,
]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
