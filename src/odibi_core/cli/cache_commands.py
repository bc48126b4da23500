"""``odibi cache``: what the cache holds, and clearing it.

``odibi cache list`` prints one line per entry, ``odibi cache stats`` the totals per
pipeline, and ``odibi cache clear [--step NAME] [--pipeline NAME]`` removes entries: their
rows first, so no run can restore from a table about to go, then the data tables no
remaining entry names. A store's target, which an entry of a store step records, is never
removed.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from odibi_core.cli.arguments import EXIT_OK
from odibi_core.cli.state_commands import location_of, named_data_tables
from odibi_core.state.cache import CACHE_COLUMNS, cache_entry, hit_log, with_hits
from odibi_core.state.location import DEFAULT_STATE_SCHEMA, StateTableRef, StateTables
from odibi_core.state.table import DeltaStateTable, drop_data_table


def add_cache_parser(subparsers: Any) -> None:
    """Register ``odibi cache`` (``list``, ``stats``, ``clear``) on the ``odibi`` subparsers."""
    cache = subparsers.add_parser("cache", help="list, count or clear the step cache")
    actions = cache.add_subparsers(dest="cache_action", required=True, metavar="ACTION")
    for name, handler, text in (
        ("list", cmd_cache_list, "one line per cache entry"),
        ("stats", cmd_cache_stats, "entries, hits and rows per pipeline"),
        ("clear", cmd_cache_clear, "remove cache entries and their data tables"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("--pipeline", help="only this pipeline's entries")
        action.add_argument(
            "--state-schema", default=DEFAULT_STATE_SCHEMA, help="state location [catalog.]schema"
        )
        if name == "clear":
            action.add_argument("--step", help="only this step's entries")
        action.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
        action.set_defaults(handler=handler)


def cmd_cache_list(args: argparse.Namespace, spark_provider: Callable | None = None) -> int:
    rows = _Index(args, spark_provider).rows()
    if not rows:
        print(f"no cache entries in state schema {args.state_schema}")
        return EXIT_OK
    header = ("PIPELINE", "STEP", "KEY", "ROWS", "HITS", "CREATED", "LAST HIT")
    lines = [
        (
            row["pipeline"],
            row["step"],
            row["key"][:12],
            _number(row["rows"]),
            str(row["hits"] or 0),
            _when(row["created"]),
            _when(row["last_hit"]),
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]
    for line in [header, *lines]:
        print("  ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip())
    return EXIT_OK


def cmd_cache_stats(args: argparse.Namespace, spark_provider: Callable | None = None) -> int:
    rows = _Index(args, spark_provider).rows()
    if not rows:
        print(f"no cache entries in state schema {args.state_schema}")
        return EXIT_OK
    by_pipeline: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_pipeline.setdefault(row["pipeline"], []).append(row)
    for pipeline, entries in sorted(by_pipeline.items()):
        hits = sum(row["hits"] or 0 for row in entries)
        held = sum(row["rows"] or 0 for row in entries)
        steps = len({row["step"] for row in entries})
        print(
            f"{pipeline}: {len(entries)} entr{'y' if len(entries) == 1 else 'ies'} of "
            f"{steps} step(s), {hits} hit(s), {held:,} row(s) held"
        )
    return EXIT_OK


def cmd_cache_clear(args: argparse.Namespace, spark_provider: Callable | None = None) -> int:
    index = _Index(args, spark_provider)
    chosen = index.rows(step=args.step)
    if not chosen:
        print(f"no cache entries to clear in state schema {args.state_schema}")
        return EXIT_OK
    entries = [cache_entry(row) for row in chosen]
    index.table.delete([{"pipeline": e.pipeline, "key": e.key} for e in entries])
    kept = index.named(index.rows(all_pipelines=True))
    gone = sorted(index.named(chosen) - kept, key=str)
    for ref in gone:
        drop_data_table(ref, index.spark_provider)
    print(
        f"cleared {len(entries)} cache entr{'y' if len(entries) == 1 else 'ies'} and "
        f"{len(gone)} data table(s)"
    )
    return EXIT_OK


class _Index:
    """The ``odibi_cache`` table of the command's state location."""

    def __init__(self, args: argparse.Namespace, spark_provider: Callable | None):
        if spark_provider is None:
            from odibi_core.engine.session import get_spark as spark_provider
        self.spark_provider = spark_provider
        self.pipeline = args.pipeline
        self.tables = StateTables(location_of(args.state_schema))
        self.table = DeltaStateTable(
            self.tables.cache, CACHE_COLUMNS, spark_provider=spark_provider
        )
        self.hits = hit_log(self.tables, spark_provider)

    def rows(self, *, step: str | None = None, all_pipelines: bool = False) -> list[dict[str, Any]]:
        where = {} if all_pipelines or self.pipeline is None else {"pipeline": self.pipeline}
        if step is not None:
            where["step"] = step
        rows = self.table.read(where)
        hits = self.hits.read({"pipeline": where["pipeline"]} if "pipeline" in where else {})
        return sorted(
            with_hits(rows, hits), key=lambda row: (row["pipeline"], row["step"], row["created"])
        )

    def named(self, rows: Sequence[Mapping[str, Any]]) -> set[StateTableRef]:
        """The cache data tables ``rows`` name (a store's target is no data table)."""
        return named_data_tables(self.tables, "cache", rows)


def _number(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _when(value: datetime | None) -> str:
    return "never" if value is None else value.strftime("%Y-%m-%d %H:%M")
