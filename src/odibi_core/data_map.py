"""The shared data map: data key -> frame, owned by one object and guarded by one lock."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from typing import Any

from odibi_core.dag import DAG
from odibi_core.errors import OdibiError


class DataMap:
    """Thread-safe store of the frames a run produces.

    With ``release=True`` a data key is dropped once every step that reads it has finished
    and no step outside the run needs it, so memory follows the working set. Keys that no
    step reads are the pipeline's outputs and are always kept.
    """

    def __init__(self, dag: DAG, *, release: bool = True):
        self._lock = threading.Lock()
        self._frames: dict[str, Any] = {}
        self._release = release
        self._readers: Counter[str] = Counter(
            key for step in dag.steps for key in set(step.inputs.values())
        )
        self.released: list[str] = []

    def put(self, key: str, frame: Any) -> None:
        with self._lock:
            self._frames[key] = frame

    def get(self, key: str) -> Any:
        with self._lock:
            try:
                return self._frames[key]
            except KeyError:
                raise OdibiError(
                    f"data key '{key}' is not available: the step producing it has not run in this execution"
                ) from None

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._frames

    def reader_finished(self, keys: Iterable[str]) -> None:
        """A step that reads ``keys`` has ended (in any state); release keys nobody needs now."""
        with self._lock:
            for key in set(keys):
                self._readers[key] -= 1
                if self._release and self._readers[key] <= 0 and key in self._frames:
                    del self._frames[key]
                    self.released.append(key)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._frames)
