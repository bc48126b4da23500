"""What every benchmark shares: interleaved timing, ratio text, the row type and the
writers of ``bench/results/<date>.json`` and the table in ``BENCHMARKS.md``.

Every figure is a ratio against a baseline measured in the same invocation, alternating
A B A B, because wall-clock time on a shared machine is noisy.
"""

from __future__ import annotations

import datetime
import json
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "BENCHMARKS.md"
RESULTS = ROOT / "bench" / "results"
COLUMNS = ("scenario", "baseline", "our figure", "ratio (median, min-max)", "target", "met")
HEADER = "| " + " | ".join(COLUMNS) + " |"
RULE = "|" + "---|" * len(COLUMNS)
INTRO = (
    "# Benchmarks\n\nMeasured with `make bench` (`make bench-quick` for smaller sizes) on the "
    "machine named below. Every ratio compares against a baseline run in the same invocation, "
    "alternating A B A B; absolute times are for context only.\n"
)


@dataclass(frozen=True)
class Row:
    """One line of the table: what was run, against what, and whether it met its target."""

    scenario: str
    baseline: str
    figure: str
    ratio: str
    target: str = "—"
    met: str = "—"

    def cells(self) -> tuple[str, ...]:
        return (self.scenario, self.baseline, self.figure, self.ratio, self.target, self.met)


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` takes."""
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def interleaved(
    baseline: Callable[[], object],
    candidate: Callable[[], object],
    pairs: int = 5,
    warmup: int = 1,
) -> tuple[list[float], list[float]]:
    """Run ``baseline`` and ``candidate`` in turn (A B A B ...), ``warmup`` untimed pairs
    first; return the baseline's and the candidate's times in seconds."""
    for _ in range(warmup):
        baseline()
        candidate()
    times_a: list[float] = []
    times_b: list[float] = []
    for _ in range(pairs):
        times_a.append(timed(baseline))
        times_b.append(timed(candidate))
    return times_a, times_b


def ratios(times_b: Sequence[float], times_a: Sequence[float]) -> list[float]:
    """Pair by pair, the candidate's time over the baseline's."""
    if len(times_b) != len(times_a) or not times_a:
        raise ValueError(
            f"ratios need as many candidate as baseline times, and at least one pair: "
            f"got {len(times_b)} and {len(times_a)}"
        )
    return [b / a for b, a in zip(times_b, times_a, strict=True)]


def ratio_cell(times_b: Sequence[float], times_a: Sequence[float]) -> str:
    """``"1.03x (min 0.95, max 1.10)"``: the median of the pairwise ratios b/a."""
    values = ratios(times_b, times_a)
    return (
        f"{statistics.median(values):.2f}x (min {min(values):.2f}, max {max(values):.2f}, "
        f"{len(values)} pairs)"
    )


def median_ratio(times_b: Sequence[float], times_a: Sequence[float]) -> float:
    return statistics.median(ratios(times_b, times_a))


def met(ok: bool) -> str:
    return "yes" if ok else "no"


def spark_jobs(spark: Any, action: Callable[[], Any]) -> int:
    """Spark jobs ``action`` submits, from the status tracker after the listener bus drains."""
    status = spark.sparkContext.statusTracker()
    bus = spark.sparkContext._jsc.sc().listenerBus()  # noqa: SLF001 - job ids arrive through it
    bus.waitUntilEmpty()
    before = set(status.getJobIdsForGroup(None))
    action()
    bus.waitUntilEmpty()
    return len(set(status.getJobIdsForGroup(None)) - before)


def machine() -> str:
    import os

    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, Python " + (
        platform.python_version()
    )


def save_results(rows: Sequence[Row], raw: dict | None = None) -> Path:
    """Merge ``rows`` (and raw timings) into today's ``bench/results/<date>.json``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{datetime.date.today().isoformat()}.json"
    saved = json.loads(path.read_text()) if path.exists() else {"rows": [], "raw": {}}
    names = {row.scenario for row in rows}
    saved["rows"] = [r for r in saved["rows"] if r["scenario"] not in names]
    saved["rows"] += [asdict(row) for row in rows]
    saved["raw"].update(raw or {})
    saved["machine"] = machine()
    path.write_text(json.dumps(saved, indent=2) + "\n")
    return path


def _old_rows(text: str) -> list[Row]:
    """Rows of the table already in BENCHMARKS.md; a row of the old four-column table gets
    no target."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("| ") or line.startswith(("| scenario", "| benchmark")):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        rows.append(Row(*cells[: len(COLUMNS)]))
    return rows


def _notes(text: str) -> str:
    """The prose after the table in BENCHMARKS.md, kept as it is."""
    lines = text.splitlines()
    last = max((i for i, line in enumerate(lines) if line.startswith("|")), default=None)
    if last is None:
        return ""
    return "\n".join(lines[last + 1 :]).strip()


def write_table(rows: Sequence[Row], *, keep_others: bool = True) -> str:
    """Print the rows and write them to BENCHMARKS.md; with ``keep_others`` the rows of
    other scenarios, and the notes under the table, stay."""
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else ""
    names = {row.scenario for row in rows}
    kept = [r for r in _old_rows(text) if r.scenario not in names] if keep_others else []
    table = [HEADER, RULE] + ["| " + " | ".join(r.cells()) + " |" for r in [*kept, *rows]]
    print("\n".join([HEADER, RULE] + ["| " + " | ".join(r.cells()) + " |" for r in rows]))
    notes = _notes(text) if keep_others else ""
    body = INTRO + f"\nMachine: {machine()}.\n\n" + "\n".join(table) + "\n"
    BENCHMARKS.write_text(body + (f"\n{notes}\n" if notes else ""))
    return "\n".join(table)


def report(rows: Sequence[Row], raw: dict | None = None) -> None:
    """Write rows to today's results file and to the table."""
    save_results(rows, raw)
    write_table(rows, keep_others=True)
