"""Benchmarks. Each figure is a ratio against a baseline measured in the same invocation,
because wall-clock time on a shared machine is noisy.

    .venv/bin/python bench/run.py            # prints a Markdown table, writes BENCHMARKS.md
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from odibi_core import Step  # noqa: E402
from odibi_core.engine.session import get_spark  # noqa: E402
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


def tracker_overhead(folder: Path) -> tuple[float, float, int, int]:
    """Spark ingest -> transform -> Delta store, tracked vs untracked: time and Spark jobs."""
    rng = np.random.default_rng(11)
    pd.DataFrame({"id": np.arange(200_000), "v": rng.random(200_000)}).to_parquet(
        folder / "big.parquet"
    )
    spark = get_spark()
    status = spark.sparkContext.statusTracker()

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
        Orchestrator(steps=steps(f"t{next(runs)}"), engine_type="spark", spark=spark,
                     enable_tracker=tracked).execute(raise_on_error=True)

    def jobs_of(tracked: bool) -> int:
        before = len(status.getJobIdsForGroup(None))
        run(tracked)
        return len(status.getJobIdsForGroup(None)) - before

    for _ in range(2):  # warm both paths: JIT and class loading must not count against either
        run(True)
        run(False)
    tracked_time = best_of(lambda: run(True), 5)
    untracked_time = best_of(lambda: run(False), 5)
    return tracked_time, untracked_time, jobs_of(True), jobs_of(False)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pandas_t, spark_t = small_groupby(folder)
        par_t, seq_t = parallel_vs_sequential()
        tracked_t, untracked_t, tracked_jobs, untracked_jobs = tracker_overhead(folder)
    rows = [
        (
            "10k-row group-by step, pandas/DuckDB vs local Spark",
            "Spark engine",
            f"{pandas_t * 1000:.0f} ms vs {spark_t * 1000:.0f} ms",
            f"{spark_t / pandas_t:.1f}x faster on pandas",
        ),
        (
            "4 independent 0.25 s steps, parallel vs `parallel=False`",
            "sequential run",
            f"{par_t:.2f} s vs {seq_t:.2f} s",
            f"{seq_t / par_t:.1f}x faster in parallel",
        ),
        (
            "Spark ingest→transform→Delta store (200k rows), tracker on vs off",
            "tracker off",
            f"{tracked_t:.2f} s vs {untracked_t:.2f} s",
            f"{tracked_t / untracked_t:.2f}x the time",
        ),
        (
            "Spark jobs for the same pipeline, tracker on vs off",
            "tracker off",
            f"{tracked_jobs} vs {untracked_jobs} jobs",
            f"{tracked_jobs - untracked_jobs:+d} job(s): the `limit` sample of the file scan",
        ),
    ]
    table = ["| benchmark | baseline | measured | ratio |", "|---|---|---|---|"]
    table += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    text = "\n".join(table)
    print(text)
    (ROOT / "BENCHMARKS.md").write_text(
        "# Benchmarks\n\nMeasured with `make bench` (median of repeated runs, 2-core machine). "
        "Ratios compare against a baseline run in the same invocation.\n\n" + text + "\n"
    )


if __name__ == "__main__":
    main()
