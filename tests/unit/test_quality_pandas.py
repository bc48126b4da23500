"""Quality rules on the pandas engine: each action, table rules, one DuckDB query per step."""

from __future__ import annotations

import pandas as pd
import pytest

from odibi_core import Step
from odibi_core.core.config import TrackerSettings
from odibi_core.engine import quality_pandas
from odibi_core.orchestrator import Orchestrator

ORDERS = pd.DataFrame(
    {
        "order_id": [1, 2, 3, 3, 4, 5],
        "customer_id": [10.0, None, 11.0, 12.0, 13.0, 14.0],
        "amount": [5.0, 7.5, -2.0, 4.0, None, 9.0],
        "email": ["a@x.io", "b@x.io", "c@x.io", "d@x.io", "e@x.io", "f@x.io"],
    }
)


@pytest.fixture
def orders_csv(tmp_path):
    path = tmp_path / "orders.csv"
    ORDERS.to_csv(path, index=False)
    return path


def quality_steps(source, *, expectations=None, table_expectations=None):
    """An ingest of ``source`` and the SQL step ``clean`` carrying the rules."""
    return [
        Step("ingest", "read", value=str(source), outputs={"data": "raw"}),
        Step(
            "transform",
            "clean",
            type="sql",
            value="SELECT * FROM orders",
            inputs={"orders": "raw"},
            outputs={"data": "clean"},
            expectations=expectations or {},
            table_expectations=table_expectations or {},
        ),
    ]


def _run(source, *, expectations=None, table_expectations=None, store=None, **options):
    steps = quality_steps(source, expectations=expectations, table_expectations=table_expectations)
    if store is not None:
        steps.append(store)
    return Orchestrator(steps=steps, engine_type="pandas", **options).execute()


def _quality(result, step="clean"):
    return {q["name"]: (q["passed"], q["failed"]) for q in result.tracker.get(step).quality}


def test_warn_keeps_drop_removes_and_both_are_counted_in_one_query(orders_csv, monkeypatch):
    queries = []
    real = quality_pandas._run_duckdb

    def counting(sql, *rest):  # a spy on the real query, which still runs
        queries.append(sql)
        return real(sql, *rest)

    monkeypatch.setattr(quality_pandas, "_run_duckdb", counting)
    result = _run(
        orders_csv,
        expectations={
            "valid_amount": {"rule": "amount >= 0", "on_violation": "drop"},
            "has_customer": {"rule": "customer_id IS NOT NULL", "on_violation": "warn"},
            "known_domain": {"rule": "email LIKE '%@x.io'", "on_violation": "drop"},
        },
        table_expectations={
            "not_empty": {"min_rows": 1},
            "one_per_order": {"unique": ["order_id"]},
        },
    )
    assert result.success, result.error
    assert len(queries) == 1  # every rule of the step, in one pass over its output
    assert _quality(result) == {
        "valid_amount": (4, 2),  # -2.0 and NULL break it
        "has_customer": (5, 1),
        "known_domain": (6, 0),
        "not_empty": (1, 0),
        "one_per_order": (4, 0),  # the repeated order 3 was dropped with amount -2.0
    }
    kept = result.data_map["clean"]
    assert kept["order_id"].tolist() == [1, 2, 3, 5]
    assert result.tracker.get("clean").after_snapshot.row_count == 4


def test_a_fail_rule_fails_at_once_showing_rule_count_and_redacted_rows(orders_csv):
    result = _run(
        orders_csv,
        expectations={"small": {"rule": "amount < 6", "on_violation": "fail"}},
        tracker_settings=TrackerSettings(redact_columns=("email",)),
        max_retries=2,
        retry_delay=0,
    )
    assert not result.success
    assert result.attempts["clean"] == 1  # deterministic: never retried
    message = result.errors["clean"]
    assert message.startswith("expectation 'small' (amount < 6) failed: 3 of 6 rows break it")
    assert "\n  order_id=2, customer_id=None, amount=7.5, email='***'\n" in message
    assert message.count("\n  order_id=") == 3
    assert "@x.io" not in message


def test_table_rules_fail_the_step(orders_csv):
    unique = _run(orders_csv, table_expectations={"one": {"unique": ["order_id"]}})
    assert unique.errors["clean"].startswith(
        "table expectation 'one' (unique (order_id)) failed: 1 of the 6 rows kept repeat a key"
    )
    bounded = _run(orders_csv, table_expectations={"few": {"max_rows": 5}})
    assert bounded.errors["clean"].startswith(
        "table expectation 'few' (max_rows 5) failed: the step's output has 6 rows"
    )
    assert _quality(bounded) == {"few": (0, 1)}


def test_a_store_step_checks_what_it_writes_before_writing(orders_csv, tmp_path):
    target = tmp_path / "out"

    def store(rule, action):
        return Step(
            "store",
            "save",
            value=str(target),
            params={"format": "parquet"},
            inputs={"data": "clean"},
            expectations={"positive": {"rule": rule, "on_violation": action}},
        )

    failed = _run(orders_csv, store=store("amount > 0", "fail"))
    assert failed.errors["save"].startswith("expectation 'positive' (amount > 0) failed: 2 of 6")
    assert not target.exists()  # nothing committed
    dropped = _run(orders_csv, store=store("amount > 0", "drop"))
    assert dropped.success, dropped.error
    assert pd.read_parquet(target)["order_id"].tolist() == [1, 2, 3, 5]
    assert _quality(dropped, "save") == {"positive": (4, 2)}


def test_a_rule_naming_a_missing_column_is_a_clear_step_error(orders_csv):
    result = _run(orders_csv, expectations={"x": {"rule": "amout > 0"}})
    assert result.errors["clean"] == (
        "expectation 'x' (amout > 0) names amout, which the output lacks (it has amount, "
        "customer_id, email, order_id); fix the rule or the step's output"
    )
