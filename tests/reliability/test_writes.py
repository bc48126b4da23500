"""Delta writes a user can trust: MERGE keys checked before the commit, reused run ids
reported instead of silently skipped, and every overwrite or merge undoable from the lineage."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

import pandas as pd
import pytest

from odibi_core import Step
from odibi_core.cli import main
from odibi_core.core.config import StateLocation, TrackerSettings
from odibi_core.engine.delta_write import _DeltaWrite
from odibi_core.orchestrator import Orchestrator
from odibi_core.state import AuditStore

pytestmark = pytest.mark.spark


def _version(spark, path: Path) -> int:
    return spark.sql(f"DESCRIBE HISTORY delta.`{path}`").agg({"version": "max"}).first()[0]


def _rows(spark, path: Path) -> list[tuple]:
    return sorted(
        (tuple(r) for r in spark.read.format("delta").load(str(path)).collect()),
        key=lambda row: tuple((v is None, v) for v in row),
    )


def _merge(spark, tmp_path: Path, source: pd.DataFrame, target: Path, *, keys=("id",), **kw):
    """Run one pipeline: read ``source`` from csv, merge it into ``target`` on ``keys``.

    ``tracker_settings`` goes to the orchestrator; other keywords are the store's params.
    """
    csv = tmp_path / f"source_{uuid.uuid4().hex[:6]}.csv"
    source.to_csv(csv, index=False)
    tracker_settings = kw.pop("tracker_settings", None)
    engine = kw.pop("engine", "spark")
    steps = [
        Step(layer="ingest", name="read", value=str(csv), outputs={"data": "raw"}),
        Step(
            layer="store",
            name="save",
            value=str(target),
            params={"format": "delta", "mode": "merge", "merge_keys": list(keys), **kw},
            inputs={"data": "raw"},
        ),
    ]
    return Orchestrator(
        steps=steps,
        engine_type=engine,
        spark=spark,
        max_retries=2,
        retry_delay=0.0,
        tracker_settings=tracker_settings,
    ).execute()


@pytest.mark.parametrize("target_exists", [True, False], ids=["later_merge", "first_merge"])
def test_merge_with_duplicate_keys_is_refused_before_the_commit(spark, tmp_path, target_exists):
    target = tmp_path / "customers"
    if target_exists:
        spark.createDataFrame([(1, "a"), (9, "z")], "id int, name string").write.format(
            "delta"
        ).save(str(target))
    before = _rows(spark, target) if target_exists else None
    version = _version(spark, target) if target_exists else None

    source = pd.DataFrame({"id": [1, 1, 2, 2, 2, 3], "name": list("abcdef")})
    result = _merge(spark, tmp_path, source, target)

    assert not result.success
    message = result.errors["save"]
    assert f"cannot merge into {target}" in message
    assert "has more than one row for merge key (id) = ('1'), ('2')" in message
    assert "'3'" not in message
    assert "make the keys unique before the store" in message
    assert result.attempts["save"] == 1  # deterministic: never retried
    if target_exists:
        assert _version(spark, target) == version
        assert _rows(spark, target) == before
    else:
        assert not target.exists()  # the first merge no longer creates a table of duplicates


def test_duplicated_values_of_a_redacted_merge_key_are_masked(spark, tmp_path):
    target = tmp_path / "people"
    source = pd.DataFrame({"email": ["ann@x.org", "ann@x.org"], "id": [1, 2]})
    result = _merge(
        spark,
        tmp_path,
        source,
        target,
        keys=("email",),
        tracker_settings=TrackerSettings(redact_columns=("email",)),
    )

    assert not result.success
    assert "has more than one row for merge key (email) = (***)" in result.errors["save"]
    assert "ann@x.org" not in result.errors["save"]
    assert not target.exists()


def test_merge_with_null_keys_is_refused_unless_they_are_inserted(spark, tmp_path):
    target = tmp_path / "customers"
    spark.createDataFrame([(1, "a")], "id int, name string").write.format("delta").save(str(target))
    source = pd.DataFrame({"id": [1, None, None], "name": ["A", "n1", "n2"]})

    refused = _merge(spark, tmp_path, source, target)
    assert not refused.success
    message = refused.errors["save"]
    assert f"cannot merge into {target}: the data has NULL in the merge keys for" in message
    assert "merge key (id) = (NULL)" in message
    assert "params.merge_null_keys: insert" in message
    assert refused.attempts["save"] == 1
    assert _version(spark, target) == 0

    inserted = _merge(spark, tmp_path, source, target, merge_null_keys="insert")
    assert inserted.success, inserted.error
    assert _rows(spark, target) == [(1, "A"), (None, "n1"), (None, "n2")]
    # NULL keys never match: the same source again inserts its NULL-key rows again.
    again = _merge(spark, tmp_path, source, target, merge_null_keys="insert")
    assert again.success, again.error
    assert sorted(r.name for r in spark.read.format("delta").load(str(target)).collect()) == [
        "A",
        "n1",
        "n1",
        "n2",
        "n2",
    ]


def test_rows_held_here_have_their_merge_keys_checked_without_spark(spark, tmp_path, monkeypatch):
    """A pandas-engine frame is checked in DuckDB before it reaches Spark, with the same
    refusals and messages as a Spark frame's check."""

    def spark_check(self, frame):
        raise AssertionError("the merge keys of rows held in this process went to Spark")

    monkeypatch.setattr(_DeltaWrite, "_spark_key_problems", spark_check)
    target = tmp_path / "customers"
    source = pd.DataFrame({"id": [1, 1, 2, 2, 2, 3], "name": list("abcdef")})
    repeated = _merge(spark, tmp_path, source, target, engine="pandas")
    assert not repeated.success
    assert "has more than one row for merge key (id) = ('1'), ('2')" in repeated.errors["save"]
    assert "'3'" not in repeated.errors["save"]
    assert not target.exists()

    source = pd.DataFrame({"id": ["1", None, None], "name": ["A", "n1", "n2"]})
    refused = _merge(spark, tmp_path, source, target, engine="pandas")
    assert not refused.success
    assert "has NULL in the merge keys for merge key (id) = (NULL)" in refused.errors["save"]
    inserted = _merge(spark, tmp_path, source, target, engine="pandas", merge_null_keys="insert")
    assert inserted.success, inserted.error
    assert sorted(r.name for r in spark.read.format("delta").load(str(target)).collect()) == [
        "A",
        "n1",
        "n2",
    ]


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A pipeline folder with its own warehouse (state tables) and working directory."""
    monkeypatch.setenv("ODIBI_WAREHOUSE", str(tmp_path / "warehouse"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    return tmp_path


def _pipeline(folder: Path, mode: str) -> Path:
    path = folder / "pipeline.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            pipeline: events
            engine: spark
            steps:
              - {{layer: ingest, name: read, value: data/events.csv, outputs: {{data: raw}}}}
              - layer: store
                name: save
                value: out/events
                params: {{format: delta, mode: {mode}}}
                inputs: {{data: raw}}
            """
        )
    )
    return path


# About 18 s; a skipped repeated append runs by default in test_idempotent_append.py.
@pytest.mark.slow
def test_reusing_a_run_id_reports_the_append_as_already_committed_and_keeps_both_audits(
    spark, project, monkeypatch, capsys
):
    pd.DataFrame({"id": [1, 2, 3]}).to_csv(project / "data/events.csv", index=False)
    pipeline = _pipeline(project, "append")
    monkeypatch.setenv("ODIBI_RUN_ID", "nightly-7")

    assert main(["run", str(pipeline), "--quiet"]) == 0
    first = capsys.readouterr()
    assert "already committed" not in first.err
    assert main(["run", str(pipeline), "--quiet"]) == 0
    second = capsys.readouterr()

    assert "save SUCCESS" in second.err
    # Nothing was written again: 0 rows now, the earlier commit's 3 named in the reason.
    assert "0 rows (already committed by run nightly-7 as version 0 with 3 rows)" in second.err
    assert spark.read.format("delta").load(str(project / "out/events")).count() == 3

    store = AuditStore(StateLocation(schema="odibi_state"), spark_provider=lambda: spark)
    stored = store.read_run("nightly-7")
    assert [row["execution_id"] for row in stored["runs"]] == ["nightly-7.1", "nightly-7.1"]
    assert len({row["execution_token"] for row in stored["runs"]}) == 2
    assert len(stored["steps"]) == 4  # both executions' rows, in execution order
    assert [row["count_source"] for row in stored["steps"] if row["step_name"] == "save"] == [
        "commit_metrics",
        "already_committed",
    ]
    latest = store.to_lineage("nightly-7")
    save = next(step for step in latest["steps"] if step["step_name"] == "save")
    assert save["after_snapshot"]["count_reason"].startswith(
        "already committed by run nightly-7 as version 0 with 3 rows; Delta skipped this append"
    )

    assert main(["lineage", "nightly-7"]) == 0
    assert "append already committed by run nightly-7 as version 0" in capsys.readouterr().out


# About 30 s (three runs with audit); the undo statement runs by default over Connect
# (tests/connect/test_pipelines_over_connect.py).
@pytest.mark.slow
def test_lineage_shows_the_restore_that_undoes_an_overwrite(spark, project, capsys):
    data = project / "data/events.csv"
    pipeline = _pipeline(project, "overwrite")
    target = project / "out/events"

    pd.DataFrame({"id": [1, 2, 3]}).to_csv(data, index=False)
    assert main(["run", str(pipeline), "--quiet"]) == 0
    first_run = _run_id(capsys.readouterr().out)
    pd.DataFrame({"id": [7]}).to_csv(data, index=False)
    assert main(["run", str(pipeline), "--quiet"]) == 0
    second_run = _run_id(capsys.readouterr().out)

    assert main(["lineage", first_run]) == 0
    created = capsys.readouterr().out
    assert (
        f"delta.`{target}`: overwrite wrote version 0, created by this run (drop it to undo)"
        in created
    )

    assert main(["lineage", second_run]) == 0
    shown = capsys.readouterr().out
    restore = f"RESTORE TABLE delta.`{target}` TO VERSION AS OF 0"
    assert f"delta.`{target}`: overwrite version 0 -> 1" in shown
    assert f"undo with: {restore}" in shown

    store = AuditStore(StateLocation(schema="odibi_state"), spark_provider=lambda: spark)
    write = next(s for s in store.to_lineage(second_run)["steps"] if s["step_name"] == "save")
    assert write["write"] == {
        "table": f"delta.`{target}`",
        "mode": "overwrite",
        "version_before": 0,
        "version_after": 1,
        "created": False,
        "already_committed": False,
        "restore": restore,
    }

    assert _rows(spark, target) == [(7,)]
    spark.sql(restore)
    assert _rows(spark, target) == [(1,), (2,), (3,)]


def _run_id(stdout: str) -> str:
    line = next(line for line in stdout.splitlines() if line.startswith("run "))
    return line.split()[1].rstrip(":")


# About 20 s; state-table evolution runs by default in tests/spark/test_state_evolution.py.
@pytest.mark.slow
def test_an_audit_table_of_the_earlier_layout_takes_new_rows_and_reads_back(spark, tmp_path):
    from odibi_core.state.audit import (
        AUDIT_COLUMNS,
        RUNS_COLUMNS,
        audit_row_from_step,
        run_row_from_lineage,
    )
    from odibi_core.state.table import DeltaStateTable
    from tests.unit.test_audit_rows import sample_lineage

    store = AuditStore(
        StateLocation(schema="odibi_state"), spark_provider=lambda: spark, warehouse=tmp_path
    )
    added = {"execution_token", "write_json"}

    def earlier(ref, columns):
        old_layout = [c for c in columns if c[0] not in added]
        return DeltaStateTable(ref, old_layout, spark_provider=lambda: spark)

    # Rows as the previous layout wrote them, in tables of that layout.
    old = sample_lineage("old_run")
    run_row = run_row_from_lineage(old)
    step_rows = [
        audit_row_from_step(
            step,
            run_id="old_run",
            execution_id="old_run.1",
            pipeline_name=run_row["pipeline_name"],
            odibi_version=run_row["odibi_version"],
        )
        for step in old["steps"]
    ]
    earlier(store.tables.audit, AUDIT_COLUMNS).append(
        [{k: v for k, v in row.items() if k not in added} for row in step_rows],
        txn_app_id="old",
        txn_version=0,
    )
    earlier(store.tables.runs, RUNS_COLUMNS).append(
        [{k: v for k, v in run_row.items() if k not in added}], txn_app_id="old", txn_version=0
    )
    assert store.to_lineage("old_run") == old  # read before any new row evolved the table

    new = sample_lineage("new_run")
    new["execution_token"] = "0123abcd"
    new["steps"][2]["write"] = {"table": "delta.`/t`", "mode": "merge", "restore": "RESTORE …"}
    store.write_lineage(new, databricks={})

    assert store.to_lineage("new_run") == new
    assert store.to_lineage("old_run") == old
