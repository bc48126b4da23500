"""Quality rules over Spark Connect (what serverless is): the same counts as the pandas
engine and the classic session give, the quarantine written once per run, and a failing
rule's message naming the rows."""

from __future__ import annotations

import pytest

from odibi_core.orchestrator import Orchestrator
from odibi_core.state.location import StateTables, default_local_location
from odibi_core.state.quarantine import quarantine_table_name
from tests.integration.test_quality_spark import LOOSE, ORDERS, STRICT, TABLE, _quality, _steps

pytestmark = [pytest.mark.spark, pytest.mark.connect]


def test_rules_count_as_on_pandas_and_quarantine_once_over_connect(spark, tmp_path):
    source = tmp_path / "orders.csv"
    ORDERS.to_csv(source, index=False)

    def run(engine, name, run_id, **rules):
        result = Orchestrator(
            steps=_steps(source, tmp_path / name, **rules),
            engine_type=engine,
            spark=spark,
            pipeline_name="quality_connect",
            run_id=run_id,
        ).execute()
        assert result.success, result.error
        return result

    strict = {"expectations": STRICT, "table_expectations": TABLE}
    assert (
        _quality(run("spark", "strict", "run-1", **strict))
        == _quality(run("pandas", "strict_pandas", "run-2", **strict))
        == {
            "known_customer": (5, 2),
            "sane_amount": (7, 0),
            "has_amount": (6, 1),
            "not_empty": (1, 0),
            "one_per_order": (5, 0),
        }
    )
    quarantine = StateTables(default_local_location()).ref(quarantine_table_name("quality_connect"))
    held = spark.read.format("delta").load(str(quarantine.path)).toPandas()
    held = held.sort_values(["_odibi_run_id", "order_id"])
    assert held["order_id"].tolist() == [2, 5, 2, 5]
    assert held["_odibi_run_id"].tolist() == ["run-1", "run-1", "run-2", "run-2"]
    assert held["_odibi_broken_rules"].map(list).tolist() == [["known_customer"]] * 4

    loose = run("spark", "loose", "run-3", expectations=LOOSE)
    assert _quality(loose) == {"valid_amount": (5, 2), "has_customer": (5, 2), "small": (5, 2)}
    assert spark.read.format("delta").load(str(tmp_path / "loose")).count() == 4

    broken = {"small": {"rule": "amount < 5", "on_violation": "fail"}}
    failed = Orchestrator(
        steps=_steps(source, tmp_path / "failed", expectations=broken),
        engine_type="spark",
        spark=spark,
    ).execute()
    assert not failed.success
    assert failed.errors["clean"].startswith(
        "expectation 'small' (amount < 5) failed: 4 of 7 rows break it; the first 4:\n"
    )
