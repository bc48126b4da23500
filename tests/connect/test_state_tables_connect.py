"""State tables over Spark Connect: an earlier layout's table evolves, a newer one takes an
earlier layout's rows, and old rows are deleted, all in SQL (no DeltaTable API there)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from odibi_core.engine.connect import is_connect
from odibi_core.state.location import StateTableRef
from odibi_core.state.table import DeltaStateTable

# About 45 s of small Delta commits over Connect: `make test-slow`.
pytestmark = [pytest.mark.connect, pytest.mark.slow]

EARLIER = (("run_id", "string"), ("created_at", "timestamp"))
CURRENT = (*EARLIER, ("token", "string"))


def test_a_state_table_evolves_both_ways_and_deletes_over_connect(spark, tmp_path):
    assert is_connect(spark)
    ref = StateTableRef(name="odibi_state.odibi_runs", path=tmp_path / "odibi_runs")
    earlier = DeltaStateTable(ref, EARLIER, spark_provider=lambda: spark, schema_version=1)
    current = DeltaStateTable(ref, CURRENT, spark_provider=lambda: spark, schema_version=2)
    old = datetime.now(timezone.utc) - timedelta(days=10)

    earlier.append([{"run_id": "a", "created_at": old}], txn_app_id="e", txn_version=0)
    current.append([{"run_id": "b", "token": "t"}], txn_app_id="c", txn_version=0)
    earlier.append([{"run_id": "c"}], txn_app_id="e", txn_version=1)

    assert current.stored_schema_version() == 2
    assert sorted((row["run_id"], row["token"]) for row in current.read()) == [
        ("a", None),
        ("b", "t"),
        ("c", None),
    ]
    assert sorted(row["run_id"] for row in earlier.read()) == ["a", "b", "c"]
    current.delete(
        [{"run_id": "a"}, {"run_id": "b"}],
        time_columns=("created_at",),
        before=old + timedelta(days=1),
    )
    assert sorted(row["run_id"] for row in current.read()) == ["b", "c"]
