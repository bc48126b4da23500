import subprocess
import sys

import odibi_core
from odibi_core import NodeState, Step


def test_step_is_importable_from_package_root():
    assert odibi_core.Step is Step
    from odibi_core.core.step import Step as step_module_step

    assert step_module_step is Step


def test_step_fields_and_defaults():
    step = Step(layer="ingest", name="read", value="data.csv", outputs={"data": "raw"})
    assert step.type is None and step.kind == "config_op"
    assert step.params == {} and step.inputs == {} and step.metadata == {}
    assert step.retries is None and step.cache is None and step.task is None
    assert step.output_keys == ["raw"]


def test_transform_kind_is_inferred_from_value():
    sql = Step(layer="transform", name="t", value="SELECT 1", outputs={"data": "x"})
    fn = Step(layer="transform", name="f", value="pkg.mod:fn", outputs={"data": "y"})
    assert sql.kind == "sql"
    assert fn.kind == "function"


def test_node_states_follow_the_lifecycle():
    assert [s.value for s in NodeState] == [
        "PENDING",
        "READY",
        "RUNNING",
        "CACHED",
        "EXECUTING",
        "SUCCESS",
        "FAILED",
        "SKIPPED",
    ]
    assert NodeState.SUCCESS.is_final and not NodeState.RUNNING.is_final


def test_pure_core_imports_neither_pandas_nor_pyspark():
    code = (
        "import sys; import odibi_core.core.step, odibi_core.core.dag, odibi_core.core.config; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('pandas', 'pyspark', 'pyarrow', 'duckdb')); "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
