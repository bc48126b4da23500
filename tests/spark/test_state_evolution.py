"""State tables evolve: a newer layout adds its columns to an older table, an older layout
reads and appends to a newer table, and no column is ever dropped or retyped."""

from __future__ import annotations

import pytest

from odibi_core.core.errors import StateError
from odibi_core.state.location import StateTableRef
from odibi_core.state.table import SCHEMA_VERSION_PROPERTY, DeltaStateTable

pytestmark = pytest.mark.spark

EARLIER = (("run_id", "string"), ("n", "long"))
CURRENT = (*EARLIER, ("token", "string"))
LATER = (*CURRENT, ("hits", "int"))


def _table(spark, path, columns, version):
    ref = StateTableRef(name="odibi_state.odibi_runs", path=path)
    return DeltaStateTable(ref, columns, spark_provider=lambda: spark, schema_version=version)


def _schema(spark, path) -> list[tuple[str, str]]:
    frame = spark.read.format("delta").load(str(path))
    return [(field.name, field.dataType.simpleString()) for field in frame.schema]


def _history(spark, path) -> list[str]:
    rows = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").orderBy("version").collect()
    return [row["operation"] for row in rows]


def test_a_table_of_the_earlier_layout_gains_the_new_columns_and_version(spark, tmp_path):
    path = tmp_path / "odibi_runs"
    # The earlier layout, as it was created before tables carried a schema version.
    spark.sql(f"CREATE TABLE delta.`{path}` (run_id string, n bigint) USING DELTA")
    spark.sql(f"INSERT INTO delta.`{path}` VALUES ('old', 1)")
    current = _table(spark, path, CURRENT, 2)
    assert current.stored_schema_version() == 0
    assert current.read() == [{"run_id": "old", "n": 1, "token": None}]

    current.append([{"run_id": "new", "n": 2, "token": "t"}], txn_app_id="a", txn_version=0)
    current.append([{"run_id": "new", "n": 2, "token": "t"}], txn_app_id="a", txn_version=0)

    assert _schema(spark, path) == [("run_id", "string"), ("n", "bigint"), ("token", "string")]
    assert current.stored_schema_version() == 2
    assert sorted(current.read(), key=lambda row: row["run_id"]) == [
        {"run_id": "new", "n": 2, "token": "t"},
        {"run_id": "old", "n": 1, "token": None},
    ]
    # One schema change, one version change, one append: the retry added nothing.
    operations = _history(spark, path)
    assert operations[2:] == ["ADD COLUMNS", "SET TBLPROPERTIES", "WRITE"]
    # A later instance of the same layout finds the table current and changes nothing.
    _table(spark, path, CURRENT, 2).append([{"run_id": "x", "n": 3}], txn_app_id="b", txn_version=0)
    assert _history(spark, path)[len(operations) :] == ["WRITE"]


def test_an_earlier_layout_reads_and_appends_to_a_newer_table(spark, tmp_path):
    path = tmp_path / "odibi_runs"
    later = _table(spark, path, LATER, 3)
    later.append(
        [{"run_id": "new", "n": 1, "token": "t", "hits": 5}], txn_app_id="l", txn_version=0
    )

    current = _table(spark, path, CURRENT, 2)
    assert current.read() == [{"run_id": "new", "n": 1, "token": "t"}]
    current.append([{"run_id": "old", "n": 2, "token": "u"}], txn_app_id="c", txn_version=0)

    # The newer table keeps its columns and its version; the older rows hold NULL there.
    assert _schema(spark, path)[-1] == ("hits", "int")
    assert current.stored_schema_version() == 3
    assert sorted(later.read(), key=lambda row: row["run_id"]) == [
        {"run_id": "new", "n": 1, "token": "t", "hits": 5},
        {"run_id": "old", "n": 2, "token": "u", "hits": None},
    ]
    assert current.read({"run_id": "old"}) == [{"run_id": "old", "n": 2, "token": "u"}]


def test_a_column_of_another_type_is_refused_not_retyped(spark, tmp_path):
    path = tmp_path / "odibi_runs"
    spark.sql(f"CREATE TABLE delta.`{path}` (run_id string, n string) USING DELTA")
    current = _table(spark, path, CURRENT, 2)
    with pytest.raises(StateError) as error:
        current.append([{"run_id": "r", "n": 1}], txn_app_id="a", txn_version=0)
    assert str(error.value).startswith(
        f"column n of state table odibi_state.odibi_runs (at {path}) is string, but this "
        "odibi_core writes it as bigint; state columns are never retyped"
    )
    assert _schema(spark, path) == [("run_id", "string"), ("n", "string")]
    assert current.stored_schema_version() == 0


def test_a_new_table_records_its_layout_version(spark, tmp_path):
    path = tmp_path / "odibi_runs"
    _table(spark, path, CURRENT, 2).append([{"run_id": "r"}], txn_app_id="a", txn_version=0)
    properties = dict(
        (row[0], row[1]) for row in spark.sql(f"SHOW TBLPROPERTIES delta.`{path}`").collect()
    )
    assert properties[SCHEMA_VERSION_PROPERTY] == "2"
    assert _history(spark, path) == ["CREATE TABLE AS SELECT"]  # table and rows: one commit
    # The creating commit carries the append's transaction: retrying it adds nothing.
    _table(spark, path, CURRENT, 2).append([{"run_id": "r"}], txn_app_id="a", txn_version=0)
    assert _history(spark, path) == ["CREATE TABLE AS SELECT"]
    assert _table(spark, path, CURRENT, 2).read() == [{"run_id": "r", "n": None, "token": None}]
