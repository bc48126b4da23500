"""``odibi state``: housekeeping of the state tables.

``odibi state vacuum --older-than 7d`` removes what checkpoints and the cache keep for old
work: the rows of runs whose newest checkpoint is older than the limit, the rows of cache
entries neither written nor hit within it (with the hit rows of entries no longer there),
and the Delta data tables those rows name. Rows
go first, so nothing can be restored from a table about to disappear; a table still named
by a row that stays is kept. Only checkpoint, handoff and cache tables of the state
location (``state_table_name``) are ever dropped: a store's target named in a checkpoint
row is left alone.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from odibi_core.cli.arguments import EXIT_OK
from odibi_core.core.config import StateLocation
from odibi_core.state.cache import hit_log
from odibi_core.state.location import (
    DEFAULT_STATE_SCHEMA,
    StateTableRef,
    StateTables,
)
from odibi_core.state.table import DeltaStateTable, drop_data_table

_AGE = re.compile(r"(\d+)([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# The columns housekeeping reads; the tables may hold more.
_CHECKPOINT_COLUMNS = (
    ("run_id", "string"),
    ("pipeline", "string"),
    ("table_name", "string"),
    ("created_at", "timestamp"),
)
_CACHE_COLUMNS = (
    ("key", "string"),
    ("step", "string"),
    ("tables", "string"),
    ("created", "timestamp"),
    ("last_hit", "timestamp"),
)


@dataclass(frozen=True)
class Age:
    """A limit such as ``7d``: its text, for messages, and its length."""

    text: str
    delta: timedelta


@dataclass(frozen=True)
class Expired:
    """One run's checkpoints, or one cache entry, older than the limit."""

    label: str  # what the printed line calls it
    key: Mapping[str, Any]  # the columns that select its rows
    tables: tuple[StateTableRef, ...]


def parse_age(text: str) -> Age:
    """``30m``, ``12h``, ``7d`` or ``2w``; argparse turns the error into exit code 2."""
    match = _AGE.fullmatch(text.strip().lower())
    if not match or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an age; give a number and a unit m, h, d or w, e.g. 7d"
        )
    return Age(text, timedelta(**{_UNITS[match.group(2)]: int(match.group(1))}))


def add_state_parser(subparsers: Any) -> None:
    """Register ``odibi state`` (and its action ``vacuum``) on the ``odibi`` subparsers."""
    state = subparsers.add_parser("state", help="housekeeping of checkpoints and the cache")
    actions = state.add_subparsers(dest="state_action", required=True, metavar="ACTION")
    vacuum = actions.add_parser("vacuum", help="remove the checkpoint and cache tables of old runs")
    vacuum.add_argument(
        "--older-than", required=True, type=parse_age, metavar="AGE", help="e.g. 7d, 12h, 2w"
    )
    vacuum.add_argument(
        "--state-schema", default=DEFAULT_STATE_SCHEMA, help="state location [catalog.]schema"
    )
    vacuum.add_argument("--dry-run", action="store_true", help="list what would go; remove nothing")
    vacuum.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )
    vacuum.set_defaults(handler=cmd_state_vacuum)


def cmd_state_vacuum(args: argparse.Namespace, spark_provider: Callable | None = None) -> int:
    """``odibi state vacuum``: print what goes (or would go), then remove it."""
    if spark_provider is None:
        from odibi_core.engine.session import get_spark as spark_provider
    tables = StateTables(location_of(args.state_schema))
    indexes = {
        "checkpoint": DeltaStateTable(
            tables.checkpoints, _CHECKPOINT_COLUMNS, spark_provider=spark_provider
        ),
        "cache": DeltaStateTable(tables.cache, _CACHE_COLUMNS, spark_provider=spark_provider),
    }
    present = {kind: index for kind, index in indexes.items() if index.exists()}
    if not present:
        print(f"no checkpoints or cache in state schema {args.state_schema}: nothing to remove")
        return EXIT_OK
    vacuum = _Vacuum(tables, spark_provider, args.older_than, dry_run=args.dry_run)
    counts = {"checkpoint": 0, "cache": 0, "table": 0}
    hits = hit_log(tables, spark_provider)
    for kind, index in present.items():
        # A cache entry's hits are rows of odibi_cache_hits; the newest one counts as a use.
        logged = hits.read() if kind == "cache" else []
        expired = vacuum.expired(kind, index, _last_hits(logged))
        counts[kind] = len(expired)
        counts["table"] += vacuum.remove(kind, index, expired)
        if logged and not args.dry_run:  # the hits of entries removed now or cleared before
            entries = {row["key"] for row in index.read()}
            gone = sorted({hit["key"] for hit in logged} - entries)
            hits.delete([{"key": key} for key in gone])
    print(_summary(counts, args.older_than, dry_run=args.dry_run))
    return EXIT_OK


def location_of(text: str) -> StateLocation:
    catalog, _, schema = text.rpartition(".")
    return StateLocation(schema=schema, catalog=catalog or None)


# Per kind of index table: the columns that select an item's rows, the columns that say
# when it was last written or used (the first non-NULL), and what a printed line calls it.
_ITEMS = {
    "checkpoint": (
        ("pipeline", "run_id"),
        ("created_at",),
        "checkpoints of run {run_id} (pipeline {pipeline}, last written {when})",
    ),
    "cache": (
        ("key",),
        ("last_hit", "created"),
        "cache entry {key} (step {step}, last used {when})",
    ),
}


class _Vacuum:
    """Finds the expired items of an index table, and removes their rows and tables."""

    def __init__(self, tables: StateTables, spark_provider: Callable, age: Age, *, dry_run: bool):
        self.tables = tables
        self.spark_provider = spark_provider
        self.cutoff = datetime.now(timezone.utc) - age.delta
        self.dry_run = dry_run

    def expired(
        self, kind: str, index: DeltaStateTable, used: Mapping[tuple[Any, ...], datetime]
    ) -> list[Expired]:
        """Items last written or used before the limit, with the data tables that only
        they name. ``used``: when an item was last used, where its rows do not say."""
        by, times, label = _ITEMS[kind]
        groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
        for row in index.read():
            groups.setdefault(tuple(row[name] for name in by), []).append(row)
        newest = {
            values: max(
                (t for t in (*(_first(r, times) for r in rows), used.get(values)) if t),
                default=None,
            )
            for values, rows in groups.items()
        }
        old = {values for values, when in newest.items() if when is None or when < self.cutoff}
        kept = {
            ref for v, rows in groups.items() if v not in old for ref in self._named(kind, rows)
        }
        return [
            Expired(
                label.format(**groups[values][-1], when=_when(newest[values])),
                dict(zip(by, values)),
                tuple(sorted(self._named(kind, groups[values]) - kept, key=str)),
            )
            for values in sorted(old, key=str)
        ]

    def remove(self, kind: str, index: DeltaStateTable, expired: Sequence[Expired]) -> int:
        """Print ``expired``, remove its rows and then the tables no remaining row names;
        the number of tables removed (or, in a dry run, that would be)."""
        verb = "would remove" if self.dry_run else "removed"
        if self.dry_run or not expired:
            for item in expired:
                print(item.label + "".join(f"\n  {verb} {ref.name}" for ref in item.tables))
            return len({ref for item in expired for ref in item.tables})
        keys = [item.key for item in expired]
        index.delete(keys, time_columns=_ITEMS[kind][1], before=self.cutoff)
        kept = self._named(kind, index.read())  # rows written meanwhile keep their tables
        for item in expired:
            gone = [ref for ref in item.tables if ref not in kept]
            for ref in gone:
                self._drop(ref)
            print(item.label + "".join(f"\n  {verb} {ref.name}" for ref in gone))
        return len({ref for item in expired for ref in item.tables} - kept)

    def _named(self, kind: str, rows: Sequence[Mapping[str, Any]]) -> set[StateTableRef]:
        return named_data_tables(self.tables, kind, rows)

    def _drop(self, ref: StateTableRef) -> None:
        drop_data_table(ref, self.spark_provider)


def named_data_tables(
    tables: StateTables, kind: str, rows: Sequence[Mapping[str, Any]]
) -> set[StateTableRef]:
    """The data tables of this location that checkpoint or cache ``rows`` name (never a
    store's target)."""
    names = [
        name
        for row in rows
        for name in ([row["table_name"]] if kind == "checkpoint" else _table_names(row["tables"]))
    ]
    refs = {tables.data_table_ref(name) for name in names if name}
    return {ref for ref in refs if ref is not None}


def _last_hits(hits: Sequence[Mapping[str, Any]]) -> dict[tuple[Any, ...], datetime]:
    """The newest hit of each cache key (grouped as ``_ITEMS["cache"]`` groups entries)."""
    last: dict[tuple[Any, ...], datetime] = {}
    for hit in hits:
        key, when = (hit["key"],), hit["hit_at"]
        if when is not None and (key not in last or when > last[key]):
            last[key] = when
    return last


def _first(row: Mapping[str, Any], names: Sequence[str]) -> datetime | None:
    return next((row[name] for name in names if row[name] is not None), None)


def _table_names(value: Any) -> list[str]:
    """The tables of a cache row: a list, JSON text of a list, or comma-separated text."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(name) for name in value]
    text = str(value).strip()
    if text.startswith("["):
        return [str(name) for name in json.loads(text)]
    return [name.strip() for name in text.split(",") if name.strip()]


def _when(value: datetime | None) -> str:
    return "never" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def _summary(removed: Mapping[str, int], age: Age, *, dry_run: bool) -> str:
    counts = (
        f"{removed['checkpoint']} checkpointed run(s) and {removed['cache']} cache "
        f"entr{'y' if removed['cache'] == 1 else 'ies'} older than {age.text}, "
        f"{removed['table']} data table(s)"
    )
    if dry_run:
        return f"would remove {counts}; nothing was removed (--dry-run)"
    return f"removed {counts}"
