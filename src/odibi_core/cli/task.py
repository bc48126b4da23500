"""``odibi task`` (the wheel entry point ``odibi-task``): what every task of a job calls.

    odibi-task --pipeline P --task KEY --run-id {{job.run_id}} --repair-count {{job.repair_count}}
               --job-id {{job.id}} --state-schema catalog.schema [--param k=v ...]

A task runs its steps (``odibi_core.bundle.tasks``) as a plan over that subset: the data
keys it reads from other tasks come from their handoff tables, the keys other tasks read
are written to handoff tables, and its steps' audit rows are appended under the job run's
execution. The job's last task (``odibi_record_run``) writes that execution's run row. The
run id is the job run id, so a repair resumes through the checkpoints. Exit 0 on success,
1 when a step failed, 2 on a config error.
"""

from __future__ import annotations

import sys

from odibi_core.core.errors import PipelineConfigError

# The token every task of one job execution writes its audit rows under: the execution id
# (run id and repair count) already tells executions apart.
JOB_EXECUTION_TOKEN = "job"


def add_task_parser(commands) -> None:
    task = commands.add_parser(
        "task", help="run one task of a pipeline's job (what the job's tasks call)"
    )
    task.add_argument("--pipeline", required=True, help="the pipeline file")
    task.add_argument("--task", required=True, help="the task key ({{task.name}})")
    task.add_argument("--run-id", required=True, help="the job run id ({{job.run_id}})")
    task.add_argument(
        "--repair-count",
        type=int,
        default=0,
        help="repairs of the job run so far ({{job.repair_count}}); the execution is RUN_ID.(N+1)",
    )
    task.add_argument("--job-id", help="the job id ({{job.id}}), for the audit")
    task.add_argument("--state-schema", help="state location [catalog.]schema")
    task.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="a runtime parameter"
    )
    task.set_defaults(handler=_cmd_task)


def _cmd_task(args) -> int:
    from odibi_core.bundle.tasks import RECORD_RUN_TASK, plan_tasks, task_named
    from odibi_core.cli.arguments import EXIT_FAILED, EXIT_OK, parse_params
    from odibi_core.core.config import load_pipeline
    from odibi_core.orchestrator import RunContext

    if args.repair_count < 0:
        raise PipelineConfigError(f"--repair-count must be 0 or more, got {args.repair_count}")
    config = load_pipeline(args.pipeline)
    tasks = plan_tasks(config)
    context = RunContext(
        run_id=args.run_id,
        attempt=args.repair_count + 1,
        job_id=args.job_id,
        task_key=args.task,
        execution_token=JOB_EXECUTION_TOKEN,
    )
    location = _state_location(args.state_schema, config)
    if args.task == RECORD_RUN_TASK:
        return EXIT_OK if _record_run(config, context, location) else EXIT_FAILED
    task = task_named(tasks, args.task)
    result = _run_task(config, task, context, location, parse_params(args.param))
    print(
        f"task {task.key} of run {result.execution_id}: "
        f"{result.success_count}/{len(result.node_states)} steps succeeded"
    )
    if not result.success:
        print(f"task {task.key} failed: {result.error}", file=sys.stderr)
        return EXIT_FAILED
    if result.state_error:
        print(f"error: {result.state_error}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _state_location(given: str | None, config):
    from odibi_core.orchestrator import state_location_of
    from odibi_core.state.location import default_local_location

    return state_location_of(given) or config.state or default_local_location()


def _run_task(config, task, context, location, params):
    from odibi_core.cli.progress import PlainProgress
    from odibi_core.engine.session import SessionHandle
    from odibi_core.engine.spark_engine import SparkEngineContext
    from odibi_core.events.bus import EventBus
    from odibi_core.execution.handoffs import HandoffStore
    from odibi_core.orchestrator import Orchestrator
    from odibi_core.state.checkpoints import CheckpointManager

    session = SessionHandle(None, warehouse=context.warehouse)
    engine: list[SparkEngineContext] = []

    def spark_engine() -> SparkEngineContext:
        if not engine:
            engine.append(SparkEngineContext(session.get, warehouse=context.warehouse))
        return engine[0]

    checkpoints = CheckpointManager(
        location,
        pipeline=config.name,
        run_id=context.run_id,
        spark_provider=session.get,
        warehouse=context.warehouse,
    )
    store = HandoffStore(checkpoints, task.reads, spark_engine=spark_engine, task=task.key)
    bus = EventBus(hook_timeout=config.settings.hook_timeout)
    PlainProgress(sys.stderr).attach(bus)
    orchestrator = Orchestrator(
        pipeline=config,
        event_bus=bus,
        params=params,
        select=task.selection,
        state_schema=location,
        run_id=context.run_id,
        enable_checkpoints=True,
        checkpoint_keys=kept_keys(config, task),
        record_run=False,
        transient_retries_only=True,  # the job's task retries take the rest
        context=context,
        store=store,
    )
    return orchestrator.execute()


def kept_keys(config, task) -> frozenset[str]:
    """What a task keeps in Delta: its handoffs, the outputs of its steps marked
    ``checkpoint: true``, and what its steps ahead of an append in the task produce; with
    ``settings.checkpoint: all``, every output a later step reads, so a retried task
    resumes from inside itself too."""
    read_later = frozenset(key for step in config.steps for key in step.input_keys)
    if config.settings.checkpoint == "all":
        return read_later
    marked = {key for step in config.steps if step.checkpoint for key in step.output_keys}
    kept = marked | _ahead_of_appends(config, task)
    return frozenset(task.handoffs) | (kept & read_later)


def _ahead_of_appends(config, task) -> set[str]:
    """The outputs of the task's steps upstream of an append in the same task.

    A rerun of the task (a retry or a repair) restores them, and with them the append it
    committed before; without them the append would have to run again, which Delta would
    skip as already committed, so a resume refuses it.
    """
    from odibi_core.core.dag import DAGBuilder

    dag = DAGBuilder(config.steps).build()
    members = set(task.steps)
    appends = [n for n in task.steps if str(dag.step(n).params.get("mode", "")).lower() == "append"]
    ahead = {up for name in appends for up in dag.upstream_of(name) if up in members}
    return {key for name in ahead for key in dag.step(name).output_keys}


def _record_run(config, context, location) -> bool:
    """Write the run row of this job execution; whether the run succeeded."""
    from odibi_core.engine.session import SessionHandle
    from odibi_core.state.audit import AuditStore
    from odibi_core.state.job_runs import record_job_execution

    session = SessionHandle(None, warehouse=context.warehouse)
    audit = AuditStore(location, spark_provider=session.get, warehouse=context.warehouse)
    row = record_job_execution(
        audit,
        pipeline=config.name,
        steps=[(step.name, step.layer) for step in config.steps],
        run_id=context.run_id,
        attempt=context.attempt,
        execution_token=JOB_EXECUTION_TOKEN,
        databricks={
            "job_id": context.job_id,
            "run_id": context.run_id,
            "task_key": context.task_key,
        },
    )
    print(
        f"run {row['execution_id']}: {row['status']}, {row['success_count']}/{row['total_steps']} "
        f"steps succeeded, {row['skipped_count']} not run"
    )
    if row["status"] != "SUCCESS":
        print(f"run {row['execution_id']} failed: {row['error']}", file=sys.stderr)
    return row["status"] == "SUCCESS"
