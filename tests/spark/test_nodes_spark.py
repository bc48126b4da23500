"""Nodes on the real Spark engine: Delta and table ingest, merge, publish, engine crossing."""

from __future__ import annotations

import pytest
from chispa import assert_df_equality

from odibi_core.core.step import Step
from odibi_core.core.tables import local_table_path
from odibi_core.engine.registry import Engines
from odibi_core.nodes import run_node

pytestmark = pytest.mark.spark

SCHEMA = "id long, name string"


@pytest.fixture
def engines(spark, spark_warehouse):
    engines = Engines(spark=spark, warehouse=spark_warehouse)
    yield engines
    engines.close()


def run(step: Step, engines: Engines, engine: str = "spark", inputs=None, base_dir=None):
    return run_node(
        step, engine=engines.get(engine), inputs=inputs or {}, base_dir=base_dir, engines=engines
    )


def test_ingest_reads_a_delta_path_and_a_table(spark, spark_warehouse, engines, tmp_path):
    people = spark.createDataFrame([(1, "Alice"), (2, "Bob")], SCHEMA)
    people.write.format("delta").save(str(tmp_path / "people"))
    people.write.format("delta").save(str(local_table_path("crm.people", spark_warehouse)))
    by_path = Step(layer="ingest", name="by_path", value="people", outputs={"data": "a"})
    by_name = Step(
        layer="ingest",
        name="by_name",
        value="crm.people",
        params={"format": "table"},
        outputs={"data": "b"},
    )

    from_path = run(by_path, engines, base_dir=tmp_path)
    from_table = run(by_name, engines)

    assert from_path.read.format == "delta"
    assert from_table.read.source == "crm.people"
    assert_df_equality(from_path.outputs["data"], people, ignore_row_order=True)
    assert_df_equality(from_table.outputs["data"], people, ignore_row_order=True)


def test_store_merges_through_a_node(spark, engines, tmp_path):
    def store(mode: str, **params) -> Step:
        return Step(
            layer="store",
            name=f"save_{mode}",
            value="customers",
            params={"format": "delta", "mode": mode, **params},
            inputs={"data": "rows"},
        )

    first = spark.createDataFrame([(1, "Alice"), (2, "Bob")], SCHEMA)
    changes = spark.createDataFrame([(2, "Robert"), (3, "Carol")], SCHEMA)
    run(store("overwrite"), engines, inputs={"data": first}, base_dir=tmp_path)

    merged = run(
        store("merge", merge_keys=["id"]), engines, inputs={"data": changes}, base_dir=tmp_path
    )

    assert (merged.write.rows_inserted, merged.write.rows_updated) == (1, 1)
    expected = spark.createDataFrame([(1, "Alice"), (2, "Robert"), (3, "Carol")], SCHEMA)
    actual = spark.read.format("delta").load(str(tmp_path / "customers"))
    assert_df_equality(actual, expected, ignore_row_order=True)


def test_publish_sets_the_table_comment_and_properties(spark, engines, tmp_path):
    step = Step(
        layer="publish",
        name="publish_customers",
        value="gold_customers",
        params={"format": "delta"},
        inputs={"data": "rows"},
        outputs={"data": "published"},
        metadata={
            "description": "One row per customer",
            "owner": "sales-data",
            "properties": {"quality": "gold"},
        },
    )
    rows = spark.createDataFrame([(1, "Alice")], SCHEMA)

    result = run(step, engines, inputs={"data": rows}, base_dir=tmp_path)

    path = str(tmp_path / "gold_customers").replace("`", "``")
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{path}`").first()
    assert detail["description"] == "One row per customer"
    assert detail["properties"]["quality"] == "gold"
    assert detail["properties"]["odibi.owner"] == "sales-data"
    assert result.write.rows == 1
    assert result.outputs["data"] is rows


def test_a_pandas_step_reads_a_spark_output_through_arrow(spark, engines, tmp_path):
    spark.createDataFrame([(1, "Alice"), (2, "Bob")], SCHEMA).write.format("delta").save(
        str(tmp_path / "people")
    )
    ingest = Step(layer="ingest", name="read", value="people", outputs={"data": "raw"})
    upper = Step(
        layer="transform",
        name="upper",
        type="sql",
        value="SELECT id, upper(name) AS name FROM people ORDER BY id",
        inputs={"people": "raw"},
        outputs={"data": "shouted"},
    )

    spark_frame = run(ingest, engines, base_dir=tmp_path).outputs["data"]
    as_pandas = engines.convert(spark_frame, "pandas")
    result = run(upper, engines, engine="pandas", inputs={"people": as_pandas})

    assert engines.frame_engine(spark_frame) == "spark"
    assert engines.presentable(result.outputs["data"]).to_dict("records") == [
        {"id": 1, "name": "ALICE"},
        {"id": 2, "name": "BOB"},
    ]
