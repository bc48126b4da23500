from __future__ import annotations

import subprocess
import sys

import pytest

from odibi_core.core.config import StateLocation
from odibi_core.core.errors import PipelineConfigError, StateError
from odibi_core.state import (
    AuditStore,
    DeltaStateTable,
    StateTableRef,
    StateTables,
    default_local_location,
)


@pytest.fixture(autouse=True)
def _not_on_databricks(monkeypatch):
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)


def test_local_tables_are_paths_under_warehouse_catalog_schema_table(tmp_path):
    tables = StateTables(StateLocation(schema="ops", catalog="main"), warehouse=tmp_path)
    root = tmp_path.resolve()
    assert tables.runs == StateTableRef("main.ops.odibi_runs", root / "main" / "ops" / "odibi_runs")
    assert tables.audit.path == root / "main" / "ops" / "odibi_audit"
    assert tables.checkpoints.path == root / "main" / "ops" / "odibi_checkpoints"
    assert tables.cache.path == root / "main" / "ops" / "odibi_cache"
    assert not tables.audit.is_catalog_table


def test_a_location_without_catalog_uses_the_local_default_catalog(tmp_path):
    tables = StateTables(StateLocation(schema="odibi_state"), warehouse=tmp_path)
    assert tables.audit.name == "odibi_state.odibi_audit"
    assert tables.audit.path == tmp_path.resolve() / "spark_catalog" / "odibi_state" / "odibi_audit"


def test_default_location_is_odibi_state_under_the_default_warehouse(tmp_path, monkeypatch):
    monkeypatch.delenv("ODIBI_WAREHOUSE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert default_local_location() == StateLocation(schema="odibi_state")
    tables = StateTables(default_local_location())
    assert tables.runs.path == (
        tmp_path.resolve() / ".odibi" / "warehouse" / "spark_catalog" / "odibi_state" / "odibi_runs"
    )


def test_odibi_warehouse_environment_variable_moves_local_tables(tmp_path, monkeypatch):
    monkeypatch.setenv("ODIBI_WAREHOUSE", str(tmp_path / "elsewhere"))
    tables = StateTables(StateLocation(schema="s"))
    assert (
        tables.runs.path == tmp_path.resolve() / "elsewhere" / "spark_catalog" / "s" / "odibi_runs"
    )


def test_on_databricks_tables_are_unity_catalog_names_without_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "16.4")
    tables = StateTables(StateLocation(schema="ops", catalog="main"), warehouse=tmp_path)
    assert tables.catalog_tables
    assert tables.warehouse is None
    assert tables.audit == StateTableRef("main.ops.odibi_audit", None)
    assert tables.audit.is_catalog_table
    assert str(tables.audit) == "main.ops.odibi_audit"
    assert StateTables(StateLocation(schema="ops")).runs.name == "ops.odibi_runs"


def test_local_ref_prints_its_name_and_path(tmp_path):
    ref = StateTables(StateLocation(schema="s", catalog="c"), warehouse=tmp_path).runs
    assert str(ref) == f"c.s.odibi_runs (at {tmp_path.resolve() / 'c' / 's' / 'odibi_runs'})"


@pytest.mark.parametrize(
    ("location", "part"),
    [
        (StateLocation(schema="bad-schema"), "schema"),
        (StateLocation(schema="a.b"), "schema"),
        (StateLocation(schema="ok", catalog="1cat"), "catalog"),
        (StateLocation(schema=""), "schema"),
    ],
)
def test_invalid_locations_are_config_errors(location, part):
    with pytest.raises(PipelineConfigError) as caught:
        StateTables(location)
    assert str(caught.value).startswith(f"state.{part} ")
    assert "is not a valid identifier" in str(caught.value)


def test_state_table_names_must_be_plain_identifiers(tmp_path):
    tables = StateTables(StateLocation(schema="s"), warehouse=tmp_path)
    with pytest.raises(StateError, match=r"state table name '../x' is not a plain identifier"):
        tables.ref("../x")


def test_reading_a_missing_local_table_starts_no_spark(tmp_path):
    calls = []
    table = DeltaStateTable(
        StateTables(StateLocation(schema="s"), warehouse=tmp_path).runs,
        (("run_id", "string"),),
        spark_provider=lambda: calls.append("spark"),
    )
    assert not table.exists()
    assert table.read({"run_id": "r1"}) == []
    assert calls == []


def test_unknown_column_types_and_columns_are_rejected(tmp_path):
    ref = StateTables(StateLocation(schema="s"), warehouse=tmp_path).cache
    with pytest.raises(StateError, match=r"unsupported column types \['varchar'\]"):
        DeltaStateTable(ref, (("key", "varchar"),), spark_provider=lambda: None)
    table = DeltaStateTable(ref, (("key", "string"),), spark_provider=lambda: None)
    with pytest.raises(StateError, match=r"has no column\(s\) \['hits'\]"):
        table.read({"hits": 1})
    with pytest.raises(StateError, match=r"row for state table s.odibi_cache has unknown columns"):
        table.append([{"key": "k", "hits": 1}], txn_app_id="a", txn_version=0)


def test_an_unrecorded_run_is_a_state_error_without_spark(tmp_path):
    store = AuditStore(
        StateLocation(schema="s"),
        spark_provider=lambda: pytest.fail("Spark must not start"),
        warehouse=tmp_path,
    )
    with pytest.raises(StateError) as caught:
        store.to_lineage("20240501T120000_a1b2c3")
    assert str(caught.value) == (
        "run '20240501T120000_a1b2c3' is not in state table s.odibi_runs "
        "(no run is recorded yet); check the run id, and that the state location is the "
        "one the run used"
    )
    assert store.latest_run_id() is None
    assert store.read_run("x") == {"runs": [], "steps": []}


def test_importing_the_state_package_imports_neither_pyspark_nor_delta():
    probe = "import sys, odibi_core.state; print(sorted({'pyspark', 'delta'} & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
