"""Runtime parameters: ``${params.name}`` in a step's ``value`` and ``params``.

A pipeline declares its parameters with defaults (``parameters: {run_date: null}``);
``--param run_date=2024-05-01`` or ``Orchestrator(params=...)`` sets them. Pure: no pandas
or pyspark import.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from odibi_core.core.errors import PipelineConfigError, did_you_mean
from odibi_core.core.step import Step

_PARAM_REF = re.compile(r"\$\{params\.([A-Za-z_]\w*)\}")


def check_parameter_refs(
    steps: Sequence[Step], refs: Sequence[str], declared: Mapping[str, Any]
) -> list[str]:
    problems = []
    for step, ref in zip(steps, refs):
        for name in sorted(_referenced_parameters(step)):
            if name not in declared:
                problems.append(
                    f"{ref}: uses ${{params.{name}}}, which the pipeline does not declare"
                    f"{did_you_mean(name, declared)}; add it under 'parameters:'"
                )
    return problems


def _referenced_parameters(step: Step) -> set[str]:
    found: set[str] = set()
    for text in _strings_in((step.value, step.params)):
        found.update(_PARAM_REF.findall(text))
    return found


def _strings_in(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _strings_in(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings_in(v)


def resolve_parameters(
    steps: Sequence[Step], declared: Mapping[str, Any], given: Mapping[str, Any] | None = None
) -> tuple[list[Step], dict[str, Any]]:
    """Substitute ``${params.x}`` in each step's ``value`` and ``params``.

    ``given`` overrides the declared defaults. A parameter that is given but not declared,
    or declared without a default and not given, is a config error.
    """
    given = dict(given or {})
    problems = [
        f"parameter '{name}' is not declared by the pipeline{did_you_mean(name, declared)}"
        for name in given
        if name not in declared
    ]
    values = {**declared, **{k: v for k, v in given.items() if k in declared}}
    references = [_referenced_parameters(s) for s in steps]
    used = set().union(*references)
    for name in sorted(used):
        if name in declared and values.get(name) is None:
            problems.append(
                f"parameter '{name}' has no default and was not given; pass --param {name}=VALUE"
            )
        elif name not in declared:
            problems.append(
                f"parameter '{name}' is used but not declared; add it under 'parameters:'"
            )
    if problems:
        raise PipelineConfigError(problems)

    def substitute(value: Any) -> Any:
        if isinstance(value, str):
            return _PARAM_REF.sub(lambda m: str(values[m.group(1)]), value)
        if isinstance(value, Mapping):
            return {k: substitute(v) for k, v in value.items()}
        if isinstance(value, list):
            return [substitute(v) for v in value]
        return value

    resolved = [
        replace(s, value=substitute(s.value), params=substitute(s.params))
        if referenced
        else s  # nothing to substitute: the step as it is
        for s, referenced in zip(steps, references, strict=True)
    ]
    return resolved, values
