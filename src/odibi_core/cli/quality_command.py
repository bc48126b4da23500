"""``odibi quality [RUN_ID]``: what a run's data quality expectations found, step by step.

The rows come from the ``odibi_quality`` state table, for one execution of the run (by
default its latest, as ``odibi lineage`` shows it), in the order the steps ran and each
step's rules in the order they are written. A rule that counted failing rows is
highlighted: red where it failed the step, yellow where the rows were kept, dropped or
quarantined. An unknown run is an error (exit 1) naming the latest run recorded.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from odibi_core.cli.arguments import EXIT_OK
from odibi_core.cli.state_commands import location_of
from odibi_core.core.errors import StateError
from odibi_core.events.hooks import failed_share
from odibi_core.state.audit import AuditStore
from odibi_core.state.location import DEFAULT_STATE_SCHEMA
from odibi_core.state.quality import rows_of_execution

TABLE_COLUMNS = ("Step", "Expectation", "Rule", "On violation", "Passed", "Failed", "Failed %")


def add_quality_parser(subparsers: Any) -> None:
    """Register ``odibi quality`` on the ``odibi`` subparsers."""
    quality = subparsers.add_parser(
        "quality", help="print what a run's data quality expectations found, per step"
    )
    quality.add_argument("run_id", nargs="?", help="run id (default: the latest run)")
    quality.add_argument("--execution", help="execution id (default: the run's latest)")
    quality.add_argument(
        "--state-schema", default=DEFAULT_STATE_SCHEMA, help="state location [catalog.]schema"
    )
    quality.add_argument("--json", action="store_true", help="print the odibi_quality rows as JSON")
    quality.set_defaults(handler=cmd_quality)


def cmd_quality(args: argparse.Namespace, spark_provider: Callable | None = None) -> int:
    """``odibi quality``: one table row per expectation of each step of the execution."""
    if spark_provider is None:
        from odibi_core.engine.session import get_spark as spark_provider
    store = AuditStore(location_of(args.state_schema), spark_provider=spark_provider)
    run_id = args.run_id or store.latest_run_id()
    if run_id is None:
        raise StateError(
            f"no runs recorded in state schema '{args.state_schema}'; run a pipeline with "
            "`odibi run` first, or pass the --state-schema it used"
        )
    lineage = store.to_lineage(run_id, args.execution)
    rows = rows_of_execution(store.quality, lineage)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return EXIT_OK
    print(quality_heading(lineage, rows))
    if rows:
        from rich.console import Console

        Console(highlight=False).print(quality_table(rows))
        for note in unknown_count_notes(rows):
            print(note)
    return EXIT_OK


def quality_heading(lineage: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> str:
    """The line above the table: the run, and how many rules were broken."""
    run = (
        f"pipeline {lineage.get('pipeline_name')}  run {lineage.get('run_id')}  "
        f"execution {lineage.get('execution_id')}"
    )
    if not rows:
        return f"{run}: no step had data quality expectations"
    steps = len({row["step_name"] for row in rows})
    violated = sum(1 for row in rows if row["failed"])
    return f"{run}: {len(rows)} expectation(s) on {steps} step(s), {violated} with failing rows"


def quality_table(rows: Sequence[Mapping[str, Any]]) -> Any:
    """A rich table: a row per rule, the step named on its first rule only."""
    from rich.table import Table
    from rich.text import Text

    table = Table(header_style="bold")
    for column in TABLE_COLUMNS:
        numeric = column in ("Passed", "Failed", "Failed %")
        table.add_column(column, justify="right" if numeric else "left", overflow="fold")
    previous = None
    for row in rows:
        step = row["step_name"] if row["step_name"] != previous else ""
        previous = row["step_name"]
        cells = (step, row["name"], row["rule"], row["on_violation"], *_counts(row))
        # Text cells: a rule such as "[a] > 0" must not be read as rich markup.
        table.add_row(*(Text(str(cell)) for cell in cells), style=_style(row))
    return table


def unknown_count_notes(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Why a rule's counts are missing, one line per such rule."""
    return [
        f"{row['step_name']}.{row['name']}: not counted: {row['reason'] or 'no reason recorded'}"
        for row in rows
        if row["passed"] is None or row["failed"] is None
    ]


def _counts(row: Mapping[str, Any]) -> tuple[str, str, str]:
    share = failed_share(row)
    return (
        "-" if row["passed"] is None else f"{row['passed']:,}",
        "-" if row["failed"] is None else f"{row['failed']:,}",
        "-" if share is None else f"{share:.1%}",
    )


def _style(row: Mapping[str, Any]) -> str:
    if not row["failed"]:
        return ""
    return "bold red" if row["on_violation"] == "fail" else "yellow"
