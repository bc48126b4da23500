"""Quality rules on Spark: the same counts as pandas, the quarantine written once, and no
extra Spark job for warn/drop rules (at most one for any mix with fail or quarantine)."""

from __future__ import annotations

import pandas as pd
import pytest

from odibi_core import Step
from odibi_core.core.errors import StepExecutionError
from odibi_core.orchestrator import Orchestrator
from odibi_core.state.location import StateTables, default_local_location
from odibi_core.state.quarantine import quarantine_table_name
from tests.integration.test_tracker_spark import jobs_run_by
from tests.unit.test_quality_pandas import quality_steps

pytestmark = pytest.mark.spark

ORDERS = pd.DataFrame(
    {
        "order_id": [1, 2, 3, 2, 4, 5, 6],
        "customer_id": [10.0, None, 11.0, 12.0, 13.0, None, 14.0],
        "amount": [5.0, 7.5, -2.0, 4.0, None, 3.0, 9.0],
    }
)
LOOSE = {  # warn and drop only: counted by the action that writes the output
    "valid_amount": {"rule": "amount >= 0", "on_violation": "drop"},
    "has_customer": {"rule": "customer_id IS NOT NULL", "on_violation": "warn"},
    "small": {"rule": "amount < 9", "on_violation": "drop"},
}
STRICT = {  # decided before the commit: one aggregation
    "known_customer": {"rule": "customer_id IS NOT NULL", "on_violation": "quarantine"},
    "sane_amount": {"rule": "coalesce(amount, 0) < 1000", "on_violation": "fail"},
    "has_amount": {"rule": "amount IS NOT NULL", "on_violation": "warn"},
}
TABLE_BOUNDS = {"not_empty": {"min_rows": 1}, "at_most": {"max_rows": 100}}
TABLE = {"not_empty": {"min_rows": 1}, "one_per_order": {"unique": ["order_id"]}}


def _steps(source, target, *, expectations=None, table_expectations=None):
    return [
        *quality_steps(source, expectations=expectations, table_expectations=table_expectations),
        Step(
            "store", "save", value=str(target), params={"format": "delta"}, inputs={"data": "clean"}
        ),
    ]


class FailOnceAfterTheStep:
    """A layer (outermost) failing a step's first attempt after it ran, as a lost executor
    would: the retry must not quarantine its rows again."""

    def __init__(self, inner):
        self.inner = inner

    def __call__(self, call):
        run = self.inner(call)
        if call.step.name == "clean" and call.attempt == 1:
            raise StepExecutionError("clean", "the executor was lost", retryable=True)
        return run


def _quality(result):
    return {q["name"]: (q["passed"], q["failed"]) for q in result.tracker.get("clean").quality}


def test_actions_count_as_on_pandas_and_quarantine_once_without_extra_passes(spark, tmp_path):
    source = tmp_path / "orders.csv"
    ORDERS.to_csv(source, index=False)

    def run(engine, name, layers=(), run_id="run-1", **rules):
        result = Orchestrator(
            steps=_steps(source, tmp_path / name, **rules),
            engine_type=engine,
            spark=spark,
            pipeline_name="quality_spark",
            run_id=run_id,
            max_retries=1,
            retry_delay=0,
            layers=list(layers),
        ).execute()
        assert result.success, result.error
        return result

    strict = {"expectations": STRICT, "table_expectations": TABLE}
    retried = run("spark", "strict", [FailOnceAfterTheStep], **strict)
    assert retried.attempts["clean"] == 2
    assert (
        _quality(retried)
        == _quality(run("pandas", "strict_pandas", [FailOnceAfterTheStep], "run-2", **strict))
        == {
            "known_customer": (5, 2),
            "sane_amount": (7, 0),
            "has_amount": (6, 1),
            "not_empty": (1, 0),
            "one_per_order": (5, 0),  # order 2 repeats only in a quarantined row
        }
    )
    quarantine = StateTables(default_local_location()).ref(quarantine_table_name("quality_spark"))
    held = spark.read.format("delta").load(str(quarantine.path)).toPandas()
    held = held.sort_values(["_odibi_run_id", "order_id"])
    # each run's first attempt wrote its rows; the retry wrote nothing
    assert held["order_id"].tolist() == [2, 5, 2, 5]
    assert held["_odibi_run_id"].tolist() == ["run-1", "run-1", "run-2", "run-2"]
    assert held["_odibi_broken_rules"].map(list).tolist() == [["known_customer"]] * 4
    assert set(held["_odibi_step"]) == {"clean"} and held["amount"].tolist() == [7.5, 3.0] * 2

    plain = jobs_run_by(spark, lambda: run("spark", "plain"))
    runs = []
    loose = jobs_run_by(spark, lambda: runs.append(run("spark", "loose", expectations=LOOSE)))
    assert loose == plain  # three warn/drop rules ride on the write's own job
    assert (
        _quality(runs[0])
        == _quality(run("pandas", "loose_pandas", expectations=LOOSE))
        == {
            "valid_amount": (5, 2),  # -2.0 and NULL
            "has_customer": (5, 2),
            "small": (5, 2),  # NULL and 9.0
        }
    )
    assert spark.read.format("delta").load(str(tmp_path / "loose")).count() == 4
    passing = {**STRICT, "known_customer": {"rule": "order_id > 0", "on_violation": "quarantine"}}
    mixed = jobs_run_by(
        spark,
        lambda: run("spark", "mixed", expectations=passing, table_expectations=TABLE_BOUNDS),
    )
    assert mixed <= plain + 1  # fail, quarantine, warn and row bounds: one pass together

    broken = {"small": {"rule": "amount < 5", "on_violation": "fail"}}
    failed = Orchestrator(
        steps=_steps(source, tmp_path / "failed", expectations=broken),
        engine_type="spark",
        spark=spark,
        max_retries=1,
        retry_delay=0,
    ).execute()
    assert failed.attempts["clean"] == 1
    assert failed.errors["clean"] == (
        "expectation 'small' (amount < 5) failed: 4 of 7 rows break it; the first 4:\n"
        "  order_id=1, customer_id=10.0, amount=5.0\n"
        "  order_id=2, customer_id=None, amount=7.5\n"
        "  order_id=4, customer_id=13.0, amount=None\n"
        "  order_id=6, customer_id=14.0, amount=9.0\n"
        "fix the data upstream, or set its on_violation to warn, drop or quarantine"
    )
