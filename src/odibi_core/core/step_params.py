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

from odibi_core.core.errors import PipelineConfigError, did_you_mean
from odibi_core.core.step import Step
from odibi_core.core.write_spec import (
    FORMATS,
    WriteSpec,
    choice_problem,
    format_problem,
    write_rule_problems,
)

FILE_EXTENSIONS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}

ParamKind = Literal["choice", "names", "flag", "options"]
_READ = ("ingest",)
_WRITE = ("store", "publish")
_CHECKED_LAYERS = (*_READ, *_WRITE, "transform")


@dataclass(frozen=True)
class ParamRule:
    """One framework param: the kind of value it takes, and the layers that take it.

    The values a choice takes and the formats a setting needs are write rules, stated in
    ``write_spec``.
    """

    kind: ParamKind
    layers: tuple[str, ...]


PARAMS: Mapping[str, ParamRule] = {
    "format": ParamRule("choice", (*_READ, *_WRITE)),
    "options": ParamRule("options", (*_READ, *_WRITE)),
    "mode": ParamRule("choice", _WRITE),
    "merge_keys": ParamRule("names", _WRITE),
    "update_columns": ParamRule("names", _WRITE),
    "merge_null_keys": ParamRule("choice", _WRITE),
    "merge_schema": ParamRule("flag", _WRITE),
    "partition_by": ParamRule("names", _WRITE),
    "cluster_by": ParamRule("names", _WRITE),
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


def param_problems(step: Step, fmt: str | None = None, target: str | None = None) -> list[str]:
    """Every problem with ``step.params`` (keys, values, combinations), without location.

    ``fmt`` is the resolved format when known (at run time); otherwise the format is taken
    from ``params.format`` or the path's extension where it can be. ``target`` is the
    resolved path or table the messages name (the step's value when not given).
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
        problem = _value_problem(key, rule, value) or format_problem(key, fmt)
        if problem:
            problems.append(problem)
    if not problems and step.layer in _WRITE:
        problems.extend(_write_combination_problems(step.params, fmt, target or step.value))
    return problems


def check_params(step: Step, fmt: str | None = None, target: str | None = None) -> None:
    """Raise ``PipelineConfigError`` naming the step when its params are not valid."""
    problems = param_problems(step, fmt, target)
    if problems:
        raise PipelineConfigError([f"{step.describe()}: {p}" for p in problems])


def write_spec_for_step(
    step: Step,
    *,
    target: str,
    fmt: str,
    pipeline: str | None = None,
    run_id: str | None = None,
    comment: str | None = None,
    properties: Mapping[str, str] | None = None,
    redact_columns: tuple[str, ...] = (),
) -> WriteSpec:
    """The one write a store/publish step asks for; refuses params that break a rule.

    ``target`` and ``fmt`` are the resolved location. An append of a named run carries a
    Delta transaction id, so a retry, resume or repair skips an append Delta already has.
    """
    check_params(step, fmt, target)
    mode = str(step.params.get("mode", "overwrite")).lower()
    txn_app_id = None
    if mode == "append" and pipeline and run_id:
        txn_app_id = f"odibi:{pipeline}:{step.name}:{target}:{run_id}"
    return WriteSpec(
        target=target,
        format=fmt,
        mode=mode,
        options=io_options(step),
        merge_keys=_names(step.params, "merge_keys") or (),
        update_columns=_names(step.params, "update_columns"),  # None: every column
        partition_by=_names(step.params, "partition_by") or (),
        cluster_by=_names(step.params, "cluster_by") or (),
        merge_schema=step.params.get("merge_schema", False),
        comment=comment,
        properties=dict(properties or {}),
        txn_app_id=txn_app_id,
        txn_version=0 if txn_app_id else None,
        run_id=run_id,
        redact_columns=redact_columns,
        merge_null_keys=str(step.params.get("merge_null_keys", "error")).lower(),
    )


def _names(params: Mapping[str, Any], key: str) -> tuple[str, ...] | None:
    """A names param (checked by ``check_params``) as a tuple; None when not set."""
    value = params.get(key)
    if value is None:
        return None
    return (value,) if isinstance(value, str) else tuple(value)


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
        return choice_problem(key, value)
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
    layouts = ("partition_by", "cluster_by")
    given = {key for key in params if key not in layouts or params[key]}
    return write_rule_problems(
        fmt=fmt, mode=mode.lower(), target=target, given=given, naming="params"
    )


def _is_names(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value)
    return isinstance(value, (list, tuple)) and all(isinstance(v, str) and v for v in value)


def _is_parameter_ref(value: Any) -> bool:
    return isinstance(value, str) and "${params." in value
