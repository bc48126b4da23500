"""Nodes: the layer registry, ingest, transform (sql and function), store and publish.

Frames are real pandas frames run through the real pandas engine; no JVM starts here.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from odibi_core.core.config import validate_steps
from odibi_core.core.errors import EngineError, PipelineConfigError
from odibi_core.core.locations import locate
from odibi_core.core.step import Step
from odibi_core.engine.base import ReadSpec
from odibi_core.engine.registry import Engines
from odibi_core.nodes import (
    NodeContractError,
    NodeResult,
    PublishNode,
    get_node,
    register_node,
    run_node,
)
from odibi_core.nodes.store import write_spec_for

MODULE = __name__


@pytest.fixture
def engines():
    engines = Engines()
    yield engines
    engines.close()


def run(step: Step, engines: Engines, inputs=None, base_dir: Path | None = None) -> NodeResult:
    return run_node(
        step, engine=engines.get("pandas"), inputs=inputs or {}, base_dir=base_dir, engines=engines
    )


def customers() -> pd.DataFrame:
    return pd.DataFrame({"id": [1, 2, 3], "name": ["Alice", "Bob", "Carol"]})


# --------------------------------------------------------------------------- registry


def test_a_custom_kind_is_validated_and_runs_through_run_node(engines):
    step = Step(
        layer="row_tagger", name="tag", inputs={"data": "raw"}, outputs={"tagged": "tagged"}
    )
    producer = Step(layer="ingest", name="read", value="c.csv", outputs={"data": "raw"})
    assert any("unknown layer 'row_tagger'" in p for p in validate_steps([producer, step]))

    @register_node("row_tagger")
    class RowTagger:
        def run(self, step: Step, ctx) -> NodeResult:
            frame = ctx.inputs["data"].assign(tag=step.name)
            return NodeResult(outputs={"tagged": frame})

    assert validate_steps([producer, step]) == []
    result = run(step, engines, inputs={"data": customers()})

    assert result.outputs["tagged"]["tag"].tolist() == ["tag", "tag", "tag"]
    assert isinstance(get_node("row_tagger"), RowTagger)


def test_a_plain_function_can_be_a_node(engines):
    @register_node("row_counter")
    def count_rows(step, ctx):
        return NodeResult(outputs={"n": pd.DataFrame({"rows": [len(ctx.inputs["data"])]})})

    step = Step(layer="row_counter", name="count", inputs={"data": "raw"}, outputs={"n": "n"})

    assert run(step, engines, inputs={"data": customers()}).outputs["n"]["rows"].tolist() == [3]


def test_registering_a_kind_twice_needs_replace():
    @register_node("twice_registered")
    def first(step, ctx):
        return NodeResult()

    with pytest.raises(PipelineConfigError) as twice:
        register_node("twice_registered")(lambda step, ctx: NodeResult())
    assert "kind 'twice_registered' is already registered" in str(twice.value)
    assert "pass replace=True" in str(twice.value)

    with pytest.raises(PipelineConfigError, match=r"must accept \(step, ctx\)"):
        register_node("wrong_arity", replace=True)(lambda step: NodeResult())


def test_an_unknown_layer_names_the_closest_kind():
    with pytest.raises(PipelineConfigError) as unknown:
        get_node("transfrom")
    assert str(unknown.value).startswith(
        "no node is registered for layer 'transfrom' (did you mean 'transform'?)"
    )


def test_a_node_that_returns_the_wrong_outputs_breaks_its_contract(engines):
    @register_node("wrong_outputs")
    def wrong(step, ctx):
        return NodeResult(outputs={"other": customers()})

    step = Step(layer="wrong_outputs", name="w", outputs={"data": "d"})

    with pytest.raises(NodeContractError) as broken:
        run(step, engines)
    assert str(broken.value) == (
        "wrong_outputs step 'w': node "
        f"{MODULE}.test_a_node_that_returns_the_wrong_outputs_breaks_its_contract.<locals>.wrong"
        " returned outputs ['other'] but the step declares ['data'] "
        "(missing 'data'; undeclared 'other')"
    )


# --------------------------------------------------------------------------- ingest


def test_ingest_reads_a_csv_relative_to_base_dir(engines, tmp_path):
    (tmp_path / "data").mkdir()
    customers().to_csv(tmp_path / "data" / "customers.csv", index=False)
    step = Step(layer="ingest", name="read", value="data/customers.csv", outputs={"data": "raw"})

    result = run(step, engines, base_dir=tmp_path)

    assert result.outputs["data"]["name"].tolist() == ["Alice", "Bob", "Carol"]
    assert result.read == ReadSpec(
        source=str(tmp_path / "data" / "customers.csv"), format="csv", options={}
    )


def test_ingest_passes_params_options_as_reader_options(engines, tmp_path):
    (tmp_path / "c.txt").write_text("id;name\n1;Alice\n")
    step = Step(
        layer="ingest",
        name="read",
        value="c.txt",
        params={"format": "csv", "options": {"delimiter": ";", "header": True}},
        outputs={"data": "raw"},
    )

    result = run(step, engines, base_dir=tmp_path)

    assert result.read.options == {"delimiter": ";", "header": True}
    assert result.outputs["data"].to_dict("records") == [{"id": 1, "name": "Alice"}]


def test_ingest_of_a_missing_file_is_not_retryable(engines, tmp_path):
    step = Step(layer="ingest", name="read", value="nope.csv", outputs={"data": "raw"})

    with pytest.raises(EngineError) as missing:
        run(step, engines, base_dir=tmp_path)

    assert missing.value.retryable is False
    assert str(missing.value) == (
        f"step 'read': input path '{tmp_path / 'nope.csv'}' does not exist; "
        "check 'value' ('nope.csv') and the folder it is relative to"
    )


def test_ingest_without_a_known_format_lists_the_formats(engines, tmp_path):
    step = Step(layer="ingest", name="read", value="data/customers", outputs={"data": "raw"})

    with pytest.raises(PipelineConfigError) as unknown:
        run(step, engines, base_dir=tmp_path)

    assert "ingest step 'read'" in str(unknown.value)
    assert str(unknown.value).endswith("csv, json, parquet, delta, table")


def test_ingest_of_an_invalid_table_name_names_the_step(tmp_path):
    step = Step(
        layer="ingest",
        name="read",
        value="main.sales.orders; DROP",
        params={"format": "table"},
        outputs={"data": "raw"},
    )

    with pytest.raises(PipelineConfigError, match=r"^step 'read': 'main.sales.orders; DROP' is"):
        locate(step, tmp_path)


# --------------------------------------------------------------------------- transform


def test_sql_transform_refers_to_inputs_by_logical_name(engines):
    step = Step(
        layer="transform",
        name="add_flag",
        type="sql",
        value="SELECT *, 100 AS new_column FROM bronze WHERE id > 1",
        inputs={"bronze": "raw_customers"},
        outputs={"data": "flagged"},
    )

    frame = engines.presentable(run(step, engines, inputs={"bronze": customers()}).outputs["data"])

    assert frame.to_dict("records") == [
        {"id": 2, "name": "Bob", "new_column": 100},
        {"id": 3, "name": "Carol", "new_column": 100},
    ]


def keep_above(customers: pd.DataFrame, threshold: int) -> pd.DataFrame:
    return customers[customers["id"] > threshold].reset_index(drop=True)


def split_by_id(customers: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {"low": customers[customers["id"] < 2], "high": customers[customers["id"] >= 2]}


def returns_a_number(customers: pd.DataFrame) -> int:
    return 3


def function_step(ref: str, outputs=None, **params) -> Step:
    return Step(
        layer="transform",
        name="fn",
        value=ref,
        params=params,
        inputs={"customers": "raw"},
        outputs=outputs or {"data": "out"},
    )


def test_function_transform_gets_inputs_and_params_as_keywords(engines):
    step = function_step(f"{MODULE}:keep_above", threshold=1)

    frame = run(step, engines, inputs={"customers": customers()}).outputs["data"]

    assert frame["name"].tolist() == ["Bob", "Carol"]


def test_function_transform_may_return_one_frame_per_output(engines):
    step = function_step(f"{MODULE}:split_by_id", outputs={"low": "low", "high": "high"})

    outputs = run(step, engines, inputs={"customers": customers()}).outputs

    assert outputs["low"]["id"].tolist() == [1]
    assert outputs["high"]["id"].tolist() == [2, 3]


def test_function_dict_with_wrong_keys_names_them(engines):
    step = function_step(f"{MODULE}:split_by_id", outputs={"low": "low", "middle": "middle"})

    with pytest.raises(PipelineConfigError) as wrong:
        run(step, engines, inputs={"customers": customers()})

    assert str(wrong.value) == (
        f"transform step 'fn': {MODULE}:split_by_id returned keys ['low', 'high'] but the step "
        "declares outputs ['low', 'middle'] (missing 'middle'; not declared 'high'); "
        "return a dict keyed by the output names"
    )


def test_one_frame_for_several_outputs_is_an_error(engines):
    step = function_step(f"{MODULE}:keep_above", outputs={"a": "a", "b": "b"}, threshold=0)

    with pytest.raises(
        PipelineConfigError, match=r"returned one DataFrame, but the step declares 2"
    ):
        run(step, engines, inputs={"customers": customers()})


def test_a_function_must_return_frames(engines):
    step = function_step(f"{MODULE}:returns_a_number")

    with pytest.raises(PipelineConfigError, match=r"returned a int for output 'data'"):
        run(step, engines, inputs={"customers": customers()})


def test_unknown_module_names_module_and_function(engines):
    step = function_step("no_such_package.transforms:clean")

    with pytest.raises(PipelineConfigError) as unknown:
        run(step, engines, inputs={"customers": customers()})

    assert unknown.value.retryable is False
    assert str(unknown.value).startswith(
        "transform step 'fn': cannot import module 'no_such_package.transforms' for function "
        "'clean' (No module named 'no_such_package')"
    )


def test_unknown_function_suggests_a_close_name(engines):
    step = function_step(f"{MODULE}:keep_abov", threshold=1)

    with pytest.raises(PipelineConfigError) as unknown:
        run(step, engines, inputs={"customers": customers()})

    assert str(unknown.value) == (
        f"transform step 'fn': module '{MODULE}' has no function 'keep_abov' "
        "(did you mean 'keep_above'?)"
    )


def test_an_input_and_a_param_with_one_name_clash(engines):
    step = function_step(f"{MODULE}:keep_above", customers=1, threshold=1)

    with pytest.raises(PipelineConfigError) as clash:
        run(step, engines, inputs={"customers": customers()})

    assert str(clash.value) == (
        f"transform step 'fn': 'customers' is both an input and a param, so "
        f"{MODULE}:keep_above would receive it twice; rename the input or the param"
    )


# --------------------------------------------------------------------------- store / publish


def store_step(value: str, layer: str = "store", outputs=None, metadata=None, **params) -> Step:
    return Step(
        layer=layer,
        name="save",
        value=value,
        params=params,
        inputs={"data": "flagged"},
        outputs=outputs or {},
        metadata=metadata or {},
    )


def test_store_writes_parquet_and_passes_the_frame_on(engines, tmp_path):
    step = store_step("out/customers.parquet", outputs={"data": "stored"})

    result = run(step, engines, inputs={"data": customers()}, base_dir=tmp_path)

    written = pd.read_parquet(tmp_path / "out" / "customers.parquet")
    assert written["name"].tolist() == ["Alice", "Bob", "Carol"]
    assert result.write is not None and result.write.rows == 3
    assert result.outputs["data"]["id"].tolist() == [1, 2, 3]


def test_append_to_csv_suggests_delta(engines, tmp_path):
    step = store_step("out/customers.csv", mode="append")

    with pytest.raises(PipelineConfigError) as append:
        run(step, engines, inputs={"data": customers()}, base_dir=tmp_path)

    assert str(append.value) == (
        f"store step 'save': mode 'append' cannot write csv files at "
        f"'{tmp_path / 'out' / 'customers.csv'}'; set format: delta (or format: table) "
        "to append safely"
    )
    assert not (tmp_path / "out").exists()


def test_store_needs_exactly_one_input(engines, tmp_path):
    step = Step(
        layer="store",
        name="save",
        value="o.parquet",
        inputs={"a": "x", "b": "y"},
    )

    with pytest.raises(PipelineConfigError, match=r"writes exactly one input, but it has 2"):
        run(step, engines, inputs={"a": customers(), "b": customers()}, base_dir=tmp_path)


def test_write_spec_carries_merge_and_layout_params(tmp_path):
    step = store_step(
        "main.sales.customers",
        format="table",
        mode="merge",
        merge_keys="id",
        update_columns=["name"],
        cluster_by=["id"],
        merge_schema=True,
        options={"compression": "zstd"},
    )

    spec = write_spec_for(step, locate(step, tmp_path), pipeline="p", run_id="r1")

    assert (spec.target, spec.format, spec.mode) == ("main.sales.customers", "table", "merge")
    assert spec.merge_keys == ("id",) and spec.update_columns == ("name",)
    assert spec.cluster_by == ("id",) and spec.partition_by == ()
    assert spec.merge_schema is True
    assert dict(spec.options) == {"compression": "zstd"}
    assert spec.txn_app_id is None  # merges are idempotent without a transaction id


def test_appends_carry_an_exactly_once_transaction_id(tmp_path):
    step = store_step("lake/events", format="delta", mode="append")

    spec = write_spec_for(step, locate(step, tmp_path), pipeline="sales", run_id="run-7")

    assert spec.txn_app_id == f"odibi:sales:save:{tmp_path / 'lake' / 'events'}:run-7"
    assert spec.txn_version == 0


def test_merge_without_keys_and_unknown_modes_are_config_errors(tmp_path):
    merge = store_step("t", format="delta", mode="merge")
    upsert = store_step("t", format="delta", mode="upsert")

    with pytest.raises(PipelineConfigError, match=r"mode 'merge' needs params.merge_keys"):
        write_spec_for(merge, locate(merge, tmp_path))
    with pytest.raises(PipelineConfigError, match=r"write mode 'upsert' is not one of"):
        write_spec_for(upsert, locate(upsert, tmp_path))


def test_publish_documents_the_table_from_metadata(tmp_path):
    step = store_step(
        "gold/customers",
        layer="publish",
        format="delta",
        metadata={
            "description": "One row per customer",
            "owner": "sales-data",
            "properties": {"quality": "gold", "sla_hours": 24},
        },
    )

    comment, properties = PublishNode().documentation(step, locate(step, tmp_path))

    assert comment == "One row per customer"
    assert properties == {"quality": "gold", "sla_hours": "24", "odibi.owner": "sales-data"}


def test_publish_refuses_properties_spark_reserves(tmp_path):
    step = store_step(
        "gold/customers",
        layer="publish",
        format="delta",
        metadata={"properties": {"owner": "me", "comment": "x", "tier": "1"}},
    )

    with pytest.raises(PipelineConfigError) as reserved:
        PublishNode().documentation(step, locate(step, tmp_path))

    assert str(reserved.value).startswith(
        "publish step 'save': metadata.properties sets 'comment', 'owner', which Spark reserves"
    )


def test_publish_to_plain_files_is_a_config_error(engines, tmp_path):
    step = store_step("gold/customers.csv", layer="publish")

    with pytest.raises(PipelineConfigError) as not_delta:
        run(step, engines, inputs={"data": customers()}, base_dir=tmp_path)

    assert "publish writes a Delta table so it can carry a comment and properties" in str(
        not_delta.value
    )
