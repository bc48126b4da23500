"""Pipeline definitions: parsed once, at the edge, into typed objects, and validated whole.

Validation collects *every* problem before raising, each naming the file and the step,
so a user fixes a pipeline in one pass instead of one error at a time. Pure: no pandas
or pyspark import.
"""

from __future__ import annotations

import json
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from odibi_core.core.errors import CircularDependencyError, PipelineConfigError, did_you_mean
from odibi_core.core.location_kind import pandas_cannot_reach
from odibi_core.core.parameters import check_parameter_refs
from odibi_core.core.step import (
    ENGINES,
    TRANSFORM_TYPES,
    Step,
    field_type_problems,
    known_layers,
    looks_like_function_ref,
)
from odibi_core.core.step_params import param_problems, static_format
from odibi_core.core.write_spec import FILE_FORMATS, WRITE_MODES

__all__ = [
    "WRITE_MODES",
    "PipelineConfig",
    "Settings",
    "StateLocation",
    "TrackerSettings",
    "load_pipeline",
    "parse_pipeline",
    "raise_on_resolved_params",
    "settings_with",
    "validate_steps",
]

_STEP_FIELDS = {f.name for f in fields(Step)}
_REQUIRED_STEP_FIELDS = ("layer", "name")


# Seconds a lifecycle hook may run before the run goes on without it (null: no limit).
DEFAULT_HOOK_TIMEOUT = 30.0


@dataclass(frozen=True)
class Settings:
    """Execution settings. Each can come from the pipeline file or the Orchestrator."""

    max_workers: int = 4
    parallel: bool = True
    max_retries: int = 0
    retry_delay: float = 1.0
    retry_backoff: float = 2.0
    fail_fast: bool = False
    release_data: bool = True
    hook_timeout: float | None = DEFAULT_HOOK_TIMEOUT
    duckdb_threads: int | None = None
    auto_max_rows: int = 1_000_000
    auto_max_bytes: int = 256 * 1024 * 1024
    # How the pipeline becomes a Databricks job (odibi_core.bundle); a local run ignores them.
    group_by: GroupBy = "step"  # tasks: one per step, per same-engine chain, per layer
    checkpoint: CheckpointPolicy = "handoffs"  # in a job task: handoffs only, or all outputs
    compute: JobCompute = "clusters"  # job clusters per task class, or serverless
    task_compute: dict = field(default_factory=dict)  # task key or step -> pandas | spark
    cluster: dict = field(default_factory=dict)  # spark_version, node_type_id, workers...
    timeout_seconds: int | None = None  # the job's limit (null: none)
    email_on_failure: tuple[str, ...] = ()


GroupBy = Literal["step", "chain", "layer"]
CheckpointPolicy = Literal["handoffs", "all"]
JobCompute = Literal["clusters", "serverless"]
TaskCompute = Literal["pandas", "spark"]
CLUSTER_KEYS = ("spark_version", "node_type_id", "min_workers", "max_workers", "data_security_mode")


# How the tracker samples a Spark output: "cheap" only where it reads one file split,
# "always" even where a sample recomputes the output's plan.
SparkSamples = Literal["cheap", "always"]


@dataclass(frozen=True)
class TrackerSettings:
    sample_rows: int = 5
    redact_columns: tuple[str, ...] = ()
    spark_samples: SparkSamples = "cheap"
    exact_counts: bool = False
    secret_params: tuple[str, ...] = ()  # more parameter-name patterns to mask

    def __post_init__(self) -> None:
        # A string here would be read as one pattern per character ('e', 'm', 'a', ...).
        for name in _TRACKER_NAME_LISTS:
            problem = _name_list_problem(name, getattr(self, name))
            if problem:
                raise PipelineConfigError(f"TrackerSettings: {problem}")


@dataclass(frozen=True)
class StateLocation:
    """Where the Delta state tables live: ``catalog.schema`` (catalog optional)."""

    schema: str
    catalog: str | None = None

    @property
    def qualified(self) -> str:
        return f"{self.catalog}.{self.schema}" if self.catalog else self.schema

    def table(self, name: str) -> str:
        return f"{self.qualified}.{name}"


@dataclass(frozen=True)
class PipelineConfig:
    name: str
    steps: tuple[Step, ...]
    engine: str = "pandas"
    settings: Settings = field(default_factory=Settings)
    tracker: TrackerSettings = field(default_factory=TrackerSettings)
    state: StateLocation | None = None
    schedule: dict[str, Any] | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None

    @property
    def base_dir(self) -> Path | None:
        """Relative paths in a pipeline file resolve against the file's folder."""
        return self.source.parent if self.source else None


# --------------------------------------------------------------------------- loading


def load_pipeline(path: str | Path, *, engine: str | None = None) -> PipelineConfig:
    """Load and validate a pipeline file (``.yaml``, ``.yml`` or ``.json``).

    ``engine`` replaces the file's default engine (``odibi run --engine``), so the steps
    are validated for the engine that will run them.
    """
    path = Path(path)
    where = str(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise PipelineConfigError(f"{where}: pipeline file not found") from None
    except OSError as exc:
        raise PipelineConfigError(f"{where}: cannot read pipeline file ({exc.strerror})") from exc

    step_lines: list[int | None] = []
    if path.suffix.lower() == ".json":
        try:
            raw = json.loads(text, object_pairs_hook=_unique_json_object)
        except json.JSONDecodeError as exc:
            raise PipelineConfigError(
                f"{where}, line {exc.lineno}: malformed JSON: {exc.msg}"
            ) from exc
        except _DuplicateKeyError as exc:
            raise PipelineConfigError(f"{where}: {exc.problem}") from exc
    else:
        try:
            raw = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
            step_lines = _step_line_numbers(text)
        except _DuplicateKeyError as exc:
            at_step = _step_at_line(text, exc.problem_mark.line + 1)
            raise PipelineConfigError(
                f"{where}, line {exc.problem_mark.line + 1}{at_step}: {exc.problem}"
            ) from exc
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f", line {mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise PipelineConfigError(f"{where}{line}: malformed YAML: {problem}") from exc
    return parse_pipeline(raw, source=path, step_lines=step_lines, engine=engine)


def parse_pipeline(
    raw: Any,
    *,
    source: Path | None = None,
    step_lines: Sequence[int | None] = (),
    engine: str | None = None,
) -> PipelineConfig:
    """Turn a loaded mapping into a validated ``PipelineConfig``.

    ``engine``, when given, replaces the pipeline's default engine.
    """
    where = str(source) if source else "<pipeline>"
    if not isinstance(raw, Mapping):
        raise PipelineConfigError(
            f"{where}: a pipeline must be a mapping with 'pipeline' and 'steps'"
        )
    problems: list[str] = []

    known_top = {
        "pipeline",
        "engine",
        "settings",
        "state",
        "tracker",
        "schedule",
        "parameters",
        "steps",
        "description",
    }
    for key in raw:
        if key not in known_top:
            problems.append(
                f"{where}: unknown top-level key '{key}'{did_you_mean(str(key), known_top)}"
            )

    name = raw.get("pipeline")
    if not isinstance(name, str) or not name:
        problems.append(f"{where}: missing 'pipeline' (the pipeline's name)")
        name = source.stem if source else "pipeline"
    # The default engine steps are checked for: one the file or the caller names. An
    # unnamed default (pandas) is left to the run, which may still give --engine spark.
    stated_engine = engine if engine is not None else raw.get("engine")
    engine = raw.get("engine", "pandas") if engine is None else engine
    if engine not in ENGINES:
        problems.append(
            f"{where}: engine '{engine}' is not one of {', '.join(ENGINES)}{did_you_mean(str(engine), ENGINES)}"
        )
        engine = "pandas"

    settings = _parse_section(raw.get("settings"), Settings, where, "settings", problems)
    problems.extend(_settings_problems(settings, where))
    tracker = _parse_tracker(raw.get("tracker"), where, problems)
    state = _parse_state(raw.get("state"), where, problems)
    schedule = raw.get("schedule")
    if schedule is not None and not isinstance(schedule, Mapping):
        problems.append(
            f"{where}: 'schedule' must be a mapping such as {{quartz_cron_expression: ..., timezone_id: UTC}}"
        )
        schedule = None
    parameters = raw.get("parameters") or {}
    if not isinstance(parameters, Mapping):
        problems.append(f"{where}: 'parameters' must be a mapping of name to default value")
        parameters = {}

    raw_steps = raw.get("steps")
    steps: list[Step] = []
    refs: list[str] = []
    if not isinstance(raw_steps, list) or not raw_steps:
        problems.append(f"{where}: 'steps' must be a non-empty list")
    else:
        for index, raw_step in enumerate(raw_steps):
            line = step_lines[index] if index < len(step_lines) else None
            ref = _step_ref(where, index, raw_step, line)
            refs.append(ref)
            step = _parse_step(raw_step, ref, problems)
            if step is not None:
                steps.append(step)
            else:
                refs.pop()

    base_dir = source.resolve().parent if source else None
    problems.extend(
        validate_steps(
            steps,
            refs=refs,
            parameters=parameters,
            base_dir=base_dir,
            default_engine=stated_engine,
        )
    )
    if problems:
        raise PipelineConfigError(problems)
    return PipelineConfig(
        name=name,
        steps=tuple(steps),
        engine=engine,
        settings=settings,
        tracker=tracker,
        state=state,
        schedule=dict(schedule) if schedule else None,
        parameters=dict(parameters),
        source=source.resolve() if source else None,
    )


class _DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping names the same key twice: YAML would silently keep the last one."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.safe_load`` that refuses a key given twice in one mapping, at any depth."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            first_line: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # '<<: *defaults' may be overridden by explicit keys
                key = self.construct_object(key_node, deep=True)
                try:
                    line = first_line.get(key)
                except TypeError:
                    continue  # an unhashable key: SafeLoader reports it below
                first_line[key] = line or key_node.start_mark.line + 1
                if line is not None:
                    raise _DuplicateKeyError(
                        None,
                        None,
                        f"duplicate key '{key}' (first given at line {line}); "
                        "a key may appear once per mapping, so keep one of them",
                        key_node.start_mark,
                    )
        return super().construct_mapping(node, deep=deep)


def _unique_json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKeyError(
                None,
                None,
                f"duplicate key '{key}' in a JSON object; a key may appear once per object, "
                "so keep one of them",
            )
        seen[key] = value
    return seen


def _step_at_line(text: str, line: int) -> str:
    """``, step N 'name'`` for the item of the top-level ``steps`` list that holds ``line``."""
    for index, item in enumerate(_step_nodes(text)):
        if item.start_mark.line + 1 <= line <= item.end_mark.line + 1:
            pairs = item.value if isinstance(item, yaml.MappingNode) else []
            name = next((v.value for k, v in pairs if k.value == "name" and v.id == "scalar"), "")
            return f", step {index + 1}" + (f" '{name}'" if name else "")
    return ""


def _step_nodes(text: str) -> list[yaml.Node]:
    node = yaml.compose(text)
    if not isinstance(node, yaml.MappingNode):
        return []
    for key, value in node.value:
        if getattr(key, "value", None) == "steps" and isinstance(value, yaml.SequenceNode):
            return list(value.value)
    return []


def _step_line_numbers(text: str) -> list[int | None]:
    """Line (1-based) of each item of the top-level ``steps`` list, for error messages."""
    return [item.start_mark.line + 1 for item in _step_nodes(text)]


def _step_ref(where: str, index: int, raw_step: Any, line: int | None) -> str:
    name = raw_step.get("name") if isinstance(raw_step, Mapping) else None
    at_line = f", line {line}" if line else ""
    label = f" '{name}'" if isinstance(name, str) else ""
    return f"{where}{at_line}, step {index + 1}{label}"


def _parse_step(raw_step: Any, ref: str, problems: list[str]) -> Step | None:
    if not isinstance(raw_step, Mapping):
        problems.append(f"{ref}: a step must be a mapping with at least 'layer' and 'name'")
        return None
    ok = True
    for key in raw_step:
        if key not in _STEP_FIELDS:
            problems.append(f"{ref}: unknown field '{key}'{did_you_mean(str(key), _STEP_FIELDS)}")
            ok = False
    for required in _REQUIRED_STEP_FIELDS:
        if raw_step.get(required) in (None, ""):
            problems.append(f"{ref}: missing required field '{required}'")
            ok = False
    if not ok:
        return None
    # Wrong types are kept as given: validate_steps names them, for YAML and Python alike.
    values = {k: v for k, v in raw_step.items() if v is not None}
    for mapping_field in ("params", "inputs", "outputs", "metadata"):
        if isinstance(values.get(mapping_field), Mapping):
            values[mapping_field] = dict(values[mapping_field])
    return Step(**values)


def _parse_section(raw: Any, cls: type, where: str, section: str, problems: list[str]):
    if raw is None:
        return cls()
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: '{section}' must be a mapping")
        return cls()
    names = {f.name: f for f in fields(cls)}
    hints = get_type_hints(cls)
    values = {}
    for key, value in raw.items():
        if key not in names:
            problems.append(
                f"{where}: unknown {section} key '{key}'{did_you_mean(str(key), names)}"
            )
            continue
        default = getattr(cls(), key)
        if not isinstance(default, tuple) and not _same_kind(hints[key], value):
            problems.append(
                f"{where}: {section}.{key} must be {_kind_name(hints[key])}, got {value!r}"
            )
            continue
        values[key] = tuple(value) if isinstance(default, tuple) else value
    return cls(**values)


def _plain_types(hint: Any) -> tuple[type, ...]:
    """``float | None`` -> ``(float, NoneType)``; ``int`` -> ``(int,)``; a ``Literal`` of
    words -> ``(str,)``, its values being checked on their own."""
    if get_origin(hint) is Literal:
        return tuple(dict.fromkeys(type(arg) for arg in get_args(hint)))
    if get_origin(hint) in (Union, types.UnionType):
        return tuple(arg for arg in get_args(hint) if isinstance(arg, type))
    return (hint,) if isinstance(hint, type) else ()


def _same_kind(hint: Any, value: Any) -> bool:
    kinds = _plain_types(hint)
    if value is None:
        return type(None) in kinds
    if isinstance(value, bool):
        return bool in kinds
    if float in kinds:
        return isinstance(value, (int, float))
    return any(kind is not bool and isinstance(value, kind) for kind in kinds)


def _kind_name(hint: Any) -> str:
    kinds = [kind.__name__ for kind in _plain_types(hint) if kind is not type(None)]
    return " or ".join(kinds) + (" (or null)" if type(None) in _plain_types(hint) else "")


_SETTINGS_MINIMUMS = {
    "max_workers": (1, "1 or more"),
    "max_retries": (0, "0 or more"),
    "retry_delay": (0, "0 or more (seconds)"),
    "retry_backoff": (1, "1 or more (1 keeps the delay constant)"),
    "hook_timeout": (0, "more than 0 (seconds), or null for no limit"),
    "duckdb_threads": (1, "1 or more, or null for DuckDB's default"),
    "auto_max_rows": (0, "0 or more"),
    "auto_max_bytes": (0, "0 or more"),
    "timeout_seconds": (1, "1 or more, or null for no limit"),
}
_SETTINGS_WORDS = {"group_by": GroupBy, "checkpoint": CheckpointPolicy, "compute": JobCompute}


def _settings_problems(settings: Settings, where: str, section: str = "settings") -> list[str]:
    """Values of the right type that still cannot work: no workers, a negative delay."""
    problems = []
    for key, (minimum, expected) in _SETTINGS_MINIMUMS.items():
        value = getattr(settings, key)
        too_small = value is not None and (value <= 0 if key == "hook_timeout" else value < minimum)
        if too_small:
            problems.append(f"{where}: {section}.{key} must be {expected}, got {value!r}")
    for key, words in _SETTINGS_WORDS.items():
        if getattr(settings, key) not in get_args(words):
            allowed = ", ".join(get_args(words))
            problems.append(
                f"{where}: {section}.{key} must be one of {allowed}, got {getattr(settings, key)!r}"
            )
    return problems + _job_settings_problems(settings, f"{where}: {section}")


def _job_settings_problems(settings: Settings, where: str) -> list[str]:
    problems = [
        f"{where}.task_compute.{name} must be pandas or spark, got {value!r}"
        for name, value in settings.task_compute.items()
        if value not in get_args(TaskCompute)
    ]
    problems += [
        f"{where}.cluster: unknown key '{key}'{did_you_mean(str(key), CLUSTER_KEYS)}"
        for key in settings.cluster
        if key not in CLUSTER_KEYS
    ]
    workers = [settings.cluster.get(k) for k in ("min_workers", "max_workers")]
    if any(w is not None and (not isinstance(w, int) or w < 0) for w in workers):
        problems.append(f"{where}.cluster: min_workers and max_workers must be 0 or more")
    elif None not in workers and workers[0] > workers[1]:
        problems.append(
            f"{where}.cluster: min_workers {workers[0]} is above max_workers {workers[1]}"
        )
    return problems


def settings_with(
    settings: Settings, overrides: Mapping[str, Any], *, where: str, section: str
) -> Settings:
    """``settings`` with ``overrides`` (e.g. Orchestrator arguments), type- and range-checked."""
    problems: list[str] = []
    checked = _parse_section(dict(overrides), Settings, where, section, problems)
    if not problems:
        changed = {key: getattr(checked, key) for key in overrides}
        settings = replace(settings, **changed)
        problems = _settings_problems(settings, where, section)
    if problems:
        raise PipelineConfigError(problems)
    return settings


_TRACKER_NAME_LISTS = ("redact_columns", "secret_params")


def _name_list_problem(key: str, value: Any) -> str | None:
    """What is wrong with a list of column or parameter names, or None."""
    example = "[email, phone]" if key == "redact_columns" else '[pwd, "*_dsn"]'
    if isinstance(value, str):
        return (
            f"tracker.{key} must be a list, got the string {value!r}; "
            f"write {key}: [{value}] (a string would be read letter by letter)"
        )
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        return (
            f"tracker.{key} must be a list of names or globs, e.g. {key}: {example}; got {value!r}"
        )
    return None


def _parse_tracker(raw: Any, where: str, problems: list[str]) -> TrackerSettings:
    if isinstance(raw, Mapping):
        raw = dict(raw)
        for key in _TRACKER_NAME_LISTS:
            if key in raw and raw[key] is None:
                del raw[key]
            elif key in raw and _name_list_problem(key, raw[key]):
                problems.append(f"{where}: {_name_list_problem(key, raw.pop(key))}")
    tracker = _parse_section(raw, TrackerSettings, where, "tracker", problems)
    if tracker.spark_samples not in get_args(SparkSamples):
        problems.append(f"{where}: tracker.spark_samples must be 'cheap' or 'always'")
    if tracker.sample_rows < 0:
        problems.append(f"{where}: tracker.sample_rows must be 0 (off) or more")
    return tracker


def _parse_state(raw: Any, where: str, problems: list[str]) -> StateLocation | None:
    if raw is None:
        return None
    if (
        not isinstance(raw, Mapping)
        or not isinstance(raw.get("schema"), str)
        or not isinstance(raw.get("catalog") or "", str)
        or set(raw) - {"schema", "catalog"}
    ):
        problems.append(
            f"{where}: 'state' must be a mapping with a text 'schema' (and optional 'catalog'), "
            f"e.g. state: {{schema: odibi_state}}; got {raw!r}"
        )
        return None
    return StateLocation(schema=raw["schema"], catalog=raw.get("catalog"))


# --------------------------------------------------------------------------- validation


def validate_steps(
    steps: Sequence[Step],
    *,
    refs: Sequence[str] | None = None,
    parameters: Mapping[str, Any] | None = None,
    where: str = "<steps>",
    base_dir: str | Path | None = None,
    default_engine: str | None = None,
) -> list[str]:
    """Return every problem with a list of steps (empty when valid). Never raises.

    Relative paths resolve against ``base_dir`` (the pipeline file's folder), else the
    current directory. ``default_engine`` is the engine of steps that name none (when
    known), so a pandas step given a location only Spark reaches is refused here.
    """
    if isinstance(steps, (str, bytes, Mapping)) or not isinstance(steps, Sequence):
        return [f"{where}: steps must be a list of Step(...) objects, got {type(steps).__name__}"]
    refs = list(refs) if refs else [_python_ref(where, i, s) for i, s in enumerate(steps)]
    problems: list[str] = []
    typed: list[tuple[Step, str]] = []
    for step, ref in zip(steps, refs):
        wrong = field_type_problems(step)
        problems.extend(f"{ref}: {problem}" for problem in wrong)
        if isinstance(step, Step):
            problems.extend(f"{ref}: {problem}" for problem in param_problems(step))
        if not wrong:
            typed.append((step, ref))
    problems.extend(_step_problems(typed))
    problems.extend(_pandas_reach_problems(typed, default_engine))
    if len(typed) < len(steps):
        return problems  # the graph of partly read steps would only add false alarms
    producers = _producers(steps)
    for step, ref in typed:
        for logical, key in step.inputs.items():
            if key not in producers:
                problems.append(
                    f"{ref}: input '{logical}' reads '{key}', which no step produces"
                    f"{did_you_mean(key, producers)}"
                )
    if parameters is not None:
        problems.extend(check_parameter_refs(steps, refs, parameters))
    from odibi_core.core.dag import find_cycle  # deferred: dag imports this module

    cycle = find_cycle(steps)
    if cycle:
        problems.append(str(CircularDependencyError(cycle, where=refs[0].split(",")[0])))
    from odibi_core.core.targets import check_targets  # deferred: it resolves paths via the engine

    problems.extend(check_targets(steps, refs, base_dir=base_dir))
    return problems


def raise_on_resolved_params(steps: Sequence[Step], *, where: str) -> None:
    """Check params again once ``${params.x}`` is substituted, before any step runs.

    ``--param mode=apend`` is then refused like a misspelled mode written in the file.
    """
    problems = [
        f"{_python_ref(where, index, step)}: {problem}"
        for index, step in enumerate(steps)
        for problem in param_problems(step)
    ]
    if problems:
        raise PipelineConfigError(problems)


def _python_ref(where: str, index: int, step: Any) -> str:
    name = getattr(step, "name", None)
    return f"{where}, step {index + 1}" + (f" '{name}'" if isinstance(name, str) else "")


def _producers(steps: Sequence[Step]) -> dict[str, str]:
    producers: dict[str, str] = {}
    for step in steps:
        for key in step.outputs.values():
            producers.setdefault(key, step.name)
    return producers


def _step_problems(typed: Sequence[tuple[Step, str]]) -> list[str]:
    """Problems of each well-typed step on its own, plus duplicate names and outputs."""
    problems: list[str] = []
    layers = known_layers()
    seen_names: dict[str, str] = {}
    producers: dict[str, str] = {}
    for step, ref in typed:
        if step.name in seen_names:
            problems.append(
                f"{ref}: duplicate step name '{step.name}' (first used at {seen_names[step.name]})"
            )
        else:
            seen_names[step.name] = ref
        if step.layer not in layers:
            problems.append(
                f"{ref}: unknown layer '{step.layer}'{did_you_mean(step.layer, layers)}; "
                f"use one of {', '.join(sorted(layers))} or register a custom kind with @register_node"
            )
        if step.engine is not None and step.engine not in ENGINES:
            problems.append(
                f"{ref}: engine '{step.engine}' is not one of {', '.join(ENGINES)}{did_you_mean(step.engine, ENGINES)}"
            )
        problems.extend(_check_kind(step, ref))
        for key in step.outputs.values():
            if key in producers:
                problems.append(
                    f"{ref}: data key '{key}' is already produced by step '{producers[key]}'; a data key has exactly one producer"
                )
            else:
                producers[key] = step.name
    return problems


def _pandas_reach_problems(
    typed: Sequence[tuple[Step, str]], default_engine: str | None
) -> list[str]:
    """Files a pandas step would read or write at a URI only Spark reaches (s3://, dbfs:/).

    Delta and tables are left out: the pandas engine hands them to Spark anyway.
    """
    problems = []
    for step, ref in typed:
        value = step.value
        if (step.engine or default_engine) != "pandas" or step.layer not in ("ingest", "store"):
            continue
        if not isinstance(value, str) or "${" in value:
            continue
        fmt = static_format(step)
        writing = step.layer != "ingest"
        reason = pandas_cannot_reach(value, writing=writing) if fmt in FILE_FORMATS else None
        if reason:
            action = "write" if writing else "read"
            problems.append(f"{ref}: the pandas engine cannot {action} {fmt} '{value}': {reason}")
    return problems


def _check_kind(step: Step, ref: str) -> list[str]:
    problems = []
    if step.layer == "transform":
        if step.type is not None and step.type not in TRANSFORM_TYPES:
            problems.append(
                f"{ref}: unknown transform type '{step.type}'{did_you_mean(step.type, TRANSFORM_TYPES)}; use 'sql' or 'function'"
            )
        elif step.kind == "function" and not looks_like_function_ref(step.value):
            problems.append(
                f"{ref}: function reference {step.value!r} is not of the form 'package.module:function'"
            )
        elif step.kind == "sql" and not (isinstance(step.value, str) and step.value.strip()):
            problems.append(f"{ref}: a sql transform needs its SQL text in 'value'")
        if not step.outputs:
            problems.append(f"{ref}: a transform needs 'outputs', e.g. outputs: {{data: my_key}}")
    elif step.layer == "ingest":
        if not step.value:
            problems.append(f"{ref}: an ingest step needs 'value' (a path or table name)")
        if not step.outputs:
            problems.append(
                f"{ref}: an ingest step needs 'outputs', e.g. outputs: {{data: my_key}}"
            )
    elif step.layer in ("store", "publish"):
        if not step.value:
            problems.append(f"{ref}: a {step.layer} step needs 'value' (a path or table name)")
        if not step.inputs:
            problems.append(
                f"{ref}: a {step.layer} step needs 'inputs', e.g. inputs: {{data: my_key}}"
            )
    return problems
