"""The pandas engine keeps a parquet ingest as a lazy scan and SQL results as Arrow: DuckDB
reads only what a query needs, and pandas appears only where a user asks for it."""

from __future__ import annotations

import datetime as dt
import threading

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from odibi_core import Step
from odibi_core.core.errors import EngineError
from odibi_core.engine.base import ReadSpec
from odibi_core.engine.pandas_engine import PandasEngineContext
from odibi_core.engine.parquet_scan import ParquetScan
from odibi_core.orchestrator import Orchestrator

UTC = dt.timezone.utc


@pytest.fixture
def orders(tmp_path):
    """A folder of two parquet part files, as Spark writes them, with a naive timestamp."""
    folder = tmp_path / "orders"
    folder.mkdir()
    (folder / "_SUCCESS").touch()
    for part, ids in enumerate(([1, 2, 3], [4, 5])):
        table = pa.table(
            {
                "order_id": pa.array(ids, pa.int64()),
                "customer": pa.array([f"c{i % 2}" for i in ids]),
                "amount": pa.array([i * 10.0 for i in ids]),
                "placed": pa.array(
                    [dt.datetime(2024, 1, i, 23, 30) for i in ids], pa.timestamp("us")
                ),
            }
        )
        pq.write_table(table, folder / f"part-0000{part}.parquet")
    return folder


def _steps(orders, *transforms: Step) -> list[Step]:
    ingest = Step(
        layer="ingest",
        name="read",
        value=str(orders),
        params={"format": "parquet"},
        outputs={"data": "orders"},
    )
    return [ingest, *transforms]


def _sql(name: str, query: str, output: str | None = None) -> Step:
    return Step(
        layer="transform",
        name=name,
        type="sql",
        value=query,
        inputs={"orders": "orders"},
        outputs={"data": output or name},
    )


def test_a_parquet_ingest_is_a_scan_counted_and_described_from_its_footers(orders, monkeypatch):
    engine = PandasEngineContext(duckdb_threads=1)
    monkeypatch.setattr(pq, "read_table", _refuse)  # no data read for count and schema
    scan = engine.read(ReadSpec(str(orders), "parquet"), step="read")

    assert isinstance(scan, ParquetScan)
    assert engine.count(scan) == 5
    assert engine.schema(scan) == [
        "order_id: int64",
        "customer: string",
        "amount: double",
        "placed: timestamp[us, tz=UTC]",
    ]
    assert engine.sample(scan, 2) == [
        {"order_id": 1, "customer": "c1", "amount": 10.0, "placed": "2024-01-01T23:30:00+00:00"},
        {"order_id": 2, "customer": "c0", "amount": 20.0, "placed": "2024-01-02T23:30:00+00:00"},
    ]


def test_sql_over_a_scan_reads_the_files_in_duckdb_and_agrees_with_the_arrow_path(
    orders, monkeypatch
):
    query = (
        "SELECT customer, count(*) AS n, sum(amount) AS total, max(to_date(placed)) AS last "
        "FROM orders WHERE amount > 10 GROUP BY customer ORDER BY customer"
    )
    engine = PandasEngineContext(duckdb_threads=1)
    eager = engine.adopt(engine.sql(query, {"orders": pq.read_table(orders)}, step="agg"))
    scan = engine.read(ReadSpec(str(orders), "parquet"), step="read")
    monkeypatch.setattr(pq, "read_table", _refuse)  # DuckDB reads the files, pyarrow does not

    lazy = engine.adopt(engine.sql(query, {"orders": scan}, step="agg"))

    pd.testing.assert_frame_equal(lazy, eager)
    assert lazy.to_dict("list") == {
        "customer": ["c0", "c1"],
        "n": [2, 2],
        "total": [60.0, 80.0],
        "last": [dt.date(2024, 1, 4), dt.date(2024, 1, 5)],
    }


SEEN: list[type] = []
STARTED = threading.Barrier(4, timeout=30)


def top(orders: pd.DataFrame) -> pd.DataFrame:
    SEEN.append(type(orders))
    return orders.nlargest(2, "amount")


def wait_for_others(orders: pd.DataFrame) -> pd.DataFrame:
    STARTED.wait()  # the four threads are busy at once
    return orders


def test_a_pipeline_returns_pandas_and_functions_get_pandas(orders):
    SEEN.clear()
    steps = _steps(
        orders,
        _sql("totals", "SELECT customer, sum(amount) AS total FROM orders GROUP BY customer"),
        Step(
            layer="transform",
            name="top",
            type="function",
            value=f"{__name__}:top",
            inputs={"orders": "orders"},
            outputs={"data": "top"},
        ),
    )
    result = Orchestrator(steps=steps, engine_type="pandas").execute(raise_on_error=True)

    assert [pd.DataFrame] == SEEN
    assert all(isinstance(frame, pd.DataFrame) for frame in result.data_map.values())
    totals = result.data_map["totals"].sort_values("customer")
    assert totals.to_dict("list") == {"customer": ["c0", "c1"], "total": [60.0, 90.0]}
    assert result.data_map["top"]["order_id"].tolist() == [5, 4]


def test_a_source_replaced_after_its_ingest_fails_the_reading_step_by_name(orders):
    engine = PandasEngineContext(duckdb_threads=1)
    scan = engine.read(ReadSpec(str(orders), "parquet"), step="read")
    pq.write_table(pa.table({"order_id": [9]}), orders / "part-00000.parquet")

    with pytest.raises(EngineError) as caught:
        engine.sql("SELECT count(*) AS n FROM orders", {"orders": scan}, step="count_orders")

    message = str(caught.value)
    assert message.startswith(
        f"step 'count_orders': the parquet source '{orders}' changed after its ingest step "
        "read it (part-00000.parquet was rewritten)"
    )
    assert caught.value.retryable is False


def test_a_stored_pandas_index_is_not_a_column(tmp_path):
    frame = pd.DataFrame({"id": [1, 2, 3]}, index=[10, 20, 30])
    frame.to_parquet(tmp_path / "indexed.parquet")  # the index is stored as a column
    engine = PandasEngineContext(duckdb_threads=1)

    read = engine.read(ReadSpec(str(tmp_path / "indexed.parquet"), "parquet"), step="read")

    assert engine.schema(read) == ["id: int64"]
    assert engine.adopt(read)["id"].tolist() == [1, 2, 3]


def test_many_sql_steps_read_one_scan_at_once(orders):
    """Twelve steps over one scan in four threads: each sees every row, none another's."""
    STARTED.reset()
    queries = [
        _sql(f"q{i}", f"SELECT sum(amount) + {i} AS total, count(*) AS n FROM orders")
        for i in range(12)
    ]
    gates = [
        Step(
            layer="transform",
            name=f"gate{i}",
            type="function",
            value=f"{__name__}:wait_for_others",
            inputs={"orders": "orders"},
            outputs={"data": f"gate{i}"},
        )
        for i in range(4)
    ]
    result = Orchestrator(
        steps=_steps(orders, *gates, *queries), engine_type="pandas", max_workers=4
    ).execute(raise_on_error=True)

    for i in range(12):
        assert result.data_map[f"q{i}"].to_dict("list") == {"total": [150.0 + i], "n": [5]}
    for i in range(4):
        assert len(result.data_map[f"gate{i}"]) == 5


def _refuse(*args, **kwargs):
    raise AssertionError("the whole parquet source was read")
