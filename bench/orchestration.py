"""Orchestration benchmarks: the scheduler's overhead per step against a plain loop and
Kedro (scenario 1), parallel branches (scenario 4) and the example pipeline end to end
(scenario 7).

Kedro comes from the ``bench`` extra (``pip install -e ".[bench]"``, which ``make bench``
does); without it the Kedro rows say so instead of failing the whole run.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

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


def on_node_complete(payload: dict) -> None:
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


def run_ours(steps: list[Step]) -> None:
    """The orchestrator with its default settings (the ready-set scheduler, 4 workers)."""
    bus = EventBus()
    bus.register_hook("node_complete", on_node_complete)
    Orchestrator(steps=steps, engine_type="pandas", enable_tracker=True, event_bus=bus).execute(
        raise_on_error=True
    )


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

    def ours() -> None:
        run_ours(ours_steps)

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
    """Scenario 1: chain and fan-out/fan-in at 200 steps, and a 2,000-step chain (not in
    ``--quick``: Kedro's time per step grows with the pipeline, to minutes a run)."""
    pairs = 5
    small, large = 200, 2_000
    chain = overhead("chain", small, "sequential", pairs)
    fan = overhead("fan", small, "thread", pairs)
    found = [
        _versus_kedro(
            f"{small}-step chain of identity pandas function steps ({ROWS:,} rows), tracker "
            "and events on, one no-op hook, default settings, vs Kedro SequentialRunner",
            small,
            chain,
            0.5,
        ),
        _versus_kedro(
            f"{small}-step fan-out/fan-in, as above (4 workers) vs Kedro ThreadRunner",
            small,
            fan,
            None,
        ),
    ]
    return found if quick else found + _large_rows(large, pairs)


def _large_rows(large: int, pairs: int) -> list[Row]:
    chain = overhead("chain", large, "sequential", max(3, pairs - 2))
    return [
        _versus_kedro(
            f"{large:,}-step chain, as above, vs Kedro SequentialRunner", large, chain, None
        )
    ]


def flatness_row(small: int, large: int, pairs: int) -> Row:
    """Per-step time of the long chain against the short one, run in turn: wall-clock
    time, and the process's CPU time, which a loaded machine disturbs less."""
    short, long = our_steps(chain_edges(small)), our_steps(chain_edges(large))
    run_ours(short)  # warm imports and caches
    wall: dict[int, list[float]] = {small: [], large: []}
    cpu: dict[int, list[float]] = {small: [], large: []}
    for _ in range(pairs):
        for steps, n in ((short, small), (long, large)):
            wall_started, cpu_started = time.perf_counter(), time.process_time()
            run_ours(steps)
            wall[n].append((time.perf_counter() - wall_started) / n)
            cpu[n].append((time.process_time() - cpu_started) / n)
    ratio = median_ratio(wall[large], wall[small])
    return Row(
        f"per-step overhead of a {large:,}-step chain vs a {small}-step chain (as above)",
        f"{small}-step chain, same invocation",
        f"{statistics.median(wall[large]) * 1000:.2f} ms vs "
        f"{statistics.median(wall[small]) * 1000:.2f} ms per step; CPU time "
        f"{statistics.median(cpu[large]) * 1000:.2f} ms vs "
        f"{statistics.median(cpu[small]) * 1000:.2f} ms, " + ratio_cell(cpu[large], cpu[small]),
        ratio_cell(wall[large], wall[small]),
        "<= 1.20x",
        met(ratio <= 1.2 and median_ratio(cpu[large], cpu[small]) <= 1.2),
    )


def flatness_rows(quick: bool = False) -> list[Row]:
    """The flatness row alone (``--only flat``): the Kedro rows take long at 2,000 steps."""
    return [flatness_row(200, 1_000 if quick else 2_000, 5)]


# --------------------------------------------------------------------------- scenario 4

# A CPU-heavy query of its own on each branch: a cross join of two ranges, aggregated.
HEAVY_SQL = (
    "SELECT COUNT(*) AS n, SUM(a.id * b.id % 7) AS s FROM "
    "(SELECT id FROM range({n}) AS t(id)) a CROSS JOIN (SELECT id FROM range({n}) AS t(id)) b "
    "WHERE (a.id + b.id) % 3 = {i}"
)


def branch_steps(kind: str, size: int) -> list[Step]:
    """Four independent SQL steps; each reads a one-row frame so that it has an input."""
    steps = [
        Step(
            layer="transform",
            name="seed",
            type="function",
            value=f"{HERE}:frame",
            outputs={"data": "seed"},
        )
    ]
    for i in range(4):
        query = HEAVY_SQL.format(n=size, i=i % 3)
        if kind == "spark":  # Spark SQL's range is a table-valued function too
            query = query.replace(f"range({size}) AS t(id)", f"range({size})")
        steps.append(
            Step(
                layer="transform",
                name=f"branch{i}",
                type="sql",
                value=query + " AND (SELECT COUNT(*) FROM seed) > 0",
                inputs={"seed": "seed"},
                outputs={"data": f"out{i}"},
                engine=kind,
            )
        )
    return steps


def _branch_runner(kind: str, size: int, parallel: bool, spark: object = None):
    config = PipelineConfig(
        name=f"branches_{kind}",
        steps=tuple(branch_steps(kind, size)),
        engine="pandas",
        settings=Settings(max_workers=2, parallel=parallel, duckdb_threads=1),
    )
    options = {"spark": spark} if spark is not None else {}

    def run() -> None:
        Orchestrator(pipeline=config, enable_tracker=True, **options).execute(raise_on_error=True)

    return run


def parallel_rows(quick: bool = False) -> list[Row]:
    """Scenario 4: four independent branches, ``max_workers=2`` vs ``parallel=False``."""
    pairs = 5
    size = 2_000 if quick else 4_000
    sequential = _branch_runner("pandas", size, parallel=False)
    parallel = _branch_runner("pandas", size, parallel=True)
    times_seq, times_par = interleaved(sequential, parallel, pairs=pairs)
    speedup = median_ratio(times_seq, times_par)
    found = [
        Row(
            f"4 independent CPU-heavy DuckDB SQL steps (one DuckDB thread each, {size:,}² "
            "cross join): max_workers=2 vs parallel=False",
            "parallel=False, same invocation",
            f"{statistics.median(times_par):.2f} s vs {statistics.median(times_seq):.2f} s",
            "speed-up " + ratio_cell(times_seq, times_par),
            ">= 1.70x speed-up",
            met(speedup >= 1.7),
        )
    ]
    return (
        found
        + [_native_branch_row(size, pairs)]
        + _spark_branch_rows(size // 2 if quick else size, pairs)
    )


def _native_queries(size: int, threads: int) -> Callable[[], None]:
    """The four branch queries on DuckDB directly (one thread each), ``threads`` at once:
    what two cores give the same work without the framework."""
    from concurrent.futures import ThreadPoolExecutor

    import duckdb

    queries = [HEAVY_SQL.format(n=size, i=i % 3) for i in range(4)]

    def one(query: str) -> None:
        connection = duckdb.connect(":memory:")
        try:
            connection.execute("SET threads = 1")
            connection.execute("SET enable_progress_bar = false")
            connection.sql(query).fetchall()
        finally:
            connection.close()

    def run() -> None:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(one, queries))

    return run


def _native_branch_row(size: int, pairs: int) -> Row:
    times_seq, times_par = interleaved(
        _native_queries(size, 1), _native_queries(size, 2), pairs=pairs
    )
    return Row(
        "the same 4 queries on DuckDB directly (one thread each): 2 Python threads vs 1, "
        "what this machine allows",
        "1 thread, same invocation",
        f"{statistics.median(times_par):.2f} s vs {statistics.median(times_seq):.2f} s",
        "speed-up " + ratio_cell(times_seq, times_par),
        "report (the limit of the row above)",
        "—",
    )


def _spark_branch_rows(size: int, pairs: int) -> list[Row]:
    from odibi_core.engine.session import get_spark

    spark = get_spark()
    sequential = _branch_runner("spark", size, parallel=False, spark=spark)
    parallel = _branch_runner("spark", size, parallel=True, spark=spark)
    times_seq, times_par = interleaved(sequential, parallel, pairs=pairs)
    return [
        Row(
            f"4 independent Spark SQL steps ({size:,}² cross join each), warm local session: "
            "max_workers=2 vs parallel=False",
            "parallel=False, same invocation",
            f"{statistics.median(times_par):.2f} s vs {statistics.median(times_seq):.2f} s",
            "speed-up " + ratio_cell(times_seq, times_par),
            "report",
            "—",
        )
    ]


# --------------------------------------------------------------------------- scenario 7

# Runs ``odibi run`` in this fresh process, timing how long the session took to obtain
# (JVM start-up) and how long steps waited for it; ``off`` obtains it on first need only,
# as before the run started it in the background.
_CLI = """
import json, sys, time
from odibi_core.engine import session
warm, out, argv = sys.argv[1] == "on", sys.argv[2], sys.argv[3:]
timing = {"obtain": [], "wait": []}

def timed(fn, key):
    def call(*args, **kwargs):
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            timing[key].append(time.perf_counter() - started)
    return call

session.obtain_session = timed(session.obtain_session, "obtain")
session.SessionHandle.get = timed(session.SessionHandle.get, "wait")
if not warm:
    session.SessionHandle.start = lambda self: None
from odibi_core.cli import main
try:
    code = main(argv)
finally:
    with open(out, "w") as handle:
        json.dump(timing, handle)
sys.exit(code)
"""


def _example_run(folder: Path, warm: bool, runs: list[int]) -> dict[str, float]:
    """One ``odibi run`` of the example in a fresh process and a fresh warehouse."""
    runs[0] += 1
    work = folder / f"run{runs[0]}"
    work.mkdir()
    (work / "data").symlink_to(ROOT / "pipelines" / "data")
    (work / "pipeline.yaml").write_text((ROOT / "pipelines" / "customer_pipeline.yaml").read_text())
    timing = work / "timing.json"
    command = [sys.executable, "-c", _CLI, "on" if warm else "off", str(timing)]
    started = time.perf_counter()
    subprocess.run(
        [*command, "run", "pipeline.yaml", "--quiet"],
        cwd=work,
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    total = time.perf_counter() - started
    measured = json.loads(timing.read_text())
    return {
        "total": total,
        "jvm": max(measured["obtain"], default=0.0),
        "wait": sum(measured["wait"]),
    }


def example_measure(pairs: int) -> dict[str, list[dict[str, float]]]:
    """Warm-up off (A) and on (B) in turn, each run in a fresh process."""
    subprocess.run([sys.executable, str(ROOT / "pipelines" / "generate_data.py")], check=True)
    runs = [0]
    measured: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _example_run(folder, True, runs)  # a warm machine: jars cached, files in the page cache
        for _ in range(pairs):
            measured["off"].append(_example_run(folder, False, runs))
            measured["on"].append(_example_run(folder, True, runs))
    return measured


def example_rows(quick: bool = False) -> list[Row]:
    """Fix 2 and scenario 7: ``make run``'s pipeline end to end, warm-up on against off."""
    measured = example_measure(pairs=3 if quick else 5)
    off = [m["total"] for m in measured["off"]]
    on = [m["total"] for m in measured["on"]]
    jvm = statistics.median(m["jvm"] for m in measured["on"])
    exposed_on = statistics.median(m["wait"] for m in measured["on"])
    exposed_off = statistics.median(m["wait"] for m in measured["off"])
    total = statistics.median(on)
    return [
        Row(
            "example pipeline (`make run`'s `odibi run`, fresh process): Spark session started "
            "in the background as the run begins vs on the first Spark step",
            "session on first need, same invocation",
            f"{total:.1f} s vs {statistics.median(off):.1f} s; steps waited "
            f"{exposed_on:.1f} s vs {exposed_off:.1f} s for the session",
            ratio_cell(on, off),
            "< 1.00x (report)",
            met(median_ratio(on, off) < 1.0),
        ),
        Row(
            "example pipeline end to end from a warm machine: JVM start-up share",
            "the run's total",
            f"{total:.1f} s in total; session start-up {jvm:.1f} s "
            f"({jvm / total:.0%}), of which steps waited {exposed_on:.1f} s "
            f"({exposed_on / total:.0%})",
            "—",
            "report",
            "—",
        ),
    ]


__all__ = ["example_rows", "flatness_rows", "parallel_rows", "rows"]
