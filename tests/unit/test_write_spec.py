"""The write rules, stated once in ``write_spec``: each rule's message, for a pipeline's
params and for a spec built through the engine API."""

from __future__ import annotations

import pytest

from odibi_core.core.errors import PipelineConfigError
from odibi_core.core.step import Step
from odibi_core.core.step_params import param_problems, write_spec_for_step
from odibi_core.core.write_spec import WriteSpec


def _store(**params) -> Step:
    return Step(layer="store", name="save", value="out/t", params=params, inputs={"data": "raw"})


def _refused(spec: WriteSpec) -> str:
    with pytest.raises(PipelineConfigError) as caught:
        spec.check(step="save")
    return str(caught.value)


SPEC_RULES = [
    (
        "unknown_format",
        WriteSpec(target="t", format="parquett"),
        "format 'parquett' is not one of csv, json, parquet, delta, table "
        "(did you mean 'parquet'?)",
    ),
    (
        "unknown_mode",
        WriteSpec(target="t", format="delta", mode="apend"),
        "write mode 'apend' is not one of overwrite, append, merge (did you mean 'append'?)",
    ),
    (
        "mode_not_exact",
        WriteSpec(target="t", format="delta", mode="Append"),
        "write mode 'Append' is not one of overwrite, append, merge (did you mean 'append'?)",
    ),
    (
        "unknown_merge_null_keys",
        WriteSpec(
            target="t", format="delta", mode="merge", merge_keys=("id",), merge_null_keys="skip"
        ),
        "merge_null_keys 'skip' is not one of error, insert",
    ),
    (
        "file_append",
        WriteSpec(target="t", format="json", mode="append"),
        "mode 'append' is not supported for json files, which can only be overwritten; "
        "use format: delta (or table) to append",
    ),
    (
        "cluster_by_on_a_file",
        WriteSpec(target="t", format="parquet", cluster_by=("id",)),
        "cluster_by needs format delta or table, not parquet",
    ),
    (
        "merge_schema_on_a_file",
        WriteSpec(target="t", format="csv", merge_schema=True),
        "merge_schema needs format delta or table, not csv",
    ),
    (
        "merge_without_keys",
        WriteSpec(target="t", format="delta", mode="merge"),
        "mode 'merge' needs merge_keys, the columns that identify a row",
    ),
    (
        "update_columns_without_merge",
        WriteSpec(target="t", format="delta", mode="append", update_columns=("a",)),
        "update_columns only applies to mode 'merge', not 'append'",
    ),
    (
        "merge_keys_without_merge",
        WriteSpec(target="t", format="delta", merge_keys=("id",)),
        "merge_keys only applies to mode 'merge', not 'overwrite'",
    ),
    (
        "partition_and_cluster",
        WriteSpec(target="t", format="delta", partition_by=("a",), cluster_by=("b",)),
        "set partition_by or cluster_by, not both; Delta tables are either partitioned or "
        "clustered",
    ),
    (
        "half_a_transaction",
        WriteSpec(target="t", format="delta", mode="append", txn_app_id="odibi:p:s:t:r"),
        "txn_app_id and txn_version go together; set both or neither",
    ),
]


@pytest.mark.parametrize(
    ("spec", "problem"), [pytest.param(spec, p, id=case) for case, spec, p in SPEC_RULES]
)
def test_a_spec_that_breaks_a_rule_is_refused_with_the_rule(spec, problem):
    assert _refused(spec) == f"step 'save' (writing 't'): {problem}"


def test_a_valid_spec_passes_its_check():
    spec = WriteSpec(
        target="t",
        format="delta",
        mode="merge",
        merge_keys=("id",),
        update_columns=("name",),
        merge_null_keys="insert",
        cluster_by=("id",),
    )
    assert spec.problems() == []
    spec.check(step="save")


PARAM_RULES = [
    ({"mode": "merge"}, "mode 'merge' needs params.merge_keys, the columns that identify a row"),
    (
        {"mode": "append", "update_columns": ["a"]},
        "params.update_columns only applies to mode 'merge', not 'append'",
    ),
    (
        {"partition_by": ["a"], "cluster_by": ["b"]},
        "set params.partition_by or params.cluster_by, not both; "
        "Delta tables are either partitioned or clustered",
    ),
    ({"mode": "upsert"}, "write mode 'upsert' is not one of overwrite, append, merge"),
    ({"merge_null_keys": "skip"}, "params.merge_null_keys 'skip' is not one of error, insert"),
]


@pytest.mark.parametrize(("params", "problem"), PARAM_RULES)
def test_the_same_rules_refuse_a_steps_params(params, problem):
    assert param_problems(_store(format="delta", **params)) == [problem]


def test_a_file_format_setting_names_the_param_and_the_format():
    problems = param_problems(_store(format="csv", merge_schema=True))
    assert problems == ["params.merge_schema needs format delta or table, not csv"]


def test_a_file_append_names_the_resolved_target():
    with pytest.raises(PipelineConfigError) as caught:
        write_spec_for_step(_store(mode="append"), target="/lake/out/t.csv", fmt="csv")
    assert str(caught.value) == (
        "store step 'save': mode 'append' cannot write csv files at '/lake/out/t.csv'; "
        "set format: delta (or format: table) to append safely"
    )


def test_a_spec_built_from_a_step_is_valid_and_typed():
    step = _store(
        format="delta", mode="MERGE", merge_keys="id", update_columns=["name"], partition_by="d"
    )
    spec = write_spec_for_step(step, target="/lake/t", fmt="delta")
    assert (spec.mode, spec.merge_keys, spec.update_columns) == ("merge", ("id",), ("name",))
    assert (spec.partition_by, spec.cluster_by, spec.merge_schema) == (("d",), (), False)
    assert spec.problems() == []


def test_write_specs_are_frozen():
    spec = WriteSpec(target="t", format="delta")
    with pytest.raises(AttributeError):
        spec.mode = "append"  # type: ignore[misc]
