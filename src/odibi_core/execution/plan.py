"""The run plan: what one run will do, decided before anything runs.

``build_plan(config, ...)`` resolves a pipeline's settings and parameters with the run's
overrides, checks the resolved steps, builds the DAG and applies ``--select``. A full run,
a selected subset, a resumed run and a bundle task are all plans; those over a subset read
their **external inputs** (data keys their steps read but no selected step produces) from
the run's data store. Pure: no pandas or pyspark import.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from odibi_core.core.config import (
    PipelineConfig,
    Settings,
    StateLocation,
    TrackerSettings,
    raise_on_resolved_params,
    settings_with,
)
from odibi_core.core.dag import DAG, DAGBuilder
from odibi_core.core.errors import PipelineConfigError
from odibi_core.core.parameters import resolve_parameters
from odibi_core.core.step import ENGINES, Step
from odibi_core.core.targets import place_of, raise_on_unsafe_targets
from odibi_core.core.write_spec import TRANSACTIONAL_FORMATS

# The parts of a step that decide what it computes; ``metadata`` and ``task`` do not.
_DEFINITION_FIELDS = ("layer", "type", "value", "params", "inputs", "outputs", "engine")


def step_fingerprint(step: Step, *, with_engine: bool = True) -> str:
    """A stable hash of what a step computes: equal definitions, equal fingerprints.

    Checkpoints, the cache and the bundle generator key on it, so it must not depend on
    dict order, process, or Python's hash seed. The cache leaves the engine out: both
    engines compute the same result.
    """
    fields = _DEFINITION_FIELDS if with_engine else _DEFINITION_FIELDS[:-1]
    definition = {name: getattr(step, name) for name in fields}
    definition["type"] = step.kind
    # Quality rules decide what a step keeps; left out when empty, so a step without
    # them keeps the fingerprint it had before rules existed.
    for name in ("expectations", "table_expectations"):
        rules = getattr(step, name)
        if rules:
            definition[name] = [getattr(rule, "to_dict", lambda r=rule: r)() for rule in rules]
    text = json.dumps(definition, sort_keys=True, default=repr, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class RunPlan:
    """One run's resolved pipeline, DAG and selection. Built by ``build_plan`` only."""

    config: PipelineConfig  # with the run's engine, settings, tracker and state applied
    steps: tuple[Step, ...]  # every step of the pipeline, parameters substituted
    parameters: Mapping[str, Any]
    dag: DAG  # the selected steps
    selection: str | None
    external_inputs: Mapping[str, frozenset[str]]  # data key -> producers outside the plan
    fingerprints: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def engine(self) -> str:
        return self.config.engine

    @property
    def settings(self) -> Settings:
        return self.config.settings

    @property
    def where(self) -> str:
        """How messages name the pipeline's definition: its file, or ``<steps>``."""
        return str(self.config.source) if self.config.source else "<steps>"

    @property
    def spark_steps(self) -> tuple[str, ...]:
        """Steps that need Spark whatever their data's size: engine spark, Delta or tables.

        ``auto`` steps are not among them: their engine is decided when they run.
        """
        base_dir = self.config.base_dir
        return tuple(
            step.name
            for step in self.dag.steps
            if (step.engine or self.engine) == "spark" or _transactional_io(step, base_dir)
        )

    def whole_dag(self) -> DAG:
        """The DAG of every step, selected or not (redaction follows renames across both)."""
        return DAGBuilder(self.steps).build()


def _transactional_io(step: Step, base_dir: Any) -> bool:
    """A read or write of a Delta table or a catalog table (which goes through Spark)."""
    if step.layer not in ("ingest", "store"):
        return False
    place = place_of(step, step.name, base_dir)
    return place is not None and place.format in TRANSACTIONAL_FORMATS


def build_plan(
    config: PipelineConfig,
    *,
    params: Mapping[str, Any] | None = None,
    select: str | None = None,
    engine: str | None = None,
    settings: Mapping[str, Any] | None = None,
    tracker: TrackerSettings | None = None,
    state: StateLocation | None = None,
    pipeline_name: str | None = None,
) -> RunPlan:
    """Resolve ``config`` with the run's overrides into a plan; raise on any config error."""
    config = _with_overrides(config, engine, settings, tracker, state, pipeline_name)
    where = str(config.source or "<steps>")
    steps, parameters = resolve_parameters(config.steps, config.parameters, dict(params or {}))
    raise_on_resolved_params(steps, where=where)
    # Targets built from ${params.x} are known only now.
    raise_on_unsafe_targets(steps, base_dir=config.base_dir, where=where)
    whole = DAGBuilder(steps).build()
    chosen = whole.select(select) if select else whole.topological_order()
    external = whole.external_inputs(chosen)
    dag = whole.subgraph(chosen) if select else whole
    return RunPlan(
        config=config,
        steps=tuple(steps),
        parameters=dict(parameters),
        dag=dag,
        selection=select,
        external_inputs={key: frozenset(producers) for key, producers in external.items()},
        fingerprints={step.name: step_fingerprint(step) for step in dag.steps},
    )


def _with_overrides(
    config: PipelineConfig,
    engine: str | None,
    settings: Mapping[str, Any] | None,
    tracker: TrackerSettings | None,
    state: StateLocation | None,
    pipeline_name: str | None,
) -> PipelineConfig:
    engine = engine or config.engine
    if engine not in ENGINES:
        raise PipelineConfigError(f"engine_type '{engine}' is not one of {', '.join(ENGINES)}")
    where = str(config.source or "<steps>")
    return replace(
        config,
        name=pipeline_name or config.name,
        engine=engine,
        settings=settings_with(
            config.settings, dict(settings or {}), where=where, section="Orchestrator"
        ),
        tracker=tracker or config.tracker,
        state=state or config.state,
    )
