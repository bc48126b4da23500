"""Tests of pipelines/customer_pipeline.yaml, written only with the pytest plugin's public
API (the fixtures run_step, run_pipeline, odibi_engine and odibi_core.testing): the example
a user copies for their own pipelines."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from odibi_core.testing import assert_frames_equal

PIPELINE = Path(__file__).resolve().parents[2] / "pipelines" / "customer_pipeline.yaml"

CUSTOMERS = pd.DataFrame(
    {
        "customer_id": [1, 2],
        "name": ["Alice Smith", "Bob Jones"],
        "email": ["alice@example.com", "bob@example.com"],
        "country": ["DE", "FR"],
    }
)
PRODUCTS = pd.DataFrame(
    {
        "product_id": [10, 20],
        "product_name": ["Lamp", "Desk"],
        "category": ["home", "office"],
        "unit_price": [25.5, 300.0],
    }
)
ORDERS = pd.DataFrame(
    {
        "order_id": [100, 101, 102],
        "order_date": pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04"]).date,
        "customer_id": [1, 2, 9],  # customer 9 does not exist: the inner join drops it
        "product_id": [10, 20, 10],
        "quantity": [2, 3, 1],
    }
)
INPUTS = {"raw_customers": CUSTOMERS, "raw_orders": ORDERS, "raw_products": PRODUCTS}


@pytest.mark.odibi_engines("pandas", "spark")
def test_join_all_keeps_orders_of_known_customers_and_products(run_step):
    joined = run_step("join_all", pipeline=PIPELINE, inputs=INPUTS).output
    expected = pd.DataFrame(
        {
            "order_id": [100, 101],
            "order_date": ORDERS["order_date"][:2],
            "quantity": [2, 3],
            "customer_id": [1, 2],
            "name": ["Alice Smith", "Bob Jones"],
            "email": ["alice@example.com", "bob@example.com"],
            "country": ["DE", "FR"],
            "product_name": ["Lamp", "Desk"],
            "category": ["home", "office"],
            "unit_price": [25.5, 300.0],
        }
    )
    assert_frames_equal(joined, expected)


def test_add_flag_computes_the_amount_and_flags_orders_from_500(run_step):
    joined = pd.DataFrame(
        {"order_id": [1, 2, 3], "quantity": [2, 5, 1], "unit_price": [25.5, 100.0, 499.99]}
    )
    enriched = run_step("add_flag", pipeline=PIPELINE, inputs={"joined": joined}).output
    expected = joined.assign(
        amount=[51.0, 500.0, 499.99], high_value=[False, True, False], new_column=100
    )
    assert_frames_equal(enriched, expected)


@pytest.mark.spark
@pytest.mark.slow  # two runs with Delta merges: tens of seconds
def test_the_whole_pipeline_merges_into_its_table_under_tmp_only(run_pipeline, odibi_spark):
    before = sorted(p.name for p in PIPELINE.parent.iterdir())
    first = run_pipeline(PIPELINE, inputs=INPUTS, engine="spark")
    again = run_pipeline(PIPELINE, inputs=INPUTS, engine="spark")  # merge on order_id
    assert first.targets == {"save_orders": "main.sales.orders_enriched"}
    table = first.table_path("main.sales.orders_enriched")
    assert table.is_relative_to(first.warehouse)
    saved = odibi_spark.read.format("delta").load(str(table))
    assert_frames_equal(saved, again.outputs["enriched"])
    assert sorted(saved.toPandas()["order_id"]) == [100, 101]
    assert [s["step_name"] for s in again.lineage["steps"]] == [
        "join_all",
        "add_flag",
        "save_orders",
    ]
    assert sorted(p.name for p in PIPELINE.parent.iterdir()) == before
