"""One write, and the rules every write obeys: the formats, modes and merge settings.

The rules are stated once, here, and applied in two places: to a step's ``params`` when
a pipeline is validated (``step_params``), and to a ``WriteSpec`` an engine receives
(``WriteSpec.check``), since a spec may also be built by hand through the engine API.
Messages name what the author wrote: ``params.merge_keys`` in a pipeline,
``merge_keys`` for a spec. Pure: no pandas or pyspark import.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from odibi_core.core.errors import PipelineConfigError, did_you_mean

FILE_FORMATS = ("csv", "json", "parquet")
# Formats with transactions: the only ones that can be appended to or merged into safely.
TRANSACTIONAL_FORMATS = ("delta", "table")
FORMATS = (*FILE_FORMATS, *TRANSACTIONAL_FORMATS)
WRITE_MODES = ("overwrite", "append", "merge")
MERGE_NULL_KEYS = ("error", "insert")
# Settings that only a Delta table can honour, and those that only a merge uses.
TRANSACTIONAL_SETTINGS = ("merge_keys", "update_columns", "merge_null_keys", "merge_schema")
MERGE_SETTINGS = ("update_columns", "merge_keys", "merge_null_keys")

WriteMode = Literal["overwrite", "append", "merge"]
Naming = Literal["params", "spec"]


@dataclass(frozen=True)
class WriteSpec:
    """Everything a store/publish step says about one write.

    Built from a step by ``step_params.write_spec_for_step``, which refuses a step whose
    params break a rule; an engine calls ``check`` on every spec it is given.
    """

    target: str  # a path (resolved) or a table name (validated)
    format: str  # csv | json | parquet | delta | table
    mode: str = "overwrite"  # overwrite | append | merge
    options: Mapping[str, Any] = field(default_factory=dict)
    merge_keys: tuple[str, ...] = ()
    update_columns: tuple[str, ...] | None = None
    partition_by: tuple[str, ...] = ()
    cluster_by: tuple[str, ...] = ()
    merge_schema: bool = False
    comment: str | None = None  # publish only
    properties: Mapping[str, str] = field(default_factory=dict)  # publish only
    # Tag stored as the Delta commit's userMetadata, so the commit (and its metrics) can be
    # found again without racing concurrent writers through history(1).
    commit_tag: str | None = None
    # Exactly-once appends: Delta txnAppId/txnVersion (set by the state layer).
    txn_app_id: str | None = None
    txn_version: int | None = None
    # The run whose txnAppId this is, named when Delta skips an append it already has.
    run_id: str | None = None
    # MERGE rows whose key has a NULL: "error" refuses them, "insert" inserts them unmatched.
    merge_null_keys: str = "error"
    # Column patterns (names or globs) whose values an error message must not show.
    redact_columns: tuple[str, ...] = ()

    def problems(self) -> list[str]:
        """Every rule this spec breaks, most fundamental first."""
        fmt = self.format.lower()
        choices = [
            choice_problem("format", fmt, naming="spec"),
            choice_problem("mode", self.mode, naming="spec"),
            choice_problem("merge_null_keys", self.merge_null_keys, naming="spec"),
        ]
        problems = [problem for problem in choices if problem]
        if problems:
            return problems
        problems = write_rule_problems(
            fmt=fmt, mode=self.mode, target=self.target, given=self._given(), naming="spec"
        )
        if (self.txn_app_id is None) != (self.txn_version is None):
            problems.append("txn_app_id and txn_version go together; set both or neither")
        return problems

    def check(self, *, step: str) -> None:
        """Refuse a spec no engine can honour, before any data moves: its first problem."""
        problems = self.problems()
        if problems:
            raise PipelineConfigError(f"step '{step}' (writing '{self.target}'): {problems[0]}")

    def _given(self) -> set[str]:
        set_fields = {
            "merge_keys": bool(self.merge_keys),
            "update_columns": self.update_columns is not None,
            "merge_null_keys": self.merge_null_keys != "error",
            "merge_schema": self.merge_schema,
            "partition_by": bool(self.partition_by),
            "cluster_by": bool(self.cluster_by),
        }
        return {name for name, is_set in set_fields.items() if is_set}


_CHOICES: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "format": ("format", FORMATS),
    "mode": ("write mode", WRITE_MODES),
    "merge_null_keys": ("params.merge_null_keys", MERGE_NULL_KEYS),
}


def choice_problem(key: str, value: Any, *, naming: Naming = "params") -> str | None:
    """The problem with a format, mode or merge_null_keys value; None when it is valid."""
    label, choices = _CHOICES[key]
    # YAML may say "Append"; a spec is read by engines as it is, so it must be exact.
    if isinstance(value, str) and (value.lower() if naming == "params" else value) in choices:
        return None
    if naming == "spec":
        label = label.removeprefix("params.")
    return (
        f"{label} {value!r} is not one of {', '.join(choices)}{did_you_mean(str(value), choices)}"
    )


def format_problem(key: str, fmt: str | None, *, naming: Naming = "params") -> str | None:
    """A setting only a Delta table honours (``merge_keys``, ``cluster_by``, ...) on a file."""
    if fmt is None or fmt in TRANSACTIONAL_FORMATS:
        return None
    if key not in (*TRANSACTIONAL_SETTINGS, "cluster_by"):
        return None
    return f"{_name(key, naming)} needs format {' or '.join(TRANSACTIONAL_FORMATS)}, not {fmt}"


def write_rule_problems(
    *, fmt: str | None, mode: str, target: Any, given: Collection[str], naming: Naming
) -> list[str]:
    """The rules between settings: a mode and its format, a merge and its keys, layouts.

    ``fmt`` is None when it is not known yet (a path without an extension); ``given``
    names the settings the write sets.
    """
    problems = []
    if mode != "overwrite" and fmt is not None and fmt not in TRANSACTIONAL_FORMATS:
        problems.append(_file_mode_problem(mode, fmt, target, naming))
    if naming == "spec":
        problems.extend(filter(None, (format_problem(key, fmt, naming=naming) for key in given)))
    if mode == "merge" and "merge_keys" not in given:
        problems.append(
            f"mode 'merge' needs {_name('merge_keys', naming)}, the columns that identify a row"
        )
    for merge_only in MERGE_SETTINGS:
        if merge_only in given and mode != "merge":
            problems.append(
                f"{_name(merge_only, naming)} only applies to mode 'merge', not '{mode}'"
            )
    if "partition_by" in given and "cluster_by" in given:
        problems.append(
            f"set {_name('partition_by', naming)} or {_name('cluster_by', naming)}, not both; "
            "Delta tables are either partitioned or clustered"
        )
    return problems


def _file_mode_problem(mode: str, fmt: str, target: Any, naming: Naming) -> str:
    if naming == "spec":  # the message's prefix already names the target
        return (
            f"mode '{mode}' is not supported for {fmt} files, which can only be overwritten; "
            f"use format: delta (or table) to {mode}"
        )
    return (
        f"mode '{mode}' cannot write {fmt} files at '{target}'; "
        f"set format: delta (or format: table) to {mode} safely"
    )


def _name(key: str, naming: Naming) -> str:
    return f"params.{key}" if naming == "params" else key
