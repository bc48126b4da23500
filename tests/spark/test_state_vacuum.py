"""``odibi state vacuum``: old checkpoint and cache tables go with their rows; newer ones,
a cache entry hit lately (its hits are rows of odibi_cache_hits), and a store's target
named in a checkpoint row, stay."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timedelta, timezone

import pytest

from odibi_core.cli.state_commands import add_state_parser
from odibi_core.core.config import StateLocation
from odibi_core.state.cache import hit_log
from odibi_core.state.location import StateTables, state_table_name
from odibi_core.state.table import DeltaStateTable

CHECKPOINT_COLUMNS = (
    ("run_id", "string"),
    ("pipeline", "string"),
    ("step", "string"),
    ("data_key", "string"),
    ("table_name", "string"),
    ("table_version", "long"),
    ("definition_hash", "string"),
    ("odibi_version", "string"),
    ("created_at", "timestamp"),
)
CACHE_COLUMNS = (
    ("key", "string"),
    ("step", "string"),
    ("tables", "string"),
    ("created", "timestamp"),
    ("last_hit", "timestamp"),
)
NOW = datetime.now(timezone.utc).replace(second=0, microsecond=0)


def _odibi(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="odibi")
    add_state_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args)


def _checkpoint(run_id: str, table: str, age: timedelta, step: str = "load") -> dict:
    return {
        "run_id": run_id,
        "pipeline": "sales",
        "step": step,
        "data_key": "orders",
        "table_name": table,
        "table_version": 0,
        "created_at": NOW - age,
    }


@pytest.fixture
def state(spark, tmp_path):
    """A state schema with an old and a new run; an old cache entry, one whose row says it
    was used lately, and one whose hit log says so."""
    schema = "vacuum_" + tmp_path.name.lower().replace("-", "_")[-20:]
    tables = StateTables(StateLocation(schema=schema))
    refs = {
        run: state_table_name("checkpoint", "sales", "orders", run, location=tables)
        for run in ("r_old", "r_new")
    }
    refs |= {
        key: state_table_name("cache", "sales", key, location=tables)
        for key in ("k_old", "k_new", "k_hit")
    }
    for ref in refs.values():
        # Vacuum removes a local data table's folder and never reads it: an empty Delta
        # log stands in for the data, sparing a Spark job per table.
        (ref.path / "_delta_log").mkdir(parents=True)
    target = tmp_path / "target"  # a store's target: never housekeeping's to drop
    target.mkdir()
    provider = lambda: spark  # noqa: E731
    checkpoints = DeltaStateTable(tables.checkpoints, CHECKPOINT_COLUMNS, spark_provider=provider)
    checkpoints.append(
        [
            _checkpoint("r_old", str(refs["r_old"].path), timedelta(days=10)),
            _checkpoint("r_old", str(target), timedelta(days=9), step="save"),
            _checkpoint("r_new", str(refs["r_new"].path), timedelta(days=1)),
        ],
        txn_app_id="t",
        txn_version=0,
    )
    cache = DeltaStateTable(tables.cache, CACHE_COLUMNS, spark_provider=provider)
    cache.append(
        [
            {
                "key": "k_old",
                "step": "load",
                "tables": json.dumps([refs["k_old"].name]),
                "created": NOW - timedelta(days=20),
                "last_hit": NOW - timedelta(days=8),
            },
            {
                "key": "k_new",
                "step": "load",
                "tables": json.dumps([refs["k_new"].name]),
                "created": NOW - timedelta(days=20),
                "last_hit": NOW - timedelta(hours=1),
            },
            {
                "key": "k_hit",
                "step": "load",
                "tables": json.dumps([refs["k_hit"].name]),
                "created": NOW - timedelta(days=20),
                "last_hit": None,
            },
        ],
        txn_app_id="t",
        txn_version=0,
    )
    hits = hit_log(tables, provider)
    hits.append(
        [
            {"pipeline": "sales", "key": key, "hit_at": NOW - age, "execution_id": "e"}
            for key, age in (("k_old", timedelta(days=8)), ("k_hit", timedelta(hours=2)))
        ],
        txn_app_id="t",
        txn_version=0,
    )
    return schema, refs, target, checkpoints, cache, hits


def _expected_lines(refs, verb: str) -> list[str]:
    day = lambda days: (NOW - timedelta(days=days)).strftime("%Y-%m-%d %H:%M UTC")  # noqa: E731
    return [
        f"checkpoints of run r_old (pipeline sales, last written {day(9)})",
        f"  {verb} {refs['r_old'].name}",
        f"cache entry k_old (step load, last used {day(8)})",
        f"  {verb} {refs['k_old'].name}",
    ]


@pytest.mark.spark
def test_vacuum_lists_in_a_dry_run_then_removes_old_runs_only(state, capsys):
    schema, refs, target, checkpoints, cache, hits = state

    assert (
        _odibi("state", "vacuum", "--older-than", "7d", "--state-schema", schema, "--dry-run") == 0
    )
    printed = capsys.readouterr().out.splitlines()
    assert printed == [
        *_expected_lines(refs, "would remove"),
        "would remove 1 checkpointed run(s) and 1 cache entry older than 7d, 2 data table(s); "
        "nothing was removed (--dry-run)",
    ]
    assert all(ref.path.exists() for ref in refs.values())
    assert len(checkpoints.read()) == 3 and len(cache.read()) == 3 and len(hits.read()) == 2

    assert _odibi("state", "vacuum", "--older-than", "7d", "--state-schema", schema) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed == [
        *_expected_lines(refs, "removed"),
        "removed 1 checkpointed run(s) and 1 cache entry older than 7d, 2 data table(s)",
    ]
    assert [name for name, ref in refs.items() if ref.path.exists()] == ["r_new", "k_new", "k_hit"]
    assert target.exists()
    assert [row["run_id"] for row in checkpoints.read()] == ["r_new"]
    assert sorted(row["key"] for row in cache.read()) == ["k_hit", "k_new"]
    assert [row["key"] for row in hits.read()] == ["k_hit"]  # the removed entry's hits went too

    # Nothing is left to remove: a second vacuum removes nothing.
    assert _odibi("state", "vacuum", "--older-than", "7d", "--state-schema", schema) == 0
    assert capsys.readouterr().out.splitlines() == [
        "removed 0 checkpointed run(s) and 0 cache entries older than 7d, 0 data table(s)"
    ]
