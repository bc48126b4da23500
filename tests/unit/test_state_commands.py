"""``odibi state vacuum`` arguments, and a state schema with nothing to vacuum (no JVM)."""

from __future__ import annotations

import argparse
from datetime import timedelta

import pytest

from odibi_core.cli.state_commands import Age, add_state_parser, parse_age


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="odibi")
    add_state_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_ages_take_minutes_hours_days_and_weeks():
    assert parse_age("30m") == Age("30m", timedelta(minutes=30))
    assert parse_age("12h").delta == timedelta(hours=12)
    assert parse_age("7d").delta == timedelta(days=7)
    assert parse_age("2W").delta == timedelta(weeks=2)


@pytest.mark.parametrize("text", ["7", "d", "0d", "7 days", "1x", "1.5d"])
def test_a_bad_age_exits_with_code_2_and_says_how_to_write_one(text, capsys):
    with pytest.raises(SystemExit) as exit_:
        _parse("state", "vacuum", "--older-than", text)
    assert exit_.value.code == 2
    assert f"{text!r} is not an age; give a number and a unit m, h, d or w, e.g. 7d" in (
        capsys.readouterr().err
    )


def test_older_than_is_required(capsys):
    with pytest.raises(SystemExit) as exit_:
        _parse("state", "vacuum")
    assert exit_.value.code == 2
    assert "--older-than" in capsys.readouterr().err


def test_a_state_schema_without_checkpoints_or_cache_has_nothing_to_remove(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("ODIBI_WAREHOUSE", str(tmp_path))
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    args = _parse("state", "vacuum", "--older-than", "7d", "--state-schema", "empty_state")

    def no_spark():
        raise AssertionError("a state schema without tables needs no Spark")

    assert args.handler(args, spark_provider=no_spark) == 0
    assert capsys.readouterr().out == (
        "no checkpoints or cache in state schema empty_state: nothing to remove\n"
    )
    assert args.dry_run is False and args.older_than == Age("7d", timedelta(days=7))
