"""The framework's own step ``params``, by layer and format: one declarative table.

A misspelled key must never be ignored: ``mdoe: append`` that silently overwrites a table
is worse than any error. So every key of an ingest, store, publish or sql transform step
is checked against ``PARAMS`` at validation, values included; reader and writer options
(``header``, ``replaceWhere``, ``maxRecordsPerFile``, ...) live under ``params.options``
and pass through to the engine as given. A function transform's params are the keyword
arguments of the user's function, and a custom layer's params belong to its node, so
neither is checked here. Pure: no pandas or pyspark import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal

from odibi_core.errors import PipelineConfigError, did_you_mean
from odibi_core.step import Step

FORMATS = ("csv", "json", "parquet", "delta", "table")
FILE_EXTENSIONS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
WRITE_MODES = ("overwrite", "append", "merge")
MERGE_NULL_KEYS = ("error", "insert")
# Formats with transactions: the only ones that can be appended to or merged into safely.
TRANSACTIONAL_FORMATS = ("delta", "table")

ParamKind = Literal["choice", "names", "flag", "options"]
_READ = ("ingest",)
_WRITE = ("store", "publish")
_CHECKED_LAYERS = (*_READ, *_WRITE, "transform")


@dataclass(frozen=True)
class ParamRule:
    """One framework param: the value it takes, and the layers and formats that take it."""

    kind: ParamKind
    layers: tuple[str, ...]
    choices: tuple[str, ...] = ()
    formats: tuple[str, ...] = ()  # empty: every format
    label: str = ""  # how messages name the value, e.g. "write mode"


PARAMS: Mapping[str, ParamRule] = {
    "format": ParamRule("choice", (*_READ, *_WRITE), choices=FORMATS, label="format"),
    "options": ParamRule("options", (*_READ, *_WRITE)),
    "mode": ParamRule("choice", _WRITE, choices=WRITE_MODES, label="write mode"),
    "merge_keys": ParamRule("names", _WRITE, formats=TRANSACTIONAL_FORMATS),
    "update_columns": ParamRule("names", _WRITE, formats=TRANSACTIONAL_FORMATS),
    "merge_null_keys": ParamRule(
        "choice", _WRITE, choices=MERGE_NULL_KEYS, formats=TRANSACTIONAL_FORMATS
    ),
    "merge_schema": ParamRule("flag", _WRITE, formats=TRANSACTIONAL_FORMATS),
    "partition_by": ParamRule("names", _WRITE),
    "cluster_by": ParamRule("names", _WRITE, formats=TRANSACTIONAL_FORMATS),
}


def params_for(layer: str) -> tuple[str, ...]:
    """The framework params a step of ``layer`` takes (none for a sql transform)."""
    return tuple(key for key, rule in PARAMS.items() if layer in rule.layers)


def io_options(step: Step) -> dict[str, Any]:
    """``params.options``: what the engine's reader or writer receives, as given."""
    options = step.params.get("options")
    return dict(options) if isinstance(options, Mapping) else {}


def static_format(step: Step) -> str | None:
    """The format known without touching the filesystem: ``params.format`` or the extension."""
    declared = step.params.get("format")
    if isinstance(declared, str) and declared.lower() in FORMATS:
        return declared.lower()
    if declared is None and isinstance(step.value, str):
        return FILE_EXTENSIONS.get(PurePosixPath(step.value).suffix.lower())
    return None


def param_problems(step: Step, fmt: str | None = None) -> list[str]:
    """Every problem with ``step.params`` (keys, values, combinations), without location.

    ``fmt`` is the resolved format when known (at run time); otherwise the format is taken
    from ``params.format`` or the path's extension where it can be.
    """
    if step.layer not in _CHECKED_LAYERS or not isinstance(step.params, Mapping):
        return []
    if step.layer == "transform":
        return _transform_problems(step)
    fmt = fmt or static_format(step)
    problems = []
    for key, value in step.params.items():
        rule = PARAMS.get(key) if isinstance(key, str) else None
        if rule is None or step.layer not in rule.layers:
            problems.append(_unknown_key(step.layer, key, rule))
            continue
        problem = _value_problem(key, rule, value)
        if problem is None and rule.formats and fmt is not None and fmt not in rule.formats:
            problem = f"params.{key} needs format {' or '.join(rule.formats)}, not {fmt}"
        if problem:
            problems.append(problem)
    if not problems and step.layer in _WRITE:
        problems.extend(_write_combination_problems(step.params, fmt, step.value))
    return problems


def check_params(step: Step, fmt: str | None = None) -> None:
    """Raise ``PipelineConfigError`` naming the step when its params are not valid."""
    problems = param_problems(step, fmt)
    if problems:
        raise PipelineConfigError([f"{step.describe()}: {p}" for p in problems])


def _transform_problems(step: Step) -> list[str]:
    if step.kind != "sql" or not step.params:
        return []
    keys = ", ".join(f"'{key}'" for key in step.params)
    return [
        f"a sql transform takes no params, got {keys}; use ${{params.name}} runtime "
        "parameters in the SQL text, or type: function to pass arguments to a function"
    ]


def _unknown_key(layer: str, key: Any, rule: ParamRule | None) -> str:
    accepted = params_for(layer)
    a_step = f"{'an' if layer[0] in 'aeiou' else 'a'} {layer} step"
    if rule is not None:
        return (
            f"params.{key} does not apply to {a_step} (it is a param of "
            f"{_listed(rule.layers)} steps); {a_step} takes {_listed(accepted)}"
        )
    suggestion = did_you_mean(str(key), accepted)
    where_options = (
        ""
        if suggestion
        else f"; reader/writer options go under params.options (options: {{{key}: ...}})"
    )
    return f"unknown param '{key}'{suggestion}; {a_step} takes {_listed(accepted)}{where_options}"


def _listed(words: tuple[str, ...]) -> str:
    return ", ".join(words[:-1]) + f" and {words[-1]}" if len(words) > 1 else "".join(words)


def _value_problem(key: str, rule: ParamRule, value: Any) -> str | None:
    if _is_parameter_ref(value):
        return None  # ${params.x}: checked again once substituted, at run time
    if rule.kind == "choice":
        if isinstance(value, str) and value.lower() in rule.choices:
            return None
        return (
            f"{rule.label or 'params.' + key} {value!r} is not one of {', '.join(rule.choices)}"
            f"{did_you_mean(str(value), rule.choices)}"
        )
    if rule.kind == "options":
        return _options_problem(value)
    if rule.kind == "names":
        ok, expected = _is_names(value), "a column name or a list of column names"
    else:
        ok, expected = isinstance(value, bool), "true or false"
    return None if ok else f"params.{key} must be {expected}, got {value!r}"


def _options_problem(value: Any) -> str | None:
    if not isinstance(value, Mapping):
        return (
            f"params.options must be a mapping of reader/writer option to value, e.g. "
            f"options: {{header: true}}, got {type(value).__name__}"
        )
    for name, option in value.items():
        if not isinstance(name, str):
            return f"params.options has a non-text option name {name!r}"
        if option is not None and not isinstance(option, (str, int, float, bool)):
            return (
                f"params.options.{name} must be a text, number or boolean, "
                f"got {type(option).__name__}"
            )
    return None


def _write_combination_problems(
    params: Mapping[str, Any], fmt: str | None, target: Any
) -> list[str]:
    mode = params.get("mode", "overwrite")
    if _is_parameter_ref(mode):
        return []
    mode = mode.lower()
    problems = []
    if mode != "overwrite" and fmt is not None and fmt not in TRANSACTIONAL_FORMATS:
        problems.append(
            f"mode '{mode}' cannot write {fmt} files at '{target}'; "
            f"set format: delta (or format: table) to {mode} safely"
        )
    if mode == "merge" and not params.get("merge_keys"):
        problems.append("mode 'merge' needs params.merge_keys, the columns that identify a row")
    for merge_only in ("update_columns", "merge_keys", "merge_null_keys"):
        if merge_only in params and mode != "merge":
            problems.append(f"params.{merge_only} only applies to mode 'merge', not '{mode}'")
    if params.get("partition_by") and params.get("cluster_by"):
        problems.append(
            "set params.partition_by or params.cluster_by, not both; "
            "Delta tables are either partitioned or clustered"
        )
    return problems


def _is_names(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value)
    return isinstance(value, (list, tuple)) and all(isinstance(v, str) and v for v in value)


def _is_parameter_ref(value: Any) -> bool:
    return isinstance(value, str) and "${params." in value
