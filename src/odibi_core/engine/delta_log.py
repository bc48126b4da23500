"""A Delta table's commits read straight from its log files, when this process can see them.

A write is measured by its own commit (``delta_write``). ``DESCRIBE HISTORY`` finds it on any
table, but it is a Spark job, and over Spark Connect a round trip as well; a local table's log
is a folder of small JSON files this process can read itself. Each commit file holds one
``commitInfo`` action with the operation, its metrics and the writer's ``userMetadata``.

The log is used only to find a commit the caller can recognise (its own tag): a folder that
merely looks like the table (a remote server's path that happens to exist here too) never
holds that tag, and the caller then asks Spark.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

_COMMIT_FILE = re.compile(r"^(\d{20})\.json$")
# A classic single-file checkpoint; multi-part and V2 (UUID-named) checkpoints are not read.
_CHECKPOINT_FILE = re.compile(r"^(\d{20})\.checkpoint\.parquet$")


class LocalDeltaLog:
    """The ``_delta_log`` folder of a table at a local path."""

    def __init__(self, folder: Path):
        self.folder = folder

    @classmethod
    def of(cls, path: str | None) -> LocalDeltaLog | None:
        """The log of the table at ``path``, or None when the path is not a local folder
        holding one (a cloud URI, a catalog name, a table not written yet)."""
        local = _local_path(path)
        if local is None:
            return None
        folder = local / "_delta_log"
        return cls(folder) if folder.is_dir() else None

    def versions(self) -> list[int]:
        """The versions whose commit files are in the log, newest first."""
        found = (_COMMIT_FILE.match(name) for name in _names(self.folder))
        return sorted((int(match.group(1)) for match in found if match), reverse=True)

    def checkpoints(self) -> list[int]:
        """The versions with a single-file checkpoint in the log, newest first."""
        found = (_CHECKPOINT_FILE.match(name) for name in _names(self.folder))
        return sorted((int(match.group(1)) for match in found if match), reverse=True)

    def checkpoint_file(self, version: int) -> Path:
        return self.folder / f"{version:020d}.checkpoint.parquet"

    def commits(self) -> Iterator[dict[str, Any]]:
        """Each commit, newest first: ``version``, ``operation``, ``operationMetrics`` and
        ``userMetadata``, as ``DESCRIBE HISTORY`` gives them."""
        for version in self.versions():
            info = self._commit_info(version)
            if info is not None:
                yield {
                    "version": version,
                    "operation": info.get("operation"),
                    "operationMetrics": info.get("operationMetrics") or {},
                    "userMetadata": info.get("userMetadata"),
                }

    def find(
        self, tagged: Callable[[str | None], bool], operations: Collection[str]
    ) -> dict[str, Any] | None:
        """The newest commit of one of ``operations`` whose ``userMetadata`` is ``tagged``."""
        for commit in self.commits():
            if commit["operation"] in operations and tagged(commit["userMetadata"]):
                return commit
        return None

    def actions(self, version: int) -> list[dict[str, Any]]:
        """The actions of one commit file, in the order written (one JSON object a line)."""
        with (self.folder / f"{version:020d}.json").open(encoding="utf-8") as lines:
            return [json.loads(line) for line in lines if line.strip()]

    def _commit_info(self, version: int) -> dict[str, Any] | None:
        try:
            actions = self.actions(version)
        except FileNotFoundError:  # cleaned up after a checkpoint while being listed
            return None
        # Delta writes commitInfo first; looking through all of them is for safety.
        return next((a["commitInfo"] for a in actions if "commitInfo" in a), None)


def _local_path(path: str | None) -> Path | None:
    if not path:
        return None
    parsed = urlparse(path)
    if parsed.scheme == "file":
        return Path(parsed.path)
    if parsed.scheme and len(parsed.scheme) > 1:  # s3://, abfss://, dbfs:/ (not C:\)
        return None
    return Path(path)


def _names(folder: Path) -> list[str]:
    try:
        return [entry.name for entry in folder.iterdir()]
    except FileNotFoundError:
        return []
