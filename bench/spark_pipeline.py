"""Spark benchmarks: the framework against hand-written PySpark, and engine choice.

Scenario 2 (``spark_pipeline``): 2,000,000 orders joined to 100,000 customers, aggregated,
ranked with a window and written to Delta. Hand-written PySpark, the framework with the
tracker off and with it on, in one interleaved loop on a warm session; a cold variant in
fresh processes; and the same pipeline over a local Spark Connect server, counting the
client-server round trips per step.

Scenario 3 (``engine_choice``): a 12-step pipeline over 10,000-50,000-row tables,
``auto`` against ``spark`` on a warm session, with and without the final Delta store.

The data is generated once with a fixed seed under ``bench/.data`` (never committed) and
reused by later runs.

    .venv/bin/python bench/spark_pipeline.py [warm|cold|connect|engine|profile] ...
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.measure import Row, median_ratio, met, ratio_cell, spark_jobs  # noqa: E402

DATA = ROOT / "bench" / ".data"  # ignored by git (its own .gitignore)
SEED = 13
FULL = (2_000_000, 100_000)  # orders, customers
QUICK = (200_000, 10_000)

# ----------------------------------------------------------------------------- data


def pipeline_data(size: tuple[int, int] = FULL) -> tuple[Path, Path]:
    """The orders and customers parquet files, written once (fixed seed) and reused."""
    orders_rows, customers_rows = size
    folder = DATA / f"spark_pipeline_{orders_rows}_{customers_rows}"
    orders, customers = folder / "orders.parquet", folder / "customers.parquet"
    if orders.exists() and customers.exists():
        return orders, customers
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    regions = np.array(["north", "south", "east", "west", "central"])
    segments = np.array(["retail", "smb", "enterprise"])
    pq.write_table(
        pa.table(
            {
                "customer_id": np.arange(customers_rows, dtype=np.int64),
                "region": regions[rng.integers(0, len(regions), customers_rows)],
                "segment": segments[rng.integers(0, len(segments), customers_rows)],
            }
        ),
        customers.with_suffix(".tmp"),
    )
    pq.write_table(
        pa.table(
            {
                "order_id": np.arange(orders_rows, dtype=np.int64),
                "customer_id": rng.integers(0, customers_rows, orders_rows, dtype=np.int64),
                "amount": np.round(rng.gamma(2.0, 40.0, orders_rows), 2),
                "quantity": rng.integers(1, 10, orders_rows, dtype=np.int64),
            }
        ),
        orders.with_suffix(".tmp"),
    )
    customers.with_suffix(".tmp").rename(customers)
    orders.with_suffix(".tmp").rename(orders)
    return orders, customers


TOTALS_SQL = (
    "SELECT c.region, c.segment, o.customer_id, SUM(o.amount) AS total, "
    "SUM(o.quantity) AS items, COUNT(*) AS orders "
    "FROM orders o JOIN customers c ON o.customer_id = c.customer_id "
    "GROUP BY c.region, c.segment, o.customer_id"
)
RANKED_SQL = (
    "SELECT *, RANK() OVER (PARTITION BY region ORDER BY total DESC) AS region_rank FROM totals"
)


def pipeline_steps(orders: Path, customers: Path, target: Path) -> list[Any]:
    from odibi_core import Step

    return [
        Step(layer="ingest", name="orders", value=str(orders), outputs={"data": "orders"}),
        Step(layer="ingest", name="customers", value=str(customers), outputs={"data": "cust"}),
        Step(
            layer="transform",
            name="totals",
            type="sql",
            value=TOTALS_SQL,
            inputs={"orders": "orders", "customers": "cust"},
            outputs={"data": "totals"},
        ),
        Step(
            layer="transform",
            name="ranked",
            type="sql",
            value=RANKED_SQL,
            inputs={"totals": "totals"},
            outputs={"data": "ranked"},
        ),
        Step(
            layer="store",
            name="save",
            value=str(target),
            params={"format": "delta"},
            inputs={"data": "ranked"},
        ),
    ]


def hand_written(spark: Any, orders: Path, customers: Path, target: Path) -> None:
    """What a PySpark user writes for the same pipeline."""
    spark.read.parquet(str(orders)).createOrReplaceTempView("bench_orders")
    spark.read.parquet(str(customers)).createOrReplaceTempView("bench_customers")
    totals = spark.sql(
        TOTALS_SQL.replace("FROM orders", "FROM bench_orders").replace(
            "JOIN customers", "JOIN bench_customers"
        )
    )
    totals.createOrReplaceTempView("bench_totals")
    ranked = spark.sql(RANKED_SQL.replace("FROM totals", "FROM bench_totals"))
    ranked.write.format("delta").mode("overwrite").save(str(target))


def framework(spark: Any, orders: Path, customers: Path, target: Path, *, tracked: bool) -> Any:
    from odibi_core.orchestrator import Orchestrator

    return succeeded(
        Orchestrator(
            steps=pipeline_steps(orders, customers, target),
            engine_type="spark",
            spark=spark,
            enable_tracker=tracked,
        )
    )


def succeeded(orchestrator: Any) -> Any:
    """Run it; a failure raises with each failed step's whole error, not a summary."""
    result = orchestrator.execute()
    if not result.success:
        raise RuntimeError(f"benchmark pipeline failed: {result.errors or result.error}")
    return result


# ----------------------------------------------------------------------------- warm


def interleaved_runs(
    variants: dict[str, Callable[[], Any]], *, pairs: int = 5, warmup: int = 1
) -> dict[str, list[float]]:
    """Each variant once per round, in turn (A B C A B C ...); seconds per run."""
    for _ in range(warmup):
        for run in variants.values():
            run()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(pairs):
        for name, run in variants.items():
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    return times


def warm(quick: bool = False) -> dict[str, Any]:
    """Hand-written vs tracker off vs tracker on, interleaved on one warm session."""
    from odibi_core.engine.session import get_spark

    orders, customers = pipeline_data(QUICK if quick else FULL)
    spark = get_spark()
    with tempfile.TemporaryDirectory(dir=DATA) as tmp:
        # A fresh target each run: overwriting an existing table runs other jobs.
        targets = iter(Path(tmp) / f"t{i}" for i in range(10_000))
        variants = {
            "hand": lambda: hand_written(spark, orders, customers, next(targets)),
            "off": lambda: framework(spark, orders, customers, next(targets), tracked=False),
            "on": lambda: framework(spark, orders, customers, next(targets), tracked=True),
        }
        times = interleaved_runs(variants, pairs=5, warmup=2 if quick else 1)
        jobs = {name: spark_jobs(spark, run) for name, run in variants.items()}
    return {"times": times, "jobs": jobs}


def _size_text(quick: bool) -> str:
    orders, customers = QUICK if quick else FULL
    return f"{orders:,} orders ⋈ {customers:,} customers"


def warm_rows(measured: dict[str, Any], quick: bool = False) -> list[Row]:
    times, jobs = measured["times"], measured["jobs"]
    hand = times["hand"]
    what = f"Spark pipeline ({_size_text(quick)}, aggregate, window, Delta), warm session"

    def figure(name: str) -> str:
        return f"{statistics.median(times[name]):.2f} s vs {statistics.median(hand):.2f} s"

    on_ratio = median_ratio(times["on"], hand)
    return [
        Row(
            f"{what}: tracker off",
            "hand-written PySpark",
            figure("off"),
            ratio_cell(times["off"], hand),
        ),
        Row(
            f"{what}: tracker on",
            "hand-written PySpark",
            figure("on"),
            ratio_cell(times["on"], hand),
            "<= 1.05x",
            met(on_ratio <= 1.05),
        ),
        Row(
            f"{what}: Spark jobs, tracker on vs off",
            "tracker off",
            f"{jobs['on']} vs {jobs['off']} jobs (hand-written {jobs['hand']})",
            f"{jobs['on'] - jobs['off']:+d} job(s)",
            "+0 jobs",
            met(jobs["on"] <= jobs["off"]),
        ),
    ]


# ----------------------------------------------------------------------------- cold

PIPELINE_YAML = """\
pipeline: bench_spark_pipeline
engine: spark
steps:
  - {{layer: ingest, name: orders, value: "{orders}", outputs: {{data: orders}}}}
  - {{layer: ingest, name: customers, value: "{customers}", outputs: {{data: cust}}}}
  - layer: transform
    name: totals
    type: sql
    value: "{totals}"
    inputs: {{orders: orders, customers: cust}}
    outputs: {{data: totals}}
  - layer: transform
    name: ranked
    type: sql
    value: "{ranked}"
    inputs: {{totals: totals}}
    outputs: {{data: ranked}}
  - layer: store
    name: save
    value: "{target}"
    params: {{format: delta}}
    inputs: {{data: ranked}}
"""

# What a user submits with spark-submit: its own session, with the settings the framework
# gives a local session (Delta, shuffle partitions, memory), so only the framework differs.
HAND_SCRIPT = """\
import sys
from pyspark.sql import SparkSession
from odibi_core.engine.session import local_spark_conf

sys.path.insert(0, {bench!r})
from spark_pipeline import hand_written

orders, customers, target, warehouse = sys.argv[1:5]
builder = SparkSession.builder.master("local[*]").appName("hand_written")
for key, value in local_spark_conf(warehouse).items():
    builder = builder.config(key, value)
spark = builder.getOrCreate()
hand_written(spark, orders, customers, target)
spark.stop()
"""


def cold(quick: bool = False, pairs: int = 5) -> dict[str, list[float]]:
    """Each run a fresh process: ``odibi run`` against a spark-submit-style script."""
    orders, customers = pipeline_data(QUICK if quick else FULL)
    odibi = Path(sys.executable).parent / "odibi"
    with tempfile.TemporaryDirectory(dir=DATA) as tmp:
        folder = Path(tmp)
        script = folder / "hand.py"
        script.write_text(HAND_SCRIPT.format(bench=str(ROOT / "bench")))
        runs = iter(range(10_000))

        def hand() -> None:
            n = next(runs)
            command = [sys.executable, str(script), str(orders), str(customers)]
            _run([*command, str(folder / f"h{n}"), str(folder / f"wh{n}")], folder)

        def ours() -> None:
            n = next(runs)
            yaml = folder / f"p{n}.yaml"
            yaml.write_text(
                PIPELINE_YAML.format(
                    orders=orders,
                    customers=customers,
                    totals=TOTALS_SQL,
                    ranked=RANKED_SQL,
                    target=folder / f"o{n}",
                )
            )
            command = [str(odibi), "run", str(yaml), "--no-state", "--quiet"]
            _run(command, folder, ODIBI_WAREHOUSE=str(folder / f"wh{n}"))

        return interleaved_runs({"hand": hand, "odibi": ours}, pairs=pairs, warmup=0)


def _run(command: list[str], cwd: Path, **env: str) -> None:
    done = subprocess.run(
        command, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-3000:]}")


def cold_rows(measured: dict[str, list[float]], quick: bool = False) -> list[Row]:
    hand, ours = measured["hand"], measured["odibi"]
    return [
        Row(
            f"Spark pipeline ({_size_text(quick)}), cold: `odibi run --no-state` (tracker on) "
            "in a fresh process",
            "spark-submit-style script, fresh process",
            f"{statistics.median(ours):.1f} s vs {statistics.median(hand):.1f} s",
            ratio_cell(ours, hand),
        )
    ]


# ----------------------------------------------------------------------------- Connect


class RpcCounter:
    """A gRPC client interceptor counting the Spark Connect client's calls by method.

    Every client-server round trip of pyspark's Connect client (ExecutePlan, AnalyzePlan,
    Config, ReattachExecute, ReleaseExecute, ...) goes through the channel, so counting
    at the channel counts them all, whichever code made them.
    """

    def __init__(self) -> None:
        import grpc

        counter = self

        class _Interceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
            def intercept_unary_unary(self, continuation, details, request):
                counter.add(details.method)
                return continuation(details, request)

            def intercept_unary_stream(self, continuation, details, request):
                counter.add(details.method)
                return continuation(details, request)

        self.interceptor = _Interceptor()
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()

    def add(self, method: str) -> None:
        with self._lock:
            self.calls[method.rsplit("/", 1)[-1]] += 1

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.calls)


def connect_round_trips(quick: bool = False) -> dict[str, Any]:
    """Round trips per step over a local Spark Connect server, tracker on and off.

    Steps run one at a time (``parallel=False``) so each call is counted against the step
    that made it, by a runner layer outermost around the tracker's.
    """
    from tests.connect.server import start_server  # the test suite's launcher

    orders, customers = pipeline_data(QUICK)  # round trips do not depend on the size
    with tempfile.TemporaryDirectory(dir=DATA) as tmp:
        folder = Path(tmp)
        server = start_server(folder)
        try:
            return _count_over(server.url, orders, customers, folder)
        finally:
            server.stop()


def _count_over(url: str, orders: Path, customers: Path, folder: Path) -> dict[str, Any]:
    from pyspark.sql.connect.client import DefaultChannelBuilder
    from pyspark.sql.connect.session import SparkSession

    from odibi_core.orchestrator import Orchestrator

    counter = RpcCounter()
    # pyspark.sql.SparkSession.builder.remote() sets this; the Connect builder that takes a
    # channel (to add the interceptor) does not, and pyspark.sql.functions needs it. It is
    # taken away again after: left set, every later getOrCreate() in this process (the
    # scenarios after this one) would ask for a remote session.
    mode_was_set = "SPARK_CONNECT_MODE_ENABLED" in os.environ
    os.environ["SPARK_CONNECT_MODE_ENABLED"] = "1"
    builder = DefaultChannelBuilder(url)
    builder.add_interceptor(counter.interceptor)
    spark = SparkSession.builder.channelBuilder(builder).getOrCreate()
    per_step: dict[str, Counter[str]] = {}

    def layer(inner: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def run(call: Any) -> Any:
            before = counter.snapshot()
            try:
                return inner(call)
            finally:
                per_step[call.step.name] = counter.snapshot() - before

        return run

    measured: dict[str, Any] = {}
    try:
        for tracked in (True, False, True, False):  # the first two warm the server
            per_step.clear()
            before = counter.snapshot()
            succeeded(
                Orchestrator(
                    steps=pipeline_steps(orders, customers, folder / f"c{tracked}{len(measured)}"),
                    engine_type="spark",
                    spark=spark,
                    enable_tracker=tracked,
                    parallel=False,
                    layers=[layer],
                )
            )
            total = counter.snapshot() - before
            measured["on" if tracked else "off"] = {
                "steps": {name: dict(calls) for name, calls in per_step.items()},
                "total": dict(total),
            }
        before = counter.snapshot()
        hand_written(spark, orders, customers, folder / "hand")
        measured["hand"] = {"total": dict(counter.snapshot() - before)}
    finally:
        spark.stop()
        if not mode_was_set:
            os.environ.pop("SPARK_CONNECT_MODE_ENABLED", None)
    return measured


# ReleaseExecute frees a finished result on the server from a background thread of the
# client: no one waits for it, so it is counted apart from the round trips a step waits on.
_RELEASE = "ReleaseExecute"


def connect_rows(measured: dict[str, Any]) -> list[Row]:
    on, off = measured["on"], measured["off"]
    rows = [
        _round_trip_row(f"step `{step}`", on["steps"][step], off["steps"].get(step, {}))
        for step in on["steps"]
    ]
    hand = _waited(measured["hand"]["total"])
    rows.append(
        _round_trip_row(
            "whole run (steps, settling, session)",
            on["total"],
            off["total"],
            f"; hand-written PySpark {hand}",
        )
    )
    return rows


def _round_trip_row(what: str, on: dict[str, int], off: dict[str, int], extra: str = "") -> Row:
    return Row(
        f"Spark Connect round trips waited on, {what}: tracker on",
        "tracker off",
        f"{_waited(on)} vs {_waited(off)}{extra} (on: {_calls_text(on)}; off: {_calls_text(off)})",
        f"{_waited(on) - _waited(off):+d} round trip(s)",
    )


def _waited(calls: dict[str, int]) -> int:
    return sum(n for name, n in calls.items() if name != _RELEASE)


def _calls_text(calls: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in sorted(calls.items()))


# ----------------------------------------------------------------------------- engine choice

ENGINE_SQL = {  # name: (inputs, SQL), in order; 9 SQL steps after 3 ingests
    "valid_orders": ({"o": "orders"}, "SELECT * FROM o WHERE quantity > 0 AND day >= 0"),
    "priced": (
        {"o": "valid_orders", "p": "products"},
        "SELECT o.*, p.category, o.quantity * p.price AS amount "
        "FROM o JOIN p ON o.product_id = p.product_id",
    ),
    "enriched": (
        {"o": "priced", "c": "customers"},
        "SELECT o.*, c.region, c.segment FROM o JOIN c ON o.customer_id = c.customer_id",
    ),
    "by_region_day": (
        {"e": "enriched"},
        "SELECT region, day, SUM(amount) AS total, COUNT(*) AS orders FROM e GROUP BY region, day",
    ),
    "by_customer": (
        {"e": "enriched"},
        "SELECT customer_id, region, segment, SUM(amount) AS total FROM e "
        "GROUP BY customer_id, region, segment",
    ),
    "ranked": (
        {"c": "by_customer"},
        "SELECT *, RANK() OVER (PARTITION BY region ORDER BY total DESC) AS r FROM c",
    ),
    "top": ({"r": "ranked"}, "SELECT * FROM r WHERE r <= 100"),
    "by_segment": (
        {"c": "by_customer"},
        "SELECT segment, region, AVG(total) AS mean_total FROM c GROUP BY segment, region",
    ),
    "report": (
        {"t": "top", "s": "by_segment"},
        "SELECT t.customer_id, t.region, t.segment, t.total, t.total / s.mean_total AS vs_mean "
        "FROM t JOIN s ON t.segment = s.segment AND t.region = s.region",
    ),
}


def engine_data() -> dict[str, Path]:
    """Orders (50,000 rows), customers (10,000) and products (20,000), fixed seed."""
    folder = DATA / "engine_choice"
    paths = {name: folder / f"{name}.parquet" for name in ("orders", "customers", "products")}
    if all(path.exists() for path in paths.values()):
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    tables = {
        "orders": {
            "order_id": np.arange(50_000, dtype=np.int64),
            "customer_id": rng.integers(0, 10_000, 50_000, dtype=np.int64),
            "product_id": rng.integers(0, 20_000, 50_000, dtype=np.int64),
            "quantity": rng.integers(1, 10, 50_000, dtype=np.int64),
            "day": rng.integers(0, 365, 50_000, dtype=np.int64),
        },
        "customers": {
            "customer_id": np.arange(10_000, dtype=np.int64),
            "region": np.array(["north", "south", "east", "west"])[rng.integers(0, 4, 10_000)],
            "segment": np.array(["retail", "smb", "enterprise"])[rng.integers(0, 3, 10_000)],
        },
        "products": {
            "product_id": np.arange(20_000, dtype=np.int64),
            "category": np.array(["a", "b", "c", "d", "e"])[rng.integers(0, 5, 20_000)],
            "price": np.round(rng.uniform(1, 100, 20_000), 2),
        },
    }
    for name, columns in tables.items():
        pq.write_table(pa.table(columns), paths[name].with_suffix(".tmp"))
        paths[name].with_suffix(".tmp").rename(paths[name])
    return paths


def engine_steps(paths: dict[str, Path], target: Path | None) -> list[Any]:
    """3 ingests, 9 SQL steps and, with a ``target``, a store to Delta (12 steps without)."""
    from odibi_core import Step

    steps = [
        Step(layer="ingest", name=name, value=str(path), outputs={"data": name})
        for name, path in paths.items()
    ]
    steps += [
        Step(
            layer="transform",
            name=name,
            type="sql",
            value=sql,
            inputs=inputs,
            outputs={"data": name},
        )
        for name, (inputs, sql) in ENGINE_SQL.items()
    ]
    if target is not None:
        steps.append(
            Step(
                layer="store",
                name="save",
                value=str(target),
                params={"format": "delta"},
                inputs={"data": "report"},
            )
        )
    return steps


def engine_choice(quick: bool = False) -> dict[str, list[float]]:
    """``auto`` against ``spark`` on a warm session, with and without the Delta store.

    Without the store the run's result is collected (``report`` as Arrow), as a caller
    would: otherwise Spark's lazy steps would run nothing at all.
    """
    from odibi_core.engine.session import get_spark
    from odibi_core.orchestrator import Orchestrator

    paths, spark = engine_data(), get_spark()
    with tempfile.TemporaryDirectory(dir=DATA) as tmp:
        targets = iter(Path(tmp) / f"t{i}" for i in range(10_000))

        def run(engine: str, store: bool) -> Callable[[], Any]:
            def once() -> None:
                result = succeeded(
                    Orchestrator(
                        steps=engine_steps(paths, next(targets) if store else None),
                        engine_type=engine,
                        spark=spark,
                    )
                )
                if not store:
                    frame = result.data_map["report"]
                    frame.toArrow() if hasattr(frame, "toArrow") else len(frame)

            return once

        # --quick leaves out the runs with the store: the target is on the runs without it.
        variants = {
            f"{engine}_{'store' if store else 'nostore'}": run(engine, store)
            for store in ((False,) if quick else (False, True))
            for engine in ("spark", "auto")
        }
        return interleaved_runs(variants, pairs=5, warmup=1)


def engine_rows(quick: bool = False) -> list[Row]:
    times = engine_choice(quick)
    found = []
    for store, label, target in (("nostore", "without", ">= 10x faster"), ("store", "with", "—")):
        if f"spark_{store}" not in times:
            continue
        spark_t, auto_t = times[f"spark_{store}"], times[f"auto_{store}"]
        speedup = median_ratio(spark_t, auto_t)
        found.append(
            Row(
                f"12-step pipeline over 10k-50k-row tables, {label} the Delta store: "
                "`auto` (speed-up over `spark`)",
                "`spark`, warm session",
                f"{statistics.median(auto_t):.2f} s vs {statistics.median(spark_t):.2f} s",
                f"{ratio_cell(spark_t, auto_t)} faster",
                target,
                met(speedup >= 10) if store == "nostore" else "—",
            )
        )
    return found


# ----------------------------------------------------------------------------- registry


def rows(quick: bool = False) -> list[Row]:
    """Scenario 2: warm (interleaved), cold (fresh processes) and Spark Connect."""
    found = warm_rows(warm(quick), quick)
    found += cold_rows(cold(quick), quick)
    found += connect_rows(connect_round_trips(quick))
    return found


def main(argv: list[str]) -> None:
    from bench.measure import report

    what, quick = (argv[0] if argv else "warm"), "--quick" in argv
    if what == "warm":
        report(warm_rows(warm(quick), quick))
    elif what == "cold":
        report(cold_rows(cold(quick), quick))
    elif what == "connect":
        report(connect_rows(connect_round_trips(quick)))
    elif what == "engine":
        report(engine_rows(quick))
    else:
        report(rows(quick))


if __name__ == "__main__":
    main(sys.argv[1:])
