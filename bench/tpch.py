"""Scenario 8 (``tpch``): the 22 TPC-H queries, each as a pipeline, against native runs.

Each query is a pipeline of one parquet ingest per table it reads (the logical key is the
table's name) and one SQL step holding the query's text (``bench/tpch_queries/qNN.sql``,
written from the specification with its validation parameters, in syntax both Spark SQL
and DuckDB accept). It runs through the pandas engine and through the Spark engine on the
warm session, tracker on, and its output is collected as pandas. The baselines run in the
same invocation: DuckDB natively (a fresh connection, views over ``read_parquet``) and
Spark SQL natively on the same session (``spark.read.parquet`` temp views).

Every engine's answer is checked against its native run's (same rows in any order, numbers
to a relative 1e-6). Timing pairs whole rounds of the 22 queries, A B A B, and keeps each
query's time too; the Spark side's first round warms the JVM and is not counted.

The data comes from ``tpchgen-cli`` (the ``bench`` extra), generated once under
``bench/.data/tpch-sf<scale>/`` (one parquet file per table) and reused.

    .venv/bin/python bench/tpch.py [--quick] [--pairs N] [--engines pandas,spark]
"""

from __future__ import annotations

import argparse
import datetime
import decimal
import math
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.measure import Row, median_ratio, met, ratio_cell, report, save_results  # noqa: E402

DATA = ROOT / "bench" / ".data"
QUERIES = Path(__file__).resolve().with_name("tpch_queries")
TABLES = ("customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier")
FULL_SCALE, QUICK_SCALE = 1, 0.1
PAIRS = 5
RELATIVE_TOLERANCE = 1e-6

# Each engine against its native baseline: (engine, baseline, target ratio).
SIDES = {"pandas": ("duckdb", 5.0), "spark": ("spark_sql", 1.05)}
LABELS = {
    "pandas": "pandas engine",
    "spark": "Spark engine",
    "duckdb": "native DuckDB",
    "spark_sql": "native Spark SQL",
}

# ----------------------------------------------------------------------------- data


def tpch_data(scale: float) -> Path:
    """The eight tables as parquet at ``scale``, generated once by tpchgen-cli and reused."""
    folder = DATA / f"tpch-sf{scale:g}"
    if all((folder / f"{table}.parquet").exists() for table in TABLES):
        return folder
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    command = [_tpchgen(), "parquet", "-s", f"{scale:g}", "-o", str(partial), "--quiet"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr}")
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return folder


def _tpchgen() -> str:
    beside = Path(sys.executable).with_name("tpchgen-cli")
    found = str(beside) if beside.exists() else shutil.which("tpchgen-cli")
    if found is None:
        raise RuntimeError(
            "the TPC-H scenario needs tpchgen-cli, which is in neither the virtualenv nor "
            "PATH: install the bench extra (`pip install -e '.[bench]'`, or `make bench-deps`)"
        )
    return found


# ----------------------------------------------------------------------------- queries


@dataclass(frozen=True)
class Query:
    """One TPC-H query: its name (``q01``), its Spark SQL text and the tables it reads."""

    name: str
    sql: str
    tables: tuple[str, ...]


def load_queries(folder: Path = QUERIES) -> list[Query]:
    """The 22 queries in order; the tables each reads come from its parsed SQL."""
    import sqlglot
    from sqlglot import exp

    found = []
    for path in sorted(folder.glob("q*.sql")):
        sql = path.read_text()
        names = {
            table.name.lower() for table in sqlglot.parse_one(sql, read="spark").find_all(exp.Table)
        }
        found.append(Query(path.stem, sql, tuple(sorted(names & set(TABLES)))))
    if len(found) != 22:
        raise RuntimeError(f"expected the 22 TPC-H queries in {folder}, found {len(found)}")
    return found


# ----------------------------------------------------------------------------- runners

Runner = Callable[[Query], pd.DataFrame]


def native_duckdb(folder: Path) -> Runner:
    """What a DuckDB user writes: a fresh connection, a view per table, the query, ``.df()``."""
    import duckdb

    def run(query: Query) -> pd.DataFrame:
        connection = duckdb.connect()
        try:
            for table in query.tables:
                path = folder / f"{table}.parquet"
                connection.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{path}')")
            return connection.sql(query.sql).df()
        finally:
            connection.close()

    return run


def native_spark_sql(spark: Any, folder: Path) -> Runner:
    """What a PySpark user writes: a temp view per table, ``spark.sql(q).toPandas()``."""

    def run(query: Query) -> pd.DataFrame:
        for table in query.tables:
            spark.read.parquet(str(folder / f"{table}.parquet")).createOrReplaceTempView(table)
        return spark.sql(query.sql).toPandas()

    return run


def query_steps(query: Query, folder: Path) -> list[Any]:
    """One parquet ingest per table (logical key = the table's name) and one SQL step."""
    from odibi_core import Step

    steps = [
        Step(
            layer="ingest",
            name=f"read_{table}",
            value=str(folder / f"{table}.parquet"),
            outputs={"data": table},
        )
        for table in query.tables
    ]
    steps.append(
        Step(
            layer="transform",
            name=query.name,
            type="sql",
            value=query.sql,
            inputs={table: table for table in query.tables},
            outputs={"data": "answer"},
        )
    )
    return steps


def through_engine(engine_type: str, folder: Path, spark: Any = None) -> Runner:
    """The query as a pipeline on ``engine_type``, tracker on; the answer as pandas."""
    from odibi_core.orchestrator import Orchestrator

    options = {"spark": spark} if spark is not None else {}

    def run(query: Query) -> pd.DataFrame:
        steps = query_steps(query, folder)
        result = Orchestrator(steps=steps, engine_type=engine_type, **options).execute()
        if not result.success:
            raise RuntimeError(
                f"TPC-H {query.name} failed on the {engine_type} engine: "
                f"{result.errors or result.error}"
            )
        return as_pandas(result.data_map["answer"])

    return run


def as_pandas(frame: Any) -> pd.DataFrame:
    """A run's output as pandas, whatever form the engine keeps it in."""
    if isinstance(frame, pd.DataFrame):
        return frame
    for method in ("toPandas", "to_pandas", "df"):  # Spark, Arrow, a DuckDB relation
        if hasattr(frame, method):
            return getattr(frame, method)()
    raise TypeError(f"cannot collect a {type(frame).__name__} as pandas")


# ----------------------------------------------------------------------------- answers


def _plain(value: Any) -> Any:
    """A cell as a plain comparable value: decimals as floats, dates as ISO text."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (datetime.date, datetime.datetime, pd.Timestamp)):
        return pd.Timestamp(value).isoformat()
    if hasattr(value, "item"):  # a numpy scalar
        return _plain(value.item())
    return value


def _rows(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    """The frame's rows as plain tuples, sorted by every column (numbers rounded to seven
    significant digits for the sort only, so that last-digit noise cannot reorder rows)."""
    rows = [tuple(_plain(v) for v in row) for row in frame.itertuples(index=False, name=None)]

    def key(row: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(
            (0, "") if v is None else (1, float(f"{v:.7g}")) if _number(v) else (2, str(v))
            for v in row
        )

    return sorted(rows, key=key)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _same_cell(got: Any, expected: Any) -> bool:
    if _number(got) and _number(expected):
        return math.isclose(got, expected, rel_tol=RELATIVE_TOLERANCE, abs_tol=1e-12)
    return got == expected


def difference(got: pd.DataFrame, expected: pd.DataFrame) -> str | None:
    """None when ``got`` holds the same rows as ``expected`` in any order (numbers to a
    relative 1e-6, decimals as floats); otherwise what differs first."""
    got_columns = [str(c).lower() for c in got.columns]
    expected_columns = [str(c).lower() for c in expected.columns]
    if got_columns != expected_columns:
        return f"columns {got_columns} instead of {expected_columns}"
    if len(got) != len(expected):
        return f"{len(got)} rows instead of {len(expected)}"
    for index, (mine, theirs) in enumerate(zip(_rows(got), _rows(expected))):
        for column, a, b in zip(got_columns, mine, theirs):
            if not _same_cell(a, b):
                return f"sorted row {index}, column {column}: {a!r} instead of {b!r}"
    return None


# ----------------------------------------------------------------------------- timing


@dataclass
class Measured:
    """Per variant, each counted round's time per query; the answers of the first one."""

    times: dict[str, list[dict[str, float]]]
    answers: dict[str, dict[str, pd.DataFrame]]


def one_round(run: Runner, queries: Sequence[Query]) -> tuple[dict[str, float], dict]:
    """The 22 queries once: each one's seconds, and each one's answer."""
    times, answers = {}, {}
    for query in queries:
        started = time.perf_counter()
        answers[query.name] = run(query)
        times[query.name] = time.perf_counter() - started
    return times, answers


def measure(
    variants: dict[str, Runner],
    queries: Sequence[Query],
    *,
    pairs: int,
    warmup: dict[str, Runner] | None = None,
) -> Measured:
    """Whole rounds of the variants in turn (A B C D A B C D ...), after one uncounted
    round of ``warmup`` (the same variants, perhaps on smaller data). Answers are kept
    from the first counted round."""
    for name, run in (warmup if warmup is not None else variants).items():
        print(f"   warm-up round: {name}", flush=True)
        one_round(run, queries)
    measured = Measured({name: [] for name in variants}, {})
    for index in range(pairs):
        for name, run in variants.items():
            times, answers = one_round(run, queries)
            measured.times[name].append(times)
            if index == 0:
                measured.answers[name] = answers
        totals = {name: round(sum(r[-1].values()), 1) for name, r in measured.times.items()}
        print(f"   round {index + 1}/{pairs}, seconds: {totals}", flush=True)
    return measured


def mismatches(measured: Measured) -> dict[str, dict[str, str]]:
    """Per engine, the queries whose answer differs from its native run's, and how.
    Each is printed loudly: a wrong answer is never skipped in silence."""
    found: dict[str, dict[str, str]] = {}
    for engine, (baseline, _) in SIDES.items():
        if engine not in measured.answers:
            continue
        mine, theirs = measured.answers[engine], measured.answers[baseline]
        wrong = {q: d for q in theirs if (d := difference(mine[q], theirs[q])) is not None}
        for query, what in wrong.items():
            print(
                f"!! WRONG ANSWER: TPC-H {query} on the {LABELS[engine]} differs from "
                f"{LABELS[baseline]}: {what}",
                file=sys.stderr,
                flush=True,
            )
        found[engine] = wrong
    return found


# ----------------------------------------------------------------------------- rows


def _totals(rounds: list[dict[str, float]]) -> list[float]:
    return [sum(times.values()) for times in rounds]


def per_query_ratios(measured: Measured, engine: str) -> dict[str, float]:
    """Per query, the median over the pairs of the engine's time over its baseline's."""
    mine, theirs = measured.times[engine], measured.times[SIDES[engine][0]]
    return {
        query: median_ratio([r[query] for r in mine], [r[query] for r in theirs])
        for query in mine[0]
    }


def total_row(measured: Measured, engine: str, wrong: dict[str, str], what: str) -> Row:
    baseline, target = SIDES[engine]
    mine, theirs = _totals(measured.times[engine]), _totals(measured.times[baseline])
    answers = (
        f"; WRONG ANSWERS: {', '.join(sorted(wrong))}"
        if wrong
        else "; answers equal the native run's"
    )
    ratio_ok = median_ratio(mine, theirs) <= target
    return Row(
        f"{what}: {LABELS[engine]}, tracker on",
        f"{LABELS[baseline]}, same parquet",
        f"{statistics.median(mine):.2f} s vs {statistics.median(theirs):.2f} s{answers}",
        ratio_cell(mine, theirs),
        f"<= {target:g}x, right answers",
        met(ratio_ok and not wrong) + ("" if not wrong else " (wrong answers)"),
    )


def worst_row(measured: Measured, what: str) -> Row:
    parts = []
    for engine in SIDES:
        if engine in measured.times:
            ratios = per_query_ratios(measured, engine)
            worst = sorted(ratios, key=ratios.get, reverse=True)[:3]
            parts.append(f"{LABELS[engine]}: " + ", ".join(f"{q} {ratios[q]:.2f}x" for q in worst))
    return Row(
        f"{what}: the three slowest queries against their baseline",
        "each engine's native baseline",
        "; ".join(parts),
        "median per query (all 22 in bench/results)",
    )


def raw_of(measured: Measured, wrong: dict[str, dict[str, str]], scale: float) -> dict:
    return {
        "tpch": {
            "scale_factor": scale,
            "pairs": len(next(iter(measured.times.values()))),
            "seconds_per_query": {
                name: {q: [r[q] for r in rounds] for q in rounds[0]}
                for name, rounds in measured.times.items()
            },
            "ratio_per_query": {
                e: per_query_ratios(measured, e) for e in SIDES if e in measured.times
            },
            "wrong_answers": wrong,
        }
    }


# ----------------------------------------------------------------------------- scenario


def variants_on(folder: Path, engines: Sequence[str]) -> dict[str, Runner]:
    """Each engine next to its baseline, in the order they take turns."""
    variants: dict[str, Runner] = {}
    if "pandas" in engines:
        variants |= {"duckdb": native_duckdb(folder), "pandas": through_engine("pandas", folder)}
    if "spark" in engines:
        from odibi_core.engine.session import get_spark

        spark = get_spark()
        variants |= {
            "spark_sql": native_spark_sql(spark, folder),
            "spark": through_engine("spark", folder, spark),
        }
    return variants


def run_scenario(
    quick: bool = False, *, pairs: int = PAIRS, engines: Sequence[str] | None = None
) -> tuple[list[Row], dict]:
    """Both engines against their baselines at SF1: rows and raw figures. ``quick`` runs
    the pandas engine only, at SF0.1: a round of the 22 queries on Spark takes tens of
    seconds whatever the scale, so five pairs of them cannot fit a quick run.

    The warm-up round runs on the SF0.1 data: it loads the JVM's classes and compiles the
    same queries' code, and at SF1 a whole round on Spark would not fit the time budget.
    """
    scale = QUICK_SCALE if quick else FULL_SCALE
    engines = engines or (("pandas",) if quick else tuple(SIDES))
    folder, queries = tpch_data(scale), load_queries()
    warmup = variants_on(tpch_data(QUICK_SCALE), engines)
    measured = measure(variants_on(folder, engines), queries, pairs=pairs, warmup=warmup)
    wrong = mismatches(measured)
    what = (
        f"TPC-H SF{scale:g}, 22 queries, each a pipeline of parquet ingests and one SQL step "
        f"(whole rounds paired, after an uncounted warm-up round at SF{QUICK_SCALE:g})"
    )
    rows = [total_row(measured, e, wrong[e], what) for e in SIDES if e in measured.times]
    rows.append(worst_row(measured, what))
    return rows, raw_of(measured, wrong, scale)


def rows(quick: bool = False) -> list[Row]:
    """The scenario for ``bench/run.py``: its per-query figures go to the raw results."""
    found, raw = run_scenario(quick)
    save_results([], raw)
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="scale factor 0.1")
    parser.add_argument("--pairs", type=int, default=PAIRS)
    parser.add_argument("--engines", help="pandas,spark (default: both; pandas with --quick)")
    args = parser.parse_args(argv)
    engines = args.engines.split(",") if args.engines else None
    found, raw = run_scenario(args.quick, pairs=args.pairs, engines=engines)
    report(found, raw)


if __name__ == "__main__":
    main()
