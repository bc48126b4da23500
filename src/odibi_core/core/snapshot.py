"""Snapshots of data as the tracker sees it: schema, row count and a small sample.

Pure: values and their rules only. Taking a snapshot from a frame is the engine's job.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

REDACTED = "***"
# An apostrophe inside a word (step's) opens no quote.
_QUOTED = re.compile(r"(?<!\w)'[^'\n]*'(?!\w)|\"[^\"\n]*\"|`[^`\n]*`")
# Spark's CAST_INVALID_INPUT / CAST_OVERFLOW: "The value <v> of the type ..."; v may be unquoted.
_UNQUOTED_VALUE = re.compile(r"(\bThe value )(.+?)( of the type\b)", re.IGNORECASE)
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*", re.IGNORECASE)
_QUALIFIED_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_SQL_TYPE = re.compile(
    r"(STRING|VARCHAR|CHAR|TEXT|BINARY|BLOB|BOOLEAN|BOOL|TINYINT|SMALLINT|INT|INTEGER|BIGINT|"
    r"HUGEINT|INT8|INT16|INT32|INT64|UINT8|UINT16|UINT32|UINT64|FLOAT|REAL|DOUBLE|DECIMAL|"
    r"NUMERIC|DATE|TIMESTAMP|TIMESTAMP_NTZ|TIMESTAMP_LTZ|TIMESTAMP WITH TIME ZONE|TIME|"
    r"INTERVAL[A-Z ]*|VOID|NULL|VARIANT|ARRAY|MAP|STRUCT)(\s*[(<].*[)>])?",
    re.IGNORECASE,
)
_SETTING = re.compile(r"spark\.[A-Za-z0-9_.]+")


CountSource = Literal[
    "exact",  # counted: free on pandas, or tracker.exact_counts on Spark
    "deferred",  # a Spark count the next action fills in (until the run settles it)
    "observed",  # that count, filled in from the Observation
    "unavailable",  # no action ran over the output, or its count may be partial
    "commit_metrics",  # a Delta write's own numbers
    "in_memory",  # a pandas write: the rows it was given
    "already_committed",  # an append Delta skipped: the run committed it before
    "empty",  # no data: a step without inputs
    "unknown",
]
SampleSource = Literal[
    "none",  # no data
    "off",  # tracker.sample_rows is 0
    "in_memory",  # sampled from a pandas frame
    "file_scan",  # the first rows of a local file, or limit(n) over its scan: one split
    "recomputed",  # limit(n) that recomputes the plan (tracker.spark_samples: always)
    "skipped",  # not sampled, since that would recompute the plan
    "written",  # rows of what a write wrote
]


@dataclass(frozen=True)
class Snapshot:
    """Schema as ``["col: arrow_type"]``, a row count and up to n JSON-safe sample rows.

    ``row_count`` is None while a Spark count is deferred to the action that runs anyway;
    ``count_source`` says where the count came from. A snapshot is a value: the tracker
    settles a deferred count by replacing the snapshot, never by changing it.
    """

    schema: list[str] = field(default_factory=list)
    row_count: int | None = 0
    sample: list[dict[str, Any]] = field(default_factory=list)
    count_source: CountSource = "empty"
    sample_source: SampleSource = "none"
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
            count_source=cast(CountSource, data.get("count_source", "unknown")),
            sample_source=cast(SampleSource, data.get("sample_source", "none")),
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
    """Masks sensitive values: sample values of redacted columns, and values in messages.

    A pattern (a name or a glob) matches a column, or a field nested in a struct or a list
    of structs, by its own name or by its dotted path (``contact.email``). ``columns`` are
    exact names derived from redacted ones (``SELECT email AS contact``); a column named
    after an expression (``upper(email)``) is redacted when a name inside it is.
    ``secrets`` (a ``SecretRegistry``) masks the run's secret values in every message.
    """

    def __init__(
        self,
        patterns: Iterable[str] = (),
        *,
        columns: Iterable[str] = (),
        secrets: Any = None,
    ):
        self.patterns = tuple(p.lower() for p in patterns)
        self.columns = frozenset(c.lower() for c in columns)
        self.secrets = secrets

    @property
    def active(self) -> bool:
        return bool(self.patterns or self.columns)

    def with_columns(self, columns: Iterable[str]) -> Redactor:
        redactor = Redactor(
            self.patterns, columns=self.columns | set(columns), secrets=self.secrets
        )
        return redactor

    def is_redacted(self, column: str) -> bool:
        name = column.lower()
        leaf = name.rsplit(".", 1)[-1]
        if self._matches(name) or self._matches(leaf):
            return True
        if _IDENTIFIER.fullmatch(name):
            return False
        return any(self._matches(token) for token in _IDENTIFIER.findall(name))

    def _matches(self, name: str) -> bool:
        return name in self.columns or any(fnmatch.fnmatchcase(name, p) for p in self.patterns)

    def apply(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not self.active:
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
        """Mask the run's secrets and, with redaction on, quoted values in a message.

        Engines quote the offending value, each in its own way: DuckDB and pandas in single
        quotes (``Could not convert string 'a@b.com' to INT32``), Python's repr in double
        quotes when the value holds an apostrophe, JSON in double quotes, Spark in single
        quotes or not at all (``The value 1.5E10 of the type "DOUBLE"``). With redaction
        on, quoted text is masked unless it is one of the pipeline's own names (``keep``),
        a SQL type or Spark setting in double quotes, or an identifier in backticks.
        """
        if not message:
            return message
        if self.secrets is not None:
            message = self.secrets.mask(message)
        if not self.active:
            return message
        known = set(keep)
        message = _UNQUOTED_VALUE.sub(
            lambda m: (
                m.group(0) if m.group(2)[:1] in "'\"`" else f"{m.group(1)}{REDACTED}{m.group(3)}"
            ),
            message,
        )
        return _QUOTED.sub(lambda m: _masked_quote(m, known), message)


def _masked_quote(match: re.Match[str], known: set[str]) -> str:
    quote, text = match.group(0)[0], match.group(0)[1:-1]
    if text in known or text == REDACTED:
        return match.group(0)
    if quote == '"' and (_SQL_TYPE.fullmatch(text) or _SETTING.fullmatch(text)):
        return match.group(0)
    if quote == "`" and (
        _QUALIFIED_IDENTIFIER.fullmatch(text) or any(text in name for name in known)
    ):
        return match.group(0)  # an identifier, or an expression of the pipeline's SQL
    return f"{quote}{REDACTED}{quote}"
