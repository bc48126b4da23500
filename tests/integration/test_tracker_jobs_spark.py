"""The tracker on Spark submits no job of its own: a file ingest's sample and a parquet
file's count come from the files, the other counts ride on the run's own actions."""

import pandas as pd
import pytest

from odibi_core import Step
from odibi_core.orchestrator import Orchestrator
from tests.integration.test_tracker_spark import jobs_run_by

pytestmark = pytest.mark.spark


@pytest.fixture
def sources(tmp_path):
    orders = pd.DataFrame(
        {"order_id": range(1, 31), "customer_id": [i % 4 for i in range(30)], "amount": 2.5}
    )
    orders.to_parquet(tmp_path / "orders.parquet", index=False)
    pd.DataFrame({"customer_id": range(4), "region": ["n", "s", "e", "w"]}).to_csv(
        tmp_path / "customers.csv", index=False
    )
    return tmp_path


def steps(folder, target):
    return [
        Step(
            layer="ingest",
            name="orders",
            value=str(folder / "orders.parquet"),
            outputs={"data": "orders"},
        ),
        Step(
            layer="ingest",
            name="customers",
            value=str(folder / "customers.csv"),
            outputs={"data": "c"},
        ),
        Step(
            layer="transform",
            name="totals",
            type="sql",
            value=(
                "SELECT c.region, SUM(o.amount) AS total FROM o JOIN c "
                "ON o.customer_id = c.customer_id GROUP BY c.region"
            ),
            inputs={"o": "orders", "c": "c"},
            outputs={"data": "totals"},
        ),
        # A parquet store: one job, where a Delta commit would add several to both runs.
        Step(
            layer="store",
            name="save",
            value=str(target),
            params={"format": "parquet"},
            inputs={"data": "totals"},
        ),
    ]


def test_tracker_on_submits_no_more_spark_jobs_than_tracker_off(spark, sources):
    def run(tracked, target):
        return Orchestrator(
            steps=steps(sources, sources / target),
            engine_type="spark",
            spark=spark,
            enable_tracker=tracked,
        ).execute(raise_on_error=True)

    # The tracked run goes first: a job only a first run submits counts against it, so
    # the test can fail spuriously on a cold session but never pass wrongly.
    results = []
    tracked = jobs_run_by(spark, lambda: results.append(run(True, "on")))
    untracked = jobs_run_by(spark, lambda: run(False, "off"))
    assert untracked > 0
    assert tracked <= untracked

    after = {r.step_name: r.after_snapshot for r in results[0].tracker.step_executions}
    assert (after["orders"].row_count, after["orders"].count_source) == (30, "exact")
    assert after["orders"].sample[:2] == [
        {"order_id": 1, "customer_id": 0, "amount": 2.5},
        {"order_id": 2, "customer_id": 1, "amount": 2.5},
    ]
    assert (after["customers"].row_count, after["customers"].count_source) == (4, "observed")
    assert after["customers"].sample[0] == {"customer_id": 0, "region": "n"}
    assert {after[s].sample_source for s in ("orders", "customers")} == {"file_scan"}
    assert after["totals"].row_count == 4
