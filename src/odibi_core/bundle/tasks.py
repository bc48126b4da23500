"""Job tasks from a pipeline's DAG: which steps each task runs, and what crosses tasks.

``plan_tasks(config)`` groups the steps into tasks (``settings.group_by``: one task per
step, per linear chain of steps on one engine, or per layer; a step's ``task:`` name
decides first), lifts the DAG's edges to the tasks' ``depends_on``, and names the data
keys each task hands to another (written to Delta by the producer, read by the consumer).
The generator and the task entry point both use it, so a task runs exactly the steps
its job definition says. Pure: the core only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from odibi_core.core.config import PipelineConfig, TaskCompute
from odibi_core.core.dag import DAG, DAGBuilder
from odibi_core.core.errors import PipelineConfigError, did_you_mean
from odibi_core.core.step import Step

# The last task of every job: it records the run's execution once all tasks are done.
RECORD_RUN_TASK = "odibi_record_run"
_TASK_KEY_LIMIT = 100  # Databricks' limit on a task key


@dataclass(frozen=True)
class TaskSpec:
    """One job task: its steps (in DAG order) and the data keys it exchanges."""

    key: str
    steps: tuple[str, ...]
    depends_on: tuple[str, ...]  # task keys
    reads: tuple[str, ...]  # data keys produced by another task: read from handoff tables
    handoffs: tuple[str, ...]  # data keys another task reads: written to handoff tables
    compute: TaskCompute  # the class of cluster it runs on
    retries: int  # the task's max_retries: the most any of its steps allows

    @property
    def selection(self) -> str:
        """The ``--select`` expression of exactly this task's steps."""
        return ",".join(self.steps)


def plan_tasks(config: PipelineConfig) -> tuple[TaskSpec, ...]:
    """The pipeline's tasks, in an order where every task follows those it depends on."""
    dag = DAGBuilder(config.steps).build()
    task_of = _group(dag, config)
    _raise_on_reserved(task_of)
    depends = _task_edges(dag, task_of)
    order = _task_order(dag, task_of, depends)
    members: dict[str, list[str]] = {key: [] for key in order}
    for name in dag.topological_order():
        members[task_of[name]].append(name)
    handoffs = _handoffs(dag, task_of)
    return tuple(
        TaskSpec(
            key=key,
            steps=tuple(members[key]),
            depends_on=tuple(sorted(depends[key])),
            reads=tuple(sorted(k for (_, to), keys in handoffs.items() if to == key for k in keys)),
            handoffs=tuple(
                sorted({k for (frm, _), keys in handoffs.items() if frm == key for k in keys})
            ),
            compute=_compute(key, [dag.step(n) for n in members[key]], config),
            retries=max(_retries(dag.step(n), config) for n in members[key]),
        )
        for key in order
    )


def task_named(tasks: Iterable[TaskSpec], key: str) -> TaskSpec:
    """The task ``key``; a clear error listing the tasks when there is none."""
    by_key = {task.key: task for task in tasks}
    if key not in by_key:
        raise PipelineConfigError(
            f"the job has no task '{key}'{did_you_mean(key, by_key)}; "
            f"its tasks are: {', '.join(by_key)}"
        )
    return by_key[key]


def task_key(text: str) -> str:
    """A valid Databricks task key: letters, digits, ``_`` and ``-``, at most 100."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)[:_TASK_KEY_LIMIT] or "task"


def _group(dag: DAG, config: PipelineConfig) -> dict[str, str]:
    """Step name -> task key."""
    rule = config.settings.group_by
    if rule == "chain":
        grouped = _chains(dag, config)
    elif rule == "layer":
        grouped = {name: dag.step(name).layer for name in dag.topological_order()}
    else:
        grouped = {name: name for name in dag.topological_order()}
    return {
        name: task_key(dag.step(name).task or grouped[name]) for name in dag.topological_order()
    }


def _chains(dag: DAG, config: PipelineConfig) -> dict[str, str]:
    """Maximal linear chains on one engine: each link the only reader and only producer."""
    chain_of: dict[str, str] = {}
    for name in dag.topological_order():
        ups = dag.dependencies(name)
        if len(ups) == 1:
            (up,) = ups
            linked = (
                len(dag.dependents(up)) == 1
                and _engine(dag.step(up), config) == _engine(dag.step(name), config)
                and dag.step(up).task is None
                and dag.step(name).task is None
            )
            if linked:
                chain_of[name] = chain_of[up]
                continue
        chain_of[name] = name
    return chain_of


def _engine(step: Step, config: PipelineConfig) -> str:
    return step.engine or config.engine


def _raise_on_reserved(task_of: Mapping[str, str]) -> None:
    clashing = sorted(name for name, key in task_of.items() if key == RECORD_RUN_TASK)
    if clashing:
        raise PipelineConfigError(
            f"step(s) {', '.join(clashing)}: task '{RECORD_RUN_TASK}' is the job's own last "
            "task (it records the run); name the step or its task otherwise"
        )


def _task_edges(dag: DAG, task_of: Mapping[str, str]) -> dict[str, set[str]]:
    depends: dict[str, set[str]] = {key: set() for key in task_of.values()}
    for producer, consumer, _ in dag.edges():
        if task_of[producer] != task_of[consumer]:
            depends[task_of[consumer]].add(task_of[producer])
    return depends


def _task_order(dag: DAG, task_of: Mapping[str, str], depends: Mapping[str, set[str]]) -> list[str]:
    """Tasks in dependency order (first appearance in the DAG breaks ties); a grouping
    whose tasks depend on each other in a circle is an error naming the steps."""
    first_seen = list(dict.fromkeys(task_of[n] for n in dag.topological_order()))
    order: list[str] = []
    waiting = list(first_seen)
    while waiting:
        ready = [key for key in waiting if depends[key] <= set(order)]
        if not ready:
            raise PipelineConfigError(_cycle_message(dag, task_of, set(waiting)))
        order.append(ready[0])
        waiting.remove(ready[0])
    return order


def _cycle_message(dag: DAG, task_of: Mapping[str, str], stuck: set[str]) -> str:
    crossing = [
        f"{producer} (task {task_of[producer]}) -> {consumer} (task {task_of[consumer]})"
        for producer, consumer, _ in dag.edges()
        if task_of[producer] in stuck
        and task_of[consumer] in stuck
        and task_of[producer] != task_of[consumer]
    ]
    return (
        f"the job's tasks would depend on each other in a circle ({', '.join(sorted(stuck))}): "
        f"{'; '.join(crossing)}. Give these steps task names that follow the DAG, "
        "or use settings.group_by: step"
    )


def _handoffs(dag: DAG, task_of: Mapping[str, str]) -> dict[tuple[str, str], set[str]]:
    """(producing task, consuming task) -> data keys crossing between them."""
    crossing: dict[tuple[str, str], set[str]] = {}
    for producer, consumer, keys in dag.edges():
        pair = (task_of[producer], task_of[consumer])
        if pair[0] != pair[1]:
            crossing.setdefault(pair, set()).update(keys)
    return crossing


def _compute(key: str, steps: list[Step], config: PipelineConfig) -> TaskCompute:
    """Decided at deploy time, from what is known then: declared engines and settings.

    ``settings.task_compute`` names a task or a step; otherwise a task whose steps all
    run on pandas is pandas-class, and any ``spark`` or ``auto`` step makes it Spark-class.
    """
    chosen = config.settings.task_compute
    if key in chosen:
        return chosen[key]
    classes = [chosen.get(step.name) or _declared_class(step, config) for step in steps]
    return "spark" if "spark" in classes else "pandas"


def _declared_class(step: Step, config: PipelineConfig) -> TaskCompute:
    return "pandas" if _engine(step, config) == "pandas" else "spark"


def _retries(step: Step, config: PipelineConfig) -> int:
    return step.retries if step.retries is not None else config.settings.max_retries
