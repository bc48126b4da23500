"""Snapshots of data as the tracker sees it: schema, row count and a small sample.

Pure: values and their rules only. Taking a snapshot from a frame is the engine's job.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

REDACTED = "***"
_QUOTED = re.compile(r"'([^'\n]*)'")


@dataclass
class Snapshot:
    """Schema as ``["col: arrow_type"]``, a row count and up to n JSON-safe sample rows.

    ``row_count`` is None while a Spark count is deferred to the action that runs anyway;
    ``count_source`` says where the count came from (``exact``, ``deferred``,
    ``observed``, ``commit_metrics``, ``empty``, ``unknown``).
    """

    schema: list[str] = field(default_factory=list)
    row_count: int | None = 0
    sample: list[dict[str, Any]] = field(default_factory=list)
    count_source: str = "empty"
    sample_source: str = "none"
    count_reason: str | None = None

    @classmethod
    def empty(cls) -> Snapshot:
        return cls()

    @property
    def columns(self) -> dict[str, str]:
        return dict(_split_schema_entry(entry) for entry in self.schema)

    def to_dict(self) -> dict[str, Any]:
        data = {
            "schema": list(self.schema),
            "row_count": self.row_count,
            "sample": [dict(row) for row in self.sample],
            "count_source": self.count_source,
            "sample_source": self.sample_source,
        }
        if self.count_reason:
            data["count_reason"] = self.count_reason
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Snapshot:
        if not data:
            return cls()
        return cls(
            schema=list(data.get("schema") or []),
            row_count=data.get("row_count"),
            sample=list(data.get("sample") or []),
            count_source=data.get("count_source", "unknown"),
            sample_source=data.get("sample_source", "none"),
            count_reason=data.get("count_reason"),
        )


def _split_schema_entry(entry: str) -> tuple[str, str]:
    name, _, type_name = entry.partition(": ")
    return name, type_name


def schema_diff(before: Snapshot, after: Snapshot) -> dict[str, list]:
    """Columns added, removed, and changed (with old and new types), in column order."""
    old, new = before.columns, after.columns
    return {
        "added": [c for c in new if c not in old],
        "removed": [c for c in old if c not in new],
        "changed": [
            {"column": c, "old_type": old[c], "new_type": new[c]}
            for c in new
            if c in old and old[c] != new[c]
        ],
    }


class Redactor:
    """Replaces sample values of sensitive columns with ``***``.

    A pattern (a name or a glob) matches a column, or a field nested in a struct or a list
    of structs, by its own name or by its dotted path (``contact.email``).
    """

    def __init__(self, patterns: Iterable[str] = ()):
        self.patterns = tuple(p.lower() for p in patterns)

    def is_redacted(self, column: str) -> bool:
        name = column.lower()
        leaf = name.rsplit(".", 1)[-1]
        return any(
            fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(leaf, p) for p in self.patterns
        )

    def apply(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not self.patterns:
            return rows
        return [self._row(row, "") for row in rows]

    def _row(self, row: dict[str, Any], prefix: str) -> dict[str, Any]:
        return {key: self._value(value, f"{prefix}{key}") for key, value in row.items()}

    def _value(self, value: Any, path: str) -> Any:
        if self.is_redacted(path):
            return REDACTED
        if isinstance(value, dict):
            return self._row(value, f"{path}.")
        if isinstance(value, list):
            return [self._value(item, path) for item in value]
        return value

    def scrub(self, message: str, keep: Iterable[str] = ()) -> str:
        """Mask single-quoted values in an error message, keeping the pipeline's own names.

        Engines quote the offending value (``Could not convert string 'a@b.com' to INT32``),
        so with redaction on, any quoted text that is not a step, key, column or path name
        of the pipeline becomes ``'***'``.
        """
        if not self.patterns or not message:
            return message
        known = set(keep)
        return _QUOTED.sub(
            lambda m: m.group(0) if m.group(1) in known else f"'{REDACTED}'", message
        )
