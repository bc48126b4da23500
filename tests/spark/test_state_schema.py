"""The state schema is created before the first state write; what blocks it is named."""

import pytest

from odibi_core.core.errors import StateError
from odibi_core.state.location import StateTableRef
from odibi_core.state.table import DeltaStateTable, schema_error

COLUMNS = (("run_id", "string"), ("n", "long"))


@pytest.mark.spark
def test_a_missing_state_schema_in_the_catalog_is_created_by_the_first_write(spark, tmp_path):
    schema = f"fresh_{tmp_path.name[-8:]}"
    assert not spark.catalog.databaseExists(schema)
    table = DeltaStateTable(
        StateTableRef(name=f"{schema}.odibi_runs", path=None),
        COLUMNS,
        spark_provider=lambda: spark,
    )
    table.append([{"run_id": "r1", "n": 3}], txn_app_id="odibi:test", txn_version=0)
    assert spark.catalog.databaseExists(schema)
    assert table.read({"run_id": "r1"}) == [{"run_id": "r1", "n": 3}]


@pytest.mark.spark
def test_a_missing_catalog_is_named_with_the_fix(spark):
    table = DeltaStateTable(
        StateTableRef(name="no_such_catalog.odibi_state.odibi_runs", path=None),
        COLUMNS,
        spark_provider=lambda: spark,
    )
    with pytest.raises(StateError) as error:
        table.append([{"run_id": "r1", "n": 1}], txn_app_id="odibi:test", txn_version=0)
    message = str(error.value)
    assert "catalog 'no_such_catalog'" in message
    assert "USE CATALOG" in message and "create it" in message


def test_a_missing_privilege_is_named():
    # Local Spark has no grants: the message is the one Unity Catalog gives.
    denied = RuntimeError(
        "[INSUFFICIENT_PERMISSIONS] Insufficient privileges: User does not have "
        "CREATE SCHEMA on Catalog 'main'. SQLSTATE: 42501"
    )
    message = schema_error("main.odibi_state.odibi_runs", "main.odibi_state", denied)
    assert message == (
        "could not create state schema main.odibi_state for main.odibi_state.odibi_runs: "
        "this job lacks CREATE SCHEMA; grant it, or set the state schema to one it may use"
    )
    other = schema_error("main.s.t", "main.s", RuntimeError("boom\nstack"))
    assert other == "could not create state schema main.s for main.s.t: boom"


PIPELINE = """
pipeline: state_blocked
steps:
  - {layer: ingest, name: read, value: in.csv, outputs: {data: raw}}
  - {layer: store, name: save, value: out.csv, inputs: {data: raw}}
"""


def _pipeline(tmp_path, monkeypatch):
    # The Databricks code path: state tables are catalog tables, the session is taken as
    # it is (here the suite's, active on this thread).
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "16.4")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.csv").write_text("n\n1\n2\n")
    (tmp_path / "p.yaml").write_text(PIPELINE)


@pytest.mark.spark
def test_odibi_run_exits_1_naming_a_missing_catalog(spark, tmp_path, monkeypatch, capsys):
    from odibi_core.cli import main

    _pipeline(tmp_path, monkeypatch)
    code = main(["run", "p.yaml", "--quiet", "--state-schema", "no_such_catalog.odibi_state"])
    out, err = capsys.readouterr()
    assert code == 1, out + err
    assert "catalog 'no_such_catalog' of state table no_such_catalog.odibi_state." in err
    assert "USE CATALOG" in err
    assert "2/2 steps succeeded" in out  # the data was written; only the record failed


@pytest.mark.spark
def test_odibi_run_exits_1_naming_a_missing_privilege(spark, tmp_path, monkeypatch, capsys):
    from pyspark.sql import SparkSession

    from odibi_core.cli import main

    _pipeline(tmp_path, monkeypatch)
    schema = f"spark_catalog.locked_{tmp_path.name[-8:]}"
    real_sql = SparkSession.sql

    # Local Spark has no grants: this is the error Unity Catalog gives, raised by Spark's
    # own entry point for the statement the state store runs on Databricks.
    def sql_without_create_schema(self, query, *args, **kwargs):
        if query.startswith("CREATE SCHEMA"):
            raise RuntimeError(
                "[INSUFFICIENT_PERMISSIONS] Insufficient privileges: User does not have "
                "CREATE SCHEMA on Catalog 'spark_catalog'. SQLSTATE: 42501"
            )
        return real_sql(self, query, *args, **kwargs)

    monkeypatch.setattr(SparkSession, "sql", sql_without_create_schema)
    code = main(["run", "p.yaml", "--quiet", "--state-schema", schema])
    out, err = capsys.readouterr()
    assert code == 1, out + err
    assert f"could not create state schema {schema}" in err
    assert "this job lacks CREATE SCHEMA; grant it" in err
