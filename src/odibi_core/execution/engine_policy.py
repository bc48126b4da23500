"""Which engine runs a step: the step's own ``engine``, the pipeline default, or ``auto``.

``auto`` picks pandas when a step's input is small and Spark otherwise. The engine layer
gives the facts (how big a location is, from metadata: :mod:`odibi_core.engine.sizes`);
this module is the one policy that decides, once per step and run.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from odibi_core.core.errors import PipelineConfigError, did_you_mean
from odibi_core.core.location_kind import location_kind
from odibi_core.core.locations import human_bytes, locate
from odibi_core.core.step import ENGINES, Step
from odibi_core.engine.sizes import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ROWS,
    SizeEstimate,
    estimate_source,
)


@dataclass(frozen=True)
class EngineChoice:
    name: str  # "pandas" or "spark"
    reason: str
    estimated_rows: int | None = None
    estimated_bytes: int | None = None


def choose_engine(
    step: Step,
    default: str,
    *,
    base_dir: str | Path | None,
    upstream_rows: Mapping[str, int | None],
    max_rows: int = DEFAULT_MAX_ROWS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    warehouse: str | Path | None = None,
) -> EngineChoice:
    """Pick the engine for ``step``. ``upstream_rows`` maps its input data keys to row counts."""
    if default not in ENGINES:
        raise PipelineConfigError(
            f"default engine '{default}' is not one of {', '.join(ENGINES)}"
            f"{did_you_mean(str(default), ENGINES)}"
        )
    requested = step.engine or default
    if requested != "auto":
        origin = "step sets" if step.engine else "pipeline default"
        return EngineChoice(requested, f"{origin} engine: {requested}")
    remote = _remote_target(step)
    if remote is not None:
        return EngineChoice("spark", remote)
    if step.layer == "ingest":
        estimate = estimate_source(
            locate(step, base_dir), step=step, max_bytes=max_bytes, warehouse=warehouse
        )
    else:
        estimate = estimate_upstream(step, upstream_rows)
    return _decide(estimate, max_rows, max_bytes)


def _remote_target(step: Step) -> str | None:
    """Why a store must run on Spark: its target is a URI only Spark writes to."""
    if step.layer not in ("store", "publish") or not isinstance(step.value, str):
        return None
    kind = location_kind(step.value)
    if kind.python_readable:
        return None
    return f"auto: '{step.value}' is a {kind.value}, which only Spark writes to, so spark"


def estimate_upstream(step: Step, upstream_rows: Mapping[str, int | None]) -> SizeEstimate:
    if not step.inputs:
        return SizeEstimate(rows=0, bytes=None, source="no inputs")
    unknown = [key for key in step.inputs.values() if upstream_rows.get(key) is None]
    if unknown:
        listed = ", ".join(f"'{key}'" for key in unknown)
        return SizeEstimate(
            rows=None,
            bytes=None,
            source="upstream",
            note=f"row count of {listed} is unknown (a Spark output)",
        )
    total = sum(upstream_rows[key] or 0 for key in step.inputs.values())
    return SizeEstimate(rows=total, bytes=None, source="upstream")


def _decide(estimate: SizeEstimate, max_rows: int, max_bytes: int) -> EngineChoice:
    limits = f"{max_rows:,} rows / {human_bytes(max_bytes)}"
    if estimate.rows is None and estimate.bytes is None:
        why = estimate.note or f"size of the {estimate.source} input is unknown"
        return EngineChoice("spark", f"auto: {why}, so spark")
    under_rows = estimate.rows is None or estimate.rows < max_rows
    under_bytes = estimate.bytes is None or estimate.bytes < max_bytes
    name = "pandas" if under_rows and under_bytes else "spark"
    size = _describe(estimate)
    direction = "under" if name == "pandas" else "over"
    return EngineChoice(
        name,
        f"auto: {size} {direction} {limits}",
        estimated_rows=estimate.rows,
        estimated_bytes=estimate.bytes,
    )


def _describe(estimate: SizeEstimate) -> str:
    if estimate.source == "upstream":
        return f"{estimate.rows:,} rows from upstream"
    if estimate.source == "no inputs":
        return "no inputs"
    detail = f"{human_bytes(estimate.bytes or 0)} {estimate.source}"
    if estimate.note:
        detail = f"{detail}; {estimate.note}"
    if estimate.rows is None:
        return f"unknown rows ({detail})"
    return f"~{estimate.rows:,} rows ({detail})"


class EngineChooser:
    """Decides each step's engine once per run; a retried step keeps its first decision.

    Upstream row counts come from the tracker when there is one; a pandas frame's length
    is free anyway, while a Spark frame's stays unknown until counted.
    """

    def __init__(
        self,
        *,
        default_engine: str,
        settings: Any,
        base_dir: Path | None,
        warehouse: Path | None,
        store: Any,
        engines: Any,
        tracker: Any = None,
    ):
        self.default_engine = default_engine
        self.settings = settings
        self.base_dir = base_dir
        self.warehouse = warehouse
        self.store = store
        self.engines = engines
        self.tracker = tracker
        self._decisions: dict[str, EngineChoice] = {}
        self._lock = threading.Lock()

    def decide(self, step: Step) -> EngineChoice:
        with self._lock:
            decided = self._decisions.get(step.name)
        if decided is not None:
            return decided
        decided = choose_engine(
            step,
            self.default_engine,
            base_dir=self.base_dir,
            upstream_rows=self._upstream_rows(step),
            max_rows=self.settings.auto_max_rows,
            max_bytes=self.settings.auto_max_bytes,
            warehouse=self.warehouse,
        )
        with self._lock:
            return self._decisions.setdefault(step.name, decided)

    def _upstream_rows(self, step: Step) -> dict[str, int | None]:
        rows = self.tracker.known_rows(step.input_keys) if self.tracker else {}
        for key in step.input_keys:
            if rows.get(key) is None and self.store.contains(key):
                frame = self.store.get(key)
                if self.engines.frame_engine(frame) == "pandas":
                    rows[key] = len(frame)
        return rows
