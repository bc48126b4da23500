"""The data store of a job task: what earlier tasks of the run handed off, read from Delta.

A bundle task is a plan over a subset of the pipeline. The data keys its steps read from
other tasks (its ``reads``) were written by those tasks to handoff tables, the checkpoint
tables of the run, and are read back here when a step first asks for them. Everything the
task's own steps produce stays in memory.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from typing import Any

from odibi_core.core.errors import StateError
from odibi_core.execution.store import MemoryStore
from odibi_core.state.checkpoints import Checkpoint, CheckpointManager


class HandoffStore:
    """Frames by data key: ``handed_off`` keys from the run's handoff tables, the rest in
    memory. ``spark_engine`` is called once, when the first handoff is read."""

    def __init__(
        self,
        checkpoints: CheckpointManager,
        handed_off: Collection[str],
        *,
        spark_engine: Callable[[], Any],
        task: str,
    ):
        self.checkpoints = checkpoints
        self.handed_off = frozenset(handed_off)
        self.task = task
        self._spark_engine = spark_engine
        self._memory = MemoryStore()
        self._lock = threading.Lock()
        self._recorded: dict[str, Checkpoint] | None = None

    @property
    def released(self) -> list[str]:
        return self._memory.released

    def get(self, key: str) -> Any:
        with self._lock:
            if not self._memory.contains(key) and key in self.handed_off:
                self._memory.put(key, self._read(key))
        return self._memory.get(key)

    def put(self, key: str, frame: Any) -> None:
        self._memory.put(key, frame)

    def contains(self, key: str) -> bool:
        return key in self.handed_off or self._memory.contains(key)

    def __contains__(self, key: str) -> bool:
        return self.contains(key)

    def release(self, key: str) -> None:
        self._memory.release(key)

    def location(self, key: str) -> str:
        if key in self.handed_off:
            return str(self.checkpoints.data_table(key))
        return "memory"

    def snapshot(self) -> dict[str, Any]:
        return self._memory.snapshot()

    def _read(self, key: str) -> Any:
        checkpoint = self._handoffs().get(key)
        if checkpoint is None:
            raise StateError(
                f"task '{self.task}' reads data key '{key}', but no task of run "
                f"{self.checkpoints.run_id} has handed it off (no row in "
                f"{self.checkpoints.tables.checkpoints}); run the task that produces it "
                "first: a job runs tasks in depends_on order, and a repair reruns failed tasks"
            )
        return self.checkpoints.restore(checkpoint, engine=self._spark_engine(), step=self.task)

    def _handoffs(self) -> dict[str, Checkpoint]:
        """The run's latest checkpoint of each data key, read once."""
        if self._recorded is None:
            self._recorded = {
                checkpoint.data_key: checkpoint
                for checkpoints in self.checkpoints.earlier().values()
                for checkpoint in checkpoints
                if checkpoint.data_key is not None
            }
        return self._recorded
