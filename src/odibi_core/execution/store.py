"""Data stores: where a run's frames live, addressed by data key.

A step never knows where its inputs come from or where its outputs go: the run's store
does. ``MemoryStore`` keeps frames in this process (a local run); a store backed by Delta
tables holds what must outlive the process (checkpoints, handoffs between bundle tasks).
A run is given its store from outside, so a selected subset of a pipeline reads its
external inputs from whatever store they were put into.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

from odibi_core.core.errors import OdibiError


@runtime_checkable
class DataStore(Protocol):
    """Frames by data key. Implementations are shared by parallel steps: lock inside."""

    def get(self, key: str) -> Any:
        """The frame of ``key``; raise ``OdibiError`` naming the key when it is absent."""

    def put(self, key: str, frame: Any) -> None: ...

    def contains(self, key: str) -> bool: ...

    def release(self, key: str) -> None:
        """No step of this run reads ``key`` any more: free what holding it costs."""

    def location(self, key: str) -> str:
        """Where ``key`` lives, for messages and lineage (``memory``, a table name...)."""

    def snapshot(self) -> dict[str, Any]:
        """The frames held now, by key (the run's result exposes them as ``data_map``)."""


class MemoryStore:
    """Frames held in this process; ``release`` drops them so memory follows the work."""

    def __init__(self, frames: Mapping[str, Any] | None = None):
        self._lock = threading.Lock()
        self._frames: dict[str, Any] = dict(frames or {})
        self.released: list[str] = []

    def get(self, key: str) -> Any:
        with self._lock:
            try:
                return self._frames[key]
            except KeyError:
                raise OdibiError(
                    f"data key '{key}' is not available: the step producing it has not run "
                    "in this execution, and it was not put into the run's data store"
                ) from None

    def put(self, key: str, frame: Any) -> None:
        with self._lock:
            self._frames[key] = frame

    def contains(self, key: str) -> bool:
        with self._lock:
            return key in self._frames

    def __contains__(self, key: str) -> bool:
        return self.contains(key)

    def release(self, key: str) -> None:
        with self._lock:
            if self._frames.pop(key, None) is not None:
                self.released.append(key)

    def location(self, key: str) -> str:
        return "memory"

    def snapshot(self) -> dict[str, Any]:
        """Every frame held now (the run's result exposes them as ``data_map``)."""
        with self._lock:
            return dict(self._frames)


class ReaderCount:
    """Counts a run's readers of each key, to tell the store when a key is no longer needed.

    Keys no step of the run reads are the run's outputs and are never released; nor is
    anything when ``enabled`` is false (``settings.release_data: false``).
    """

    def __init__(self, input_keys: Iterable[Iterable[str]], *, enabled: bool = True):
        self._lock = threading.Lock()
        self._enabled = enabled
        self._readers: dict[str, int] = {}
        for keys in input_keys:
            for key in set(keys):
                self._readers[key] = self._readers.get(key, 0) + 1

    def finished(self, keys: Iterable[str]) -> list[str]:
        """A reader of ``keys`` has ended (in any state); the keys nobody needs any more."""
        unneeded = []
        with self._lock:
            for key in set(keys):
                self._readers[key] = self._readers.get(key, 0) - 1
                if self._enabled and self._readers[key] <= 0:
                    unneeded.append(key)
        return sorted(unneeded)
