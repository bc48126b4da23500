"""Reads and writes on both engines: files, Delta paths and tables, every write mode."""

from __future__ import annotations

import uuid

import pandas as pd
import pytest
from delta.tables import DeltaTable

from odibi_core.core.errors import EngineError, PipelineConfigError
from odibi_core.core.tables import local_table_path
from odibi_core.engine.base import ReadSpec, WriteSpec
from odibi_core.engine.pandas_engine import PandasEngineContext
from odibi_core.engine.registry import Engines
from odibi_core.engine.spark_engine import SparkEngineContext

pytestmark = pytest.mark.spark

PEOPLE = pd.DataFrame(
    {
        "id": [1, 2, 3],
        "name": ["Alice", None, "Carol"],
        "amount": [10.5, None, 3.25],
        "flag": [True, False, True],
    }
)


@pytest.fixture(scope="module")
def spark_engine(spark, spark_warehouse):
    engine = SparkEngineContext(lambda: spark, warehouse=spark_warehouse)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def pandas_engine(spark_engine):
    return PandasEngineContext(spark_engine=lambda: spark_engine, duckdb_threads=1)


@pytest.fixture(params=["pandas", "spark"])
def engine(request, pandas_engine, spark_engine):
    return pandas_engine if request.param == "pandas" else spark_engine


def rows(engine, frame) -> list[dict]:
    return engine.to_arrow(frame).sort_by("id").to_pylist()


def frame_of(engine, records: list[tuple], columns=("id", "name", "amount")):
    return engine.adopt(pd.DataFrame(records, columns=list(columns)))


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_file_round_trip(engine, tmp_path, fmt):
    target = str(tmp_path / f"people_{fmt}")
    result = engine.write(engine.adopt(PEOPLE), WriteSpec(target=target, format=fmt), step="save")
    if engine.name == "spark":
        assert (result.rows, result.count_source) == (None, "unknown")
    else:
        assert (result.rows, result.count_source) == (3, "in_memory")

    back = engine.read(ReadSpec(source=target, format=fmt), step="load")
    assert rows(engine, back) == [
        {"id": 1, "name": "Alice", "amount": 10.5, "flag": True},
        {"id": 2, "name": None, "amount": None, "flag": False},
        {"id": 3, "name": "Carol", "amount": 3.25, "flag": True},
    ]


def test_each_engine_reads_the_files_the_other_wrote(pandas_engine, spark_engine, tmp_path):
    by_pandas, by_spark = str(tmp_path / "by_pandas"), str(tmp_path / "by_spark")
    pandas_engine.write(PEOPLE, WriteSpec(target=by_pandas, format="csv"), step="w")
    spark_engine.write(
        spark_engine.adopt(PEOPLE), WriteSpec(target=by_spark, format="csv"), step="w"
    )
    on_spark = spark_engine.read(ReadSpec(source=by_pandas, format="csv"), step="r")
    on_pandas = pandas_engine.read(ReadSpec(source=by_spark, format="csv"), step="r")
    assert rows(spark_engine, on_spark) == rows(pandas_engine, on_pandas)
    assert [r["name"] for r in rows(spark_engine, on_spark)] == ["Alice", None, "Carol"]


@pytest.mark.parametrize("fmt", ["delta", "table"])
def test_delta_overwrite_append_and_merge(engine, spark, spark_warehouse, tmp_path, fmt):
    if fmt == "delta":
        target = str(tmp_path / "people_delta")
        location = target
    else:
        target = f"odibi_io.people_{engine.name}_{uuid.uuid4().hex[:6]}"
        location = str(local_table_path(target, spark_warehouse))

    def write(records, **spec):
        frame = frame_of(engine, records)
        return engine.write(frame, WriteSpec(target=target, format=fmt, **spec), step="store")

    first = write([(1, "a", 10.0), (2, "b", 20.0), (3, "c", 30.0)])
    assert (first.rows, first.delta_version, first.count_source) == (3, 0, "commit_metrics")

    appended = write([(4, "d", 40.0)], mode="append")
    assert (appended.rows, appended.delta_version) == (1, 1)

    merged = write([(2, "B", 21.0), (5, "e", 50.0)], mode="merge", merge_keys=("id",))
    assert (merged.rows, merged.rows_inserted, merged.rows_updated) == (2, 1, 1)
    assert merged.delta_version == 2

    partial = write(
        [(1, "ignored", 11.0), (6, "f", 60.0)],
        mode="merge",
        merge_keys=("id",),
        update_columns=("amount",),
    )
    assert (partial.rows, partial.rows_inserted, partial.rows_updated) == (2, 1, 1)

    back = engine.read(ReadSpec(source=target, format=fmt), step="load")
    assert rows(engine, back) == [
        {"id": 1, "name": "a", "amount": 11.0},
        {"id": 2, "name": "B", "amount": 21.0},
        {"id": 3, "name": "c", "amount": 30.0},
        {"id": 4, "name": "d", "amount": 40.0},
        {"id": 5, "name": "e", "amount": 50.0},
        {"id": 6, "name": "f", "amount": 60.0},
    ]
    assert DeltaTable.isDeltaTable(spark, location)


def test_first_merge_creates_the_table_with_every_row_inserted(spark_engine, tmp_path):
    target = str(tmp_path / "fresh")
    frame = frame_of(spark_engine, [(1, "a", 1.0), (2, "b", 2.0)])
    spec = WriteSpec(target=target, format="delta", mode="merge", merge_keys=("id",))
    result = spark_engine.write(frame, spec, step="upsert")
    assert (result.rows, result.rows_inserted, result.rows_updated) == (2, 2, 0)


def test_append_with_a_different_schema_names_the_columns(spark_engine, tmp_path):
    target = str(tmp_path / "typed")
    spark_engine.write(
        frame_of(spark_engine, [(1, "a", 1.0)]), WriteSpec(target=target, format="delta"), step="s"
    )
    wrong = frame_of(spark_engine, [("1", "a", "late")], columns=("id", "name", "note"))
    with pytest.raises(EngineError) as caught:
        spark_engine.write(
            wrong, WriteSpec(target=target, format="delta", mode="append"), step="append_bad"
        )
    assert str(caught.value) == (
        f"step 'append_bad': cannot append to {target}: the data's columns differ from the "
        "table's (missing: amount; extra: note; type changed: id (bigint -> string)); set "
        "merge_schema: true to add new columns, or select and cast the columns to match the table"
    )
    assert caught.value.retryable is False

    wider = frame_of(spark_engine, [(2, "b", 2.0, "new")], columns=("id", "name", "amount", "note"))
    spec = WriteSpec(target=target, format="delta", mode="append", merge_schema=True)
    assert spark_engine.write(wider, spec, step="append_wider").rows == 1
    back = spark_engine.read(ReadSpec(source=target, format="delta"), step="r")
    assert back.columns == ["id", "name", "amount", "note"]


def test_csv_append_suggests_delta_on_spark(spark_engine, tmp_path):
    spec = WriteSpec(target=str(tmp_path / "o"), format="csv", mode="append")
    with pytest.raises(PipelineConfigError, match="use format: delta \\(or table\\) to append"):
        spark_engine.write(spark_engine.adopt(PEOPLE), spec, step="save_csv")


def test_idempotent_append_writes_once(spark_engine, tmp_path):
    target = str(tmp_path / "once")
    frame = frame_of(spark_engine, [(1, "a", 1.0), (2, "b", 2.0)])
    spec = WriteSpec(
        target=target, format="delta", mode="append", txn_app_id="odibi:p:s:t:run1", txn_version=0
    )
    assert spark_engine.write(frame, spec, step="s").rows == 2
    repeated = spark_engine.write(frame, spec, step="s")
    assert (repeated.rows, repeated.delta_version) == (0, None)
    assert spark_engine.count(spark_engine.read(ReadSpec(target, "delta"), step="r")) == 2


def test_commit_tag_clustering_and_properties(spark, spark_engine, spark_warehouse):
    name = f"odibi_io.published_{uuid.uuid4().hex[:6]}"
    spec = WriteSpec(
        target=name,
        format="table",
        cluster_by=("id",),
        comment="People's table",
        properties={"odibi.owner": "data-team"},
        commit_tag="odibi:test:publish",
    )
    result = spark_engine.write(frame_of(spark_engine, [(1, "a", 1.0)]), spec, step="publish")
    assert (result.rows, result.delta_version) == (1, 0)
    path = local_table_path(name, spark_warehouse)
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{path}`").first()
    assert detail["clusteringColumns"] == ["id"]
    assert detail["description"] == "People's table"
    assert detail["properties"]["odibi.owner"] == "data-team"
    tagged = DeltaTable.forPath(spark, str(path)).history().where("version = 0").first()
    assert tagged["userMetadata"] == "odibi:test:publish"


def test_missing_path_and_missing_table_are_named(spark_engine, tmp_path):
    missing = str(tmp_path / "nowhere")
    with pytest.raises(EngineError) as caught:
        spark_engine.read(ReadSpec(source=missing, format="parquet"), step="load_orders")
    assert str(caught.value).startswith("step 'load_orders': cannot read parquet '")
    assert f"the path file:{missing} does not exist" in str(caught.value)
    assert caught.value.retryable is False
    with pytest.raises(EngineError, match="step 'load': table 'odibi_io.absent' does not exist"):
        spark_engine.read(ReadSpec(source="odibi_io.absent", format="table"), step="load")


def test_bad_sql_is_not_retryable_and_names_the_step(spark_engine):
    with pytest.raises(EngineError) as caught:
        spark_engine.sql("SELECT missing_column FROM data", {"data": PEOPLE}, step="pick")
    assert str(caught.value).startswith("step 'pick': Spark could not run the SQL: ")
    assert "UNRESOLVED_COLUMN" in str(caught.value)
    assert caught.value.retryable is False


def test_observed_count_settles_with_the_action_and_times_out_without_one(spark_engine):
    frame = spark_engine.adopt(PEOPLE)
    observed, count = spark_engine.observe_count(frame, "people")
    assert count.get(timeout=0.2) is None
    assert count.reason == "no action ran over the observed frame within 0.2s"
    observed.collect()
    assert count.get(timeout=30) == 3
    assert count.reason is None


def test_registry_starts_spark_only_when_asked_and_converts(spark, spark_warehouse):
    engines = Engines(spark=spark, warehouse=spark_warehouse)
    pandas_frame = engines.get("pandas").sql("SELECT 1 AS id", {}, step="s")
    assert engines.spark_started is False
    spark_frame = engines.convert(pandas_frame, "spark")
    assert engines.spark_started is True
    assert engines.frame_engine(spark_frame) == "spark"
    back = engines.presentable(engines.convert(spark_frame, "pandas"))
    assert back.to_dict("list") == {"id": [1]}
    engines.close()
