"""Pipelines run both on a classic local session (tests/spark) and over Spark Connect
(tests/connect), with the lineage counts each must report: the same numbers on both."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from odibi_core import Step

# csv -> SQL -> SQL -> Delta: the rows each step's after-snapshot reports.
ORDERS_COUNTS = {"read_orders": 8, "paid_orders": 6, "per_customer": 3, "store_totals": 3}
ORDERS_SOURCES = {
    "read_orders": "observed",
    "paid_orders": "observed",
    "per_customer": "observed",
    "store_totals": "commit_metrics",
}


def write_orders(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "order_id": [1, 2, 3, 4, 5, 6, 7, 8],
            "customer": ["a", "b", "a", "c", "b", "a", "c", "b"],
            "amount": [5.0, 7.5, 1.25, 3.0, 2.0, 4.0, 9.0, 1.0],
            "status": ["paid", "paid", "open", "paid", "paid", "open", "paid", "paid"],
        }
    ).to_csv(folder / "orders.csv", index=False)
    return folder / "orders.csv"


def orders_steps(source: Path, target: Path) -> list[Step]:
    return [
        Step(layer="ingest", name="read_orders", value=str(source), outputs={"data": "raw"}),
        Step(
            layer="transform",
            name="paid_orders",
            type="sql",
            value="SELECT * FROM orders WHERE status = 'paid'",
            inputs={"orders": "raw"},
            outputs={"data": "paid"},
        ),
        Step(
            layer="transform",
            name="per_customer",
            type="sql",
            value=(
                "SELECT customer, COUNT(*) AS orders, SUM(amount) AS total "
                "FROM paid GROUP BY customer"
            ),
            inputs={"paid": "paid"},
            outputs={"data": "totals"},
        ),
        Step(
            layer="store",
            name="store_totals",
            value=str(target),
            params={"format": "delta"},
            inputs={"data": "totals"},
        ),
    ]


def after_counts(lineage: dict) -> tuple[dict, dict]:
    """Each step's after-snapshot row count and count source, by step name."""
    steps = lineage["steps"]
    counts = {s["step_name"]: s["after_snapshot"]["row_count"] for s in steps}
    sources = {s["step_name"]: s["after_snapshot"]["count_source"] for s in steps}
    return counts, sources
