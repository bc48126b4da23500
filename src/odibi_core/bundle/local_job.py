"""A pipeline's job, run locally as Databricks runs it: each task in a process of its own.

Tasks start in ``depends_on`` order, those whose upstream tasks all succeeded in parallel,
each through the wheel's entry point (``odibi-task``) with the argv the generated job
gives it, the dynamic values filled in as Databricks would. They share the run id and a
local Delta warehouse. A task whose upstream failed does not run (UPSTREAM_FAILED); the
last task records the run whatever happened. The task states are kept in a file next to
the warehouse, so ``repair`` reruns only the tasks that did not succeed, with
``{{job.repair_count}}`` one higher.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from odibi_core.bundle.tasks import RECORD_RUN_TASK, TaskSpec, plan_tasks
from odibi_core.core.config import PipelineConfig
from odibi_core.core.errors import OdibiError
from odibi_core.core.waiting import first_completed

SUCCESS, FAILED, UPSTREAM_FAILED = "SUCCESS", "FAILED", "UPSTREAM_FAILED"


@dataclass(frozen=True)
class TaskOutcome:
    key: str
    state: str
    seconds: float
    log: Path | None = None


@dataclass
class LocalJobRun:
    """One job run of ``config`` under ``run_id``; ``states`` holds each task's last state."""

    config: PipelineConfig
    run_id: str
    jobs_dir: Path  # where task logs and the run's task states are kept
    state_schema: str
    params: Mapping[str, str] = field(default_factory=dict)
    max_parallel: int = 4
    environment: Mapping[str, str] = field(default_factory=dict)
    repair_count: int = 0
    states: dict[str, str] = field(default_factory=dict)

    @cached_property
    def tasks(self) -> tuple[TaskSpec, ...]:
        return plan_tasks(self.config)

    @cached_property
    def _job(self) -> Any:
        """The generated job (built once: every task's argv comes from it)."""
        from odibi_core.bundle.jobs import job_for

        return job_for(self.config, pipeline_path=self._source.name)

    @property
    def _source(self) -> Path:
        return Path(self.config.source or "pipeline.yaml").resolve()

    def run(self, on_done: Callable[[TaskOutcome], None] = lambda outcome: None) -> bool:
        """Run every task that has not succeeded yet (all of them the first time), then
        the record task; whether every task succeeded."""
        pending = [t for t in self.tasks if self.states.get(t.key) != SUCCESS]
        depends = {t.key: set(t.depends_on) for t in pending}
        self._run_tasks(depends, on_done)
        record = self._run_one(RECORD_RUN_TASK)
        self.states[RECORD_RUN_TASK] = record.state
        on_done(record)
        self._save()
        return all(state == SUCCESS for state in self.states.values())

    def _run_tasks(
        self, depends: dict[str, set[str]], on_done: Callable[[TaskOutcome], None]
    ) -> None:
        running: dict[Future, str] = {}
        with ThreadPoolExecutor(max_workers=self.max_parallel) as pool:
            while depends or running:
                for key in self._startable(depends, running):
                    running[pool.submit(self._run_one, key)] = key
                    del depends[key]
                if not running:
                    break
                for future in first_completed(running):
                    del running[future]
                    outcome = future.result()
                    self.states[outcome.key] = outcome.state
                    on_done(outcome)
                self._skip_downstream_of_failures(depends, on_done)

    def _startable(self, depends: Mapping[str, set[str]], running: Mapping) -> list[str]:
        room = self.max_parallel - len(running)
        ready = [k for k, ups in depends.items() if all(self.states.get(u) == SUCCESS for u in ups)]
        return ready[: max(room, 0)]

    def _skip_downstream_of_failures(
        self, depends: dict[str, set[str]], on_done: Callable[[TaskOutcome], None]
    ) -> None:
        blocked = True
        while blocked:
            blocked = False
            for key, ups in list(depends.items()):
                if any(self.states.get(u) in (FAILED, UPSTREAM_FAILED) for u in ups):
                    self.states[key] = UPSTREAM_FAILED
                    del depends[key]
                    on_done(TaskOutcome(key, UPSTREAM_FAILED, 0.0))
                    blocked = True

    def _run_one(self, key: str) -> TaskOutcome:
        log = self.jobs_dir / self.run_id / f"{key}.{self.repair_count}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        with log.open("w") as out:
            code = subprocess.call(
                self.task_argv(key),
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.environment},
            )
        state = SUCCESS if code == 0 else FAILED
        return TaskOutcome(key, state, time.monotonic() - start, log)

    def task_argv(self, key: str) -> list[str]:
        """The entry point's command line for task ``key``: the generated job's task
        parameters, with the values Databricks and the bundle would fill in."""
        from odibi_core.bundle.jobs import STATE_SCHEMA

        (task,) = [t for t in self._job.tasks if t.task_key == key]
        values = {
            STATE_SCHEMA: self.state_schema,  # the bundle's variables: the local location
            "${workspace.file_path}": str(self._source.parent),
            "{{job.run_id}}": self.run_id,
            "{{job.repair_count}}": str(self.repair_count),
            "{{job.id}}": "local",
            **{f"{{{{job.parameters.{k}}}}}": str(v) for k, v in self._job_parameters().items()},
        }
        parameters = [_filled(str(part), values) for part in task.python_wheel_task.parameters]
        return [*entry_point_command(), *parameters]

    def _job_parameters(self) -> dict[str, object]:
        """The job's parameters: the pipeline's defaults, overridden by the run's."""
        defaults = {k: "" if v is None else v for k, v in self.config.parameters.items()}
        return {**defaults, **self.params}

    # ------------------------------------------------------------------ repairs

    @property
    def state_file(self) -> Path:
        return self.jobs_dir / self.run_id / "tasks.json"

    def _save(self) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        partial = self.state_file.with_suffix(".json.partial")
        record = {
            "pipeline": self.config.name,
            "repair_count": self.repair_count,
            "states": self.states,
            "params": dict(self.params),
        }
        partial.write_text(json.dumps(record, indent=2))
        os.replace(partial, self.state_file)

    def load_for_repair(self) -> None:
        """The task states of this run so far; the next execution is one repair later."""
        if not self.state_file.is_file():
            raise OdibiError(
                f"no local job run '{self.run_id}' to repair under {self.jobs_dir} "
                "(run `odibi job-run PIPELINE --simulate` first, with the same --warehouse)"
            )
        record = json.loads(self.state_file.read_text())
        if record["pipeline"] != self.config.name:
            raise OdibiError(
                f"local job run '{self.run_id}' is of pipeline '{record['pipeline']}', "
                f"not '{self.config.name}'"
            )
        self.states = {k: v for k, v in record["states"].items() if k != RECORD_RUN_TASK}
        self.params = {**record.get("params", {}), **self.params}
        self.repair_count = record["repair_count"] + 1


def _filled(text: str, values: Mapping[str, str]) -> str:
    """``text`` with the ``{{...}}`` and ``${...}`` references in ``values`` replaced."""
    for reference, value in values.items():
        text = text.replace(reference, value)
    unfilled = re.search(r"\{\{[^}]*\}\}|\$\{[^}]*\}", text)
    if unfilled:
        raise OdibiError(
            f"the job's task parameter {text!r} refers to {unfilled.group()}, "
            "which a local job run cannot fill in"
        )
    return text


def entry_point_command() -> Sequence[str]:
    """The installed ``odibi-task`` next to this interpreter, as a job cluster runs the
    wheel's console script; ``python -m`` when the script is not installed."""
    script = Path(sys.executable).with_name("odibi-task")
    if script.is_file():
        return [str(script)]
    found = shutil.which("odibi-task")
    if found:
        return [found]
    return [
        sys.executable,
        "-c",
        "import sys; from odibi_core.cli import task_main; sys.exit(task_main())",
    ]
