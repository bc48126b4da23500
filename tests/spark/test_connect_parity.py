"""The classic half of the Connect parity check: the pipeline tests/connect runs over
Spark Connect, here on the local classic session, with the same lineage counts."""

import pytest

from odibi_core.orchestrator import Orchestrator
from tests.connect.pipelines import (
    ORDERS_COUNTS,
    ORDERS_SOURCES,
    after_counts,
    orders_steps,
    write_orders,
)

pytestmark = pytest.mark.spark


def test_csv_sql_delta_counts_on_a_classic_session(spark, tmp_path):
    source = write_orders(tmp_path / "in")
    result = Orchestrator(
        steps=orders_steps(source, tmp_path / "totals"), engine_type="spark", spark=spark
    ).execute()
    assert result.success, result.error
    assert after_counts(result["tracker"].to_lineage()) == (ORDERS_COUNTS, ORDERS_SOURCES)
