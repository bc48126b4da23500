"""Benchmarks. Each figure is a ratio against a baseline measured in the same invocation,
because wall-clock time on a shared machine is noisy.

    .venv/bin/python bench/run.py                 # every scenario (make bench)
    .venv/bin/python bench/run.py --quick         # smaller sizes, fewer pairs (make bench-quick)
    .venv/bin/python bench/run.py --only chain    # one scenario; other rows of the table stay

Each scenario is a callable in ``SCENARIOS`` taking ``quick`` and returning rows; its rows
go to ``bench/results/<date>.json`` and to the table in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import orchestration, spark_pipeline, tpch  # noqa: E402
from bench.measure import Row, report, spark_jobs  # noqa: E402

from odibi_core import Step  # noqa: E402
from odibi_core.engine import pandas_engine  # noqa: E402
from odibi_core.engine.session import get_spark  # noqa: E402
from odibi_core.events.bus import EventBus  # noqa: E402
from odibi_core.orchestrator import Orchestrator  # noqa: E402


def best_of(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def small_groupby(folder: Path) -> tuple[float, float]:
    """A 10,000-row group-by as a pipeline step: pandas/DuckDB vs local Spark."""
    rng = np.random.default_rng(7)
    pd.DataFrame({"k": rng.integers(0, 100, 10_000), "v": rng.random(10_000)}).to_parquet(
        folder / "small.parquet"
    )
    steps = [
        Step(
            layer="ingest",
            name="read",
            value=str(folder / "small.parquet"),
            outputs={"data": "raw"},
        ),
        Step(
            layer="transform",
            name="agg",
            type="sql",
            value="SELECT k, SUM(v) AS s, COUNT(*) AS n FROM raw GROUP BY k",
            inputs={"raw": "raw"},
            outputs={"data": "agg"},
        ),
        Step(layer="store", name="save", value=str(folder / "agg.parquet"), inputs={"data": "agg"}),
    ]
    spark = get_spark()

    def run(engine):
        return lambda: Orchestrator(steps=steps, engine_type=engine, spark=spark).execute(
            raise_on_error=True
        )

    run("spark")()  # warm the JVM
    return best_of(run("pandas")), best_of(run("spark"))


def parallel_vs_sequential() -> tuple[float, float]:
    """Four independent 0.25 s steps: the ready-set scheduler against one thread."""
    steps = [
        Step(
            layer="transform",
            name=f"s{i}",
            type="function",
            value="tests.funcs:sleep_then_rows",
            params={"seconds": 0.25},
            outputs={"data": f"k{i}"},
        )
        for i in range(4)
    ]
    parallel = best_of(
        lambda: Orchestrator(steps=steps, max_workers=4).execute(raise_on_error=True), 3
    )
    sequential = best_of(
        lambda: Orchestrator(steps=steps, parallel=False).execute(raise_on_error=True), 3
    )
    return parallel, sequential


def tracker_overhead(folder: Path, *, quick: bool = False) -> tuple[float, float, int, int]:
    """Spark ingest -> transform -> Delta store, tracked vs untracked: time and Spark jobs
    (``quick``: one warm-up round and the best of 3, not 2 and 5)."""
    rng = np.random.default_rng(11)
    pd.DataFrame({"id": np.arange(200_000), "v": rng.random(200_000)}).to_parquet(
        folder / "big.parquet"
    )
    spark = get_spark()

    def steps(target):
        return [
            Step(
                layer="ingest",
                name="read",
                value=str(folder / "big.parquet"),
                outputs={"data": "raw"},
            ),
            Step(
                layer="transform",
                name="double",
                type="sql",
                value="SELECT id, v * 2 AS v FROM raw WHERE id % 3 = 0",
                inputs={"raw": "raw"},
                outputs={"data": "doubled"},
            ),
            Step(
                layer="store",
                name="save",
                value=str(folder / target),
                params={"format": "delta"},
                inputs={"data": "doubled"},
            ),
        ]

    runs = iter(range(1_000))

    def run(tracked: bool) -> None:
        # A fresh target each time: overwriting an existing table runs different jobs.
        Orchestrator(
            steps=steps(f"t{next(runs)}"), engine_type="spark", spark=spark, enable_tracker=tracked
        ).execute(raise_on_error=True)

    def jobs_of(tracked: bool) -> int:
        return spark_jobs(spark, lambda: run(tracked))

    for _ in range(1 if quick else 2):  # warm both paths: JIT and class loading must not count
        run(True)
        run(False)
    tracked_time = best_of(lambda: run(True), 3 if quick else 5)
    untracked_time = best_of(lambda: run(False), 3 if quick else 5)
    return tracked_time, untracked_time, jobs_of(True), jobs_of(False)


def cached_example(rounds: int = 5) -> dict[str, list[float]]:
    """The example pipeline on Spark: a plain run, a cold run with the cache on (every step
    misses and is written to the cache), and the same run again (every step hits), in turn.

    Each round gets a fresh warehouse, so its cold run starts with an empty cache and its
    cached run finds the store's target as the cold run left it.
    """
    import shutil
    import subprocess

    from odibi_core.execution.context import RunContext

    spark = get_spark()
    measured: dict[str, list[float]] = {"plain": [], "cold": [], "cached": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        subprocess.run([sys.executable, str(ROOT / "pipelines" / "generate_data.py")], check=True)
        shutil.copytree(ROOT / "pipelines" / "data", folder / "data")
        shutil.copy(ROOT / "pipelines" / "customer_pipeline.yaml", folder / "pipeline.yaml")

        def run(warehouse: Path, *, hits: bool = False, **options) -> float:
            started = time.perf_counter()
            result = Orchestrator(
                pipeline=folder / "pipeline.yaml",
                engine_type="spark",
                spark=spark,
                context=RunContext(warehouse=warehouse),
                **options,
            ).execute(raise_on_error=True)
            elapsed = time.perf_counter() - started
            executed = set(result.node_states) - set(result.cached_nodes)
            if hits and executed:
                raise RuntimeError(f"a fully cached run executed {sorted(executed)}")
            return elapsed

        for warm in range(2):  # JIT and class loading count against neither variant
            run(folder / f"warm{warm}")
            run(folder / f"warm{warm}", enable_cache=True)
        for round_ in range(rounds):
            measured["plain"].append(run(folder / f"plain{round_}"))
            measured["cold"].append(run(folder / f"cache{round_}", enable_cache=True))
            measured["cached"].append(run(folder / f"cache{round_}", hits=True, enable_cache=True))
    return measured


def cache_rows(measured: dict[str, list[float]]) -> list[Row]:
    plain = measured["plain"]
    rows = []
    for variant, label in (("cold", "cold, cache on (all miss)"), ("cached", "fully cached")):
        ratios = [t / base for t, base in zip(measured[variant], plain, strict=True)]
        rows.append(
            Row(
                f"example pipeline on Spark (6 steps, merge store): {label} vs no cache",
                "run without cache",
                f"{statistics.median(measured[variant]):.2f} s vs {statistics.median(plain):.2f} s",
                f"{statistics.median(ratios):.2f}x the time (min {min(ratios):.2f}, "
                f"max {max(ratios):.2f}, {len(ratios)} interleaved rounds)",
            )
        )
    return rows


CHAIN_STEPS = 200


def chain_overhead(pairs: int = 11) -> dict[str, list[float]]:
    """A 200-step chain of identity pandas function steps, tracker and events on.

    Per-step overhead in ms (the run's time / 200), for three variants measured in turn
    (A B C A B C ...) so that drift on a shared machine hits all alike:
    ``shared`` hands every step the stored frame itself (as before inputs were private),
    ``private`` gives each step its own copy (deep, pandas' default mode), ``cow`` the
    same with pandas' copy-on-write mode on (a shallow copy).
    """
    steps = [
        Step(
            layer="transform",
            name="s0",
            type="function",
            value="bench.orchestration:frame",
            outputs={"data": "k0"},
        )
    ] + [
        Step(
            layer="transform",
            name=f"s{i}",
            type="function",
            value="bench.orchestration:identity",
            inputs={"data": f"k{i - 1}"},
            outputs={"data": f"k{i}"},
        )
        for i in range(1, CHAIN_STEPS)
    ]
    private_copy = pandas_engine._private_copy
    copy_ms: dict[str, list[float]] = {"private": [], "cow": []}

    def timed_copy(variant: str):
        def copy(frame: pd.DataFrame) -> pd.DataFrame:
            started = time.perf_counter()
            try:
                return private_copy(frame)
            finally:
                copy_ms[variant].append((time.perf_counter() - started) * 1000)

        return copy

    def run(variant: str) -> float:
        shared = variant == "shared"
        pandas_engine._private_copy = (lambda frame: frame) if shared else timed_copy(variant)
        bus = EventBus()
        bus.register_hook("node_complete", orchestration.on_node_complete)
        try:
            with pd.option_context("mode.copy_on_write", variant == "cow"):
                started = time.perf_counter()
                Orchestrator(
                    steps=steps, engine_type="pandas", enable_tracker=True, event_bus=bus
                ).execute(raise_on_error=True)
                return (time.perf_counter() - started) * 1000 / CHAIN_STEPS
        finally:
            pandas_engine._private_copy = private_copy

    variants = ("shared", "private", "cow")
    for variant in variants:  # warm imports and caches
        run(variant)
    measured: dict[str, list[float]] = {variant: [] for variant in variants}
    for _ in range(pairs):
        for variant in variants:
            measured[variant].append(run(variant))
    for variant, times in copy_ms.items():  # the copy alone, in ms per step
        measured[f"{variant}_copy"] = [statistics.median(times)]
    return measured


def chain_rows(measured: dict[str, list[float]]) -> list[Row]:
    shared = measured["shared"]
    rows = []
    for variant, label in (("private", "deep copy"), ("cow", "copy-on-write, shallow copy")):
        ratios = [after / before for after, before in zip(measured[variant], shared, strict=True)]
        rows.append(
            Row(
                f"200-step chain of identity pandas function steps (1,000 rows), tracker and "
                f"events on: private inputs ({label}) vs shared frame",
                "shared frame",
                f"{statistics.median(measured[variant]):.2f} ms vs "
                f"{statistics.median(shared):.2f} ms per step; the copy itself "
                f"{measured[f'{variant}_copy'][0]:.3f} ms",
                f"{statistics.median(ratios):.2f}x (min {min(ratios):.2f}, max {max(ratios):.2f}, "
                f"{len(ratios)} interleaved runs)",
            )
        )
    return rows


def basics_rows(quick: bool = False) -> list[Row]:
    """The first benchmarks: a small group-by on each engine, four sleeping steps in
    parallel, and the tracker's cost on a small Spark pipeline."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pandas_t, spark_t = small_groupby(folder)
        par_t, seq_t = parallel_vs_sequential()
        tracked_t, untracked_t, tracked_jobs, untracked_jobs = tracker_overhead(folder, quick=quick)
    return [
        Row(
            "10k-row group-by step, pandas/DuckDB vs local Spark",
            "Spark engine",
            f"{pandas_t * 1000:.0f} ms vs {spark_t * 1000:.0f} ms",
            f"{spark_t / pandas_t:.1f}x faster on pandas",
        ),
        Row(
            "4 independent 0.25 s steps, parallel vs `parallel=False`",
            "sequential run",
            f"{par_t:.2f} s vs {seq_t:.2f} s",
            f"{seq_t / par_t:.1f}x faster in parallel",
        ),
        Row(
            "Spark ingest→transform→Delta store (200k rows), tracker on vs off",
            "tracker off",
            f"{tracked_t:.2f} s vs {untracked_t:.2f} s",
            f"{tracked_t / untracked_t:.2f}x the time",
        ),
        Row(
            "Spark jobs for the same pipeline, tracker on vs off",
            "tracker off",
            f"{tracked_jobs} vs {untracked_jobs} jobs",
            f"{tracked_jobs - untracked_jobs:+d} job(s) of the tracker's own",
        ),
    ]


# Every scenario: a name for ``--only`` and a callable taking ``quick`` and returning rows.
SCENARIOS: dict[str, Callable[[bool], list[Row]]] = {
    "basics": basics_rows,
    "chain": lambda quick: chain_rows(chain_overhead(pairs=5 if quick else 11)),
    "cache": lambda quick: cache_rows(cached_example(rounds=5)),
    "orchestration": orchestration.rows,
    "flat": orchestration.flatness_rows,
    "parallel": orchestration.parallel_rows,
    "example": orchestration.example_rows,
    "spark_pipeline": spark_pipeline.rows,
    "engine_choice": spark_pipeline.engine_rows,
    "tpch": tpch.rows,
}
# Scenarios too slow for ``--quick`` (``make bench-quick``): fresh processes each.
SLOW = {"cache", "example", "spark_pipeline"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(SCENARIOS),
        help="run this scenario only (may be repeated); other rows of the table stay",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smaller sizes and fewer pairs (make bench-quick)"
    )
    args = parser.parse_args(argv)
    names = args.only or [n for n in SCENARIOS if not (args.quick and n in SLOW)]
    for name in names:
        print(f"== {name}", flush=True)
        report(SCENARIOS[name](args.quick))


if __name__ == "__main__":
    main()
