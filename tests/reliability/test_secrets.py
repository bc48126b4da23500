"""Secrets and redacted columns never reach an artefact of a run.

One pipeline run through the CLI holds a secret parameter, a ``{{secrets/scope/key}}``
reference, a redacted column renamed and derived in SQL, and a step that fails quoting
redacted values. Every artefact is then searched for the secrets and the raw values:
stdout, stderr, the lineage JSON, the report, the audit and runs rows, and the events a
hook received.
"""

from __future__ import annotations

import json
import textwrap

import pandas as pd
import pytest

from odibi_core import cli
from odibi_core.core.step import Step
from odibi_core.events.bus import EventBus
from odibi_core.orchestrator import Orchestrator, RunContext
from odibi_core.state import audit

PASSWORD = "S3cr3t-value"
VAULT_VALUE = "vault-T0ken-42"
EMAILS = ["ada@example.com", "grace@example.org", "linus@example.net"]

PIPELINE = """
pipeline: secret_run
parameters: {db_password: null}
tracker: {sample_rows: 5, redact_columns: [email]}
steps:
  - {layer: ingest, name: read, value: customers.csv, outputs: {data: raw}}
  - layer: transform
    name: rename
    type: sql
    value: SELECT id, email AS contact, upper(email) AS shout, lower(email) FROM raw
    inputs: {raw: raw}
    outputs: {data: renamed}
  - layer: transform
    name: use_secrets
    type: function
    value: tests.reliability.secret_funcs:needs_secrets
    params: {password: "${params.db_password}", token: "{{secrets/scope/key}}"}
    inputs: {data: renamed}
    outputs: {data: checked}
  - {layer: store, name: save, value: out/contacts.csv, inputs: {data: checked}}
  - layer: transform
    name: fail_quoting
    type: function
    value: tests.reliability.secret_funcs:quote_values
    params: {password: "${params.db_password}"}
    inputs: {data: checked}
    outputs: {data: never}
"""


class _RecordingBus(EventBus):
    """The CLI's own bus, with a hook that records every payload it is handed."""

    received: list[tuple[str, dict]] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for event in self.event_types:
            self.register_hook(event, lambda payload, event=event: self._record(event, payload))

    def _record(self, event: str, payload: dict) -> None:
        self.received.append((event, json.loads(json.dumps(payload, default=str))))


@pytest.fixture
def run_artefacts(tmp_path, monkeypatch, capsys):
    pd.DataFrame({"id": [1, 2, 3], "email": EMAILS}).to_csv(tmp_path / "customers.csv", index=False)
    (tmp_path / "pipeline.yaml").write_text(textwrap.dedent(PIPELINE))
    monkeypatch.setenv("ODIBI_SECRET_SCOPE_KEY", VAULT_VALUE)
    monkeypatch.chdir(tmp_path)
    _RecordingBus.received = []
    monkeypatch.setattr("odibi_core.events.bus.EventBus", _RecordingBus)
    # The rows the audit writer would commit, built by its own (JVM-free) row builders;
    # writing them needs Spark, which this test leaves to the spark-marked audit tests.
    rows: dict[str, list] = {"runs": [], "audit": []}

    def capture(self, lineage, databricks=None, *, with_run_row=True):
        run_row = audit.run_row_from_lineage(lineage, databricks={})
        rows["runs"].append(run_row)
        rows["audit"].extend(
            audit.audit_row_from_step(
                step,
                run_id=run_row["run_id"],
                execution_id=run_row["execution_id"],
                pipeline_name=run_row["pipeline_name"],
                odibi_version=run_row["odibi_version"],
            )
            for step in lineage["steps"]
        )

    monkeypatch.setattr(audit.AuditStore, "write_lineage", capture)
    code = cli.main(
        [
            "run",
            "pipeline.yaml",
            "--quiet",
            "--param",
            f"db_password={PASSWORD}",
            "--lineage",
            "lineage.json",
            "--report",
            "report.html",
            "--state-schema",
            "secret_state",
        ]
    )
    out, err = capsys.readouterr()
    return {
        "code": code,
        "stdout": out,
        "stderr": err,
        "lineage": (tmp_path / "lineage.json").read_text(),
        "report": (tmp_path / "report.html").read_text(),
        "rows": rows,
        "events": _RecordingBus.received,
        "written": [pd.read_csv(p) for p in (tmp_path / "out" / "contacts.csv").glob("part-*")],
    }


def test_no_artefact_holds_a_secret_or_a_redacted_value(run_artefacts):
    a = run_artefacts
    assert a["code"] == 1, a["stderr"]
    # The secrets reached the step that needed them, and the data was written as is.
    written = pd.concat(a["written"]) if a["written"] else pd.DataFrame()
    assert written.to_dict("list") == {
        "id": [1, 2, 3],
        "contact": EMAILS,
        "shout": [e.upper() for e in EMAILS],
        "lower(email)": EMAILS,
        "checked": [True, True, True],
    }
    assert a["rows"]["runs"] and a["rows"]["audit"] and a["events"]
    artefacts = {
        "stdout": a["stdout"],
        "stderr": a["stderr"],
        "lineage": a["lineage"],
        "report": a["report"],
        "runs rows": json.dumps(a["rows"]["runs"], default=str),
        "audit rows": json.dumps(a["rows"]["audit"], default=str),
        "events": json.dumps(a["events"], default=str),
    }
    forbidden = [PASSWORD, VAULT_VALUE, *EMAILS, *(e.upper() for e in EMAILS)]
    leaks = [
        (name, value) for name, text in artefacts.items() for value in forbidden if value in text
    ]
    assert leaks == []


def test_what_is_masked_is_still_shown_as_masked(run_artefacts):
    a = run_artefacts
    lineage = json.loads(a["lineage"])
    assert lineage["params"] == {"db_password": "***"}
    assert json.loads(a["rows"]["runs"][0]["params_json"]) == {"db_password": "***"}
    start = next(p for e, p in a["events"] if e == "pipeline_start")
    assert start["parameters"] == {"db_password": "***"}
    steps = {s["step_name"]: s for s in lineage["steps"]}
    sample = steps["rename"]["after_snapshot"]["sample"]
    assert [row["id"] for row in sample] == [1, 2, 3]
    assert {row["contact"] for row in sample} == {"***"}  # renamed
    assert {row["shout"] for row in sample} == {"***"}  # derived
    assert {row["lower(email)"] for row in sample} == {"***"}  # derived, unnamed
    assert {row["contact"] for row in steps["save"]["after_snapshot"]["sample"]} == {"***"}
    error = steps["fail_quoting"]["error_message"]
    assert "cannot load contact '***'" in error
    assert '"contact": "***"' in error
    assert "with credentials ***" in error
    assert "rerun what failed with:" in a["stderr"]
    assert "--param 'db_password=***'" in a["stderr"]


def _steps(password_param: str) -> list[Step]:
    return [
        Step(layer="ingest", name="read", value="customers.csv", outputs={"data": "raw"}),
        Step(
            layer="transform",
            name="rename",
            type="sql",
            value="SELECT id, email AS contact FROM raw",
            inputs={"raw": "raw"},
            outputs={"data": "renamed"},
        ),
        Step(
            layer="transform",
            name="fail_quoting",
            type="function",
            value="tests.reliability.secret_funcs:quote_values",
            params={"password": password_param},
            inputs={"data": "renamed"},
            outputs={"data": "never"},
        ),
    ]


def test_a_literal_secret_in_step_params_is_masked_in_messages(tmp_path, monkeypatch):
    pd.DataFrame({"id": [1], "email": EMAILS[:1]}).to_csv(tmp_path / "customers.csv", index=False)
    monkeypatch.chdir(tmp_path)
    result = Orchestrator(steps=_steps("hunter2-literal"), engine_type="pandas").execute()
    assert result.failed_nodes == ["fail_quoting"]
    assert result.error.endswith("with credentials ***")
    assert "hunter2-literal" not in json.dumps(result.tracker.to_lineage())


def test_a_missing_secret_fails_its_step_naming_the_variable(tmp_path, monkeypatch, capsys):
    pd.DataFrame({"id": [1], "email": EMAILS[:1]}).to_csv(tmp_path / "customers.csv", index=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ODIBI_SECRET_JDBC_DB_PASSWORD", raising=False)
    result = Orchestrator(
        steps=_steps("{{secrets/jdbc/db-password}}"),
        engine_type="pandas",
        max_retries=2,
        retry_delay=0,
    ).execute()
    assert result.failed_nodes == ["fail_quoting"]
    assert result.node_states["rename"].value == "SUCCESS"
    assert result.error == (
        "step 'fail_quoting' failed: {{secrets/jdbc/db-password}} in the params of step "
        "'fail_quoting' is not set: set the environment variable ODIBI_SECRET_JDBC_DB_PASSWORD "
        "(export ODIBI_SECRET_JDBC_DB_PASSWORD=...), or run on Databricks, where key "
        "db-password of scope jdbc is read with dbutils.secrets"
    )
    assert result.attempts["fail_quoting"] == 1  # not retried: it cannot succeed by waiting


SPARK_CAST = """
pipeline: spark_cast
engine: spark
tracker: {redact_columns: [email]}
steps:
  - {layer: ingest, name: read, value: customers.csv, outputs: {data: raw}}
  - layer: transform
    name: cast
    type: sql
    value: SELECT CAST(email AS INT) AS n, email AS contact FROM raw
    inputs: {raw: raw}
    outputs: {data: casted}
  - {layer: store, name: save, value: out/cast, params: {format: parquet}, inputs: {data: casted}}
"""


@pytest.mark.spark
def test_spark_and_pyspark_logs_of_a_failed_cast_hold_no_redacted_value(
    spark, spark_warehouse, tmp_path, monkeypatch, capfd
):
    pd.DataFrame({"id": [1, 2], "email": EMAILS[:2]}).to_csv(
        tmp_path / "customers.csv", index=False
    )
    (tmp_path / "spark_cast.yaml").write_text(textwrap.dedent(SPARK_CAST))
    monkeypatch.chdir(tmp_path)
    result = Orchestrator(
        pipeline="spark_cast.yaml", spark=spark, context=RunContext(warehouse=spark_warehouse)
    ).execute()
    out, err = capfd.readouterr()  # the JVM's log4j output and PySpark's JSON logs included
    assert result.failed_nodes == ["save"]
    assert "[CAST_INVALID_INPUT] The value '***' of the type \"STRING\"" in result.error
    assert [e for e in EMAILS if e in out + err + result.error] == []
