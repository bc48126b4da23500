"""The bad-input matrix: broken pipelines, sources, SQL, functions, writes, identifiers and
command lines, each one row of a table.

Each case writes a small pipeline (and its data) into a fresh folder, runs ``odibi`` on it
in process through ``cli.main`` (a few as real processes), and asserts:

- the exit code (2 for a configuration error, 1 for a step that failed);
- the message: substrings that name the step and the file and line (or the user's file and
  line for a function, or the command-line flag);
- no ``Traceback`` in stdout or stderr (no ``--debug``);
- nothing written: the folder's recursive listing (sizes and modification times) is the
  same before and after, so no target was created or changed and no Delta version was added;
  Spark cases run with state on and leave no ``SUCCESS`` row in ``odibi_runs``.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.reliability.conftest import cli, delta_versions, listing

CSV = "id,name\n1,a\n2,b\n3,c\n"
READ = "{layer: ingest, name: read, value: data/in.csv, outputs: {data: raw}}"
OLD = "id,name\n9,old\n"  # an earlier output that must survive every refused run


def store(value: str = "out/result.csv", params: str = "", name: str = "save", src: str = "raw"):
    extra = f"params: {{{params}}}, " if params else ""
    return f'{{layer: store, name: {name}, value: "{value}", {extra}inputs: {{data: {src}}}}}'


def sql(query: str, name: str = "calc") -> str:
    return f'{{layer: transform, name: {name}, type: sql, value: "{query}", inputs: {{t: raw}}, outputs: {{data: calc}}}}'


def function(module: str, fn: str = "fn") -> str:
    return f'{{layer: transform, name: fn, type: function, value: "{module}:{fn}", inputs: {{data: raw}}, outputs: {{data: calc}}}}'


SAVE_CALC = store(src="calc")


@dataclass(frozen=True)
class Case:
    """One row: the pipeline's steps (YAML flow lines) or whole text, and what must happen."""

    id: str
    code: int
    steps: tuple[str, ...] | str
    expect: tuple[str, ...]
    argv: tuple[str, ...] = ()
    head: str = ""
    files: dict[str, str] = field(default_factory=dict)
    command: str = "run"
    engine: str = "pandas"

    def pipeline_text(self) -> str:
        if isinstance(self.steps, str):
            return textwrap.dedent(self.steps).lstrip()
        lines = [f"pipeline: m_{self.id}", f"engine: {self.engine}", *filter(None, [self.head])]
        return "\n".join([*lines, "steps:", *(f"  - {s}" for s in self.steps)]) + "\n"


def C(id, code, steps, expect, **kw) -> Case:  # noqa: N802 - a table row, kept short
    return Case(id, code, tuple(steps) if isinstance(steps, list) else steps, tuple(expect), **kw)


def raising(body: str) -> str:
    return f"import sys\n\n\ndef fn(data):\n    {body}\n    return data\n"


V = "validate"
Y = "pipeline.yaml"
# fmt: off
CASES = [
    # ------------------------------------------------------------------ config (#3, #11)
    C("mdoe_typo", 2, [READ, store(params="mdoe: append")], ["line 5, step 2 'save'", "unknown param 'mdoe'", "did you mean 'mode'"]),
    C("reader_option_outside_options", 2, [READ.replace("outputs", "params: {header: false}, outputs"), store()], ["line 4, step 1 'read'", "'header'", "options"]),
    C("unknown_mode", 2, [READ, store(params="mode: upsert")], ["line 5, step 2 'save'", "upsert"]),
    C("merge_keys_as_string", 2, [READ, store("out/t", "format: delta, mode: merge, merge_keys: {id: 1}")], ["line 5, step 2 'save'", "merge_keys", "list"], command=V),
    C("partition_by_number", 2, [READ, store("out/t", "format: delta, partition_by: 3")], ["line 5, step 2 'save'", "partition_by"], command=V),
    C("merge_schema_not_bool", 2, [READ, store("out/t", "format: delta, mode: append, merge_schema: maybe")], ["line 5, step 2 'save'", "merge_schema"], command=V),
    C("list_valued_name", 2, ["{layer: ingest, name: [a, b], value: data/in.csv, outputs: {data: raw}}", store()], [f"{Y}, line 4", "name"], command=V),
    C("list_valued_layer", 2, ["{layer: [ingest], name: read, value: data/in.csv, outputs: {data: raw}}", store()], [f"{Y}, line 4", "layer"], command=V),
    C("list_valued_outputs", 2, ["{layer: ingest, name: read, value: data/in.csv, outputs: [raw]}", store()], ["line 4", "'read'", "outputs"], command=V),
    C("hook_timeout_abc", 2, [READ, store()], [f"{Y}:", "settings.hook_timeout", "'abc'"], head="settings: {hook_timeout: abc}", command=V),
    C("retries_true", 2, ["{layer: ingest, name: read, value: data/in.csv, retries: true, outputs: {data: raw}}", store()], ["line 4, step 1 'read'", "retries"], command=V),
    C("settings_retries_true", 2, [READ, store()], [f"{Y}:", "settings.max_retries", "True"], head="settings: {max_retries: true}"),
    C("duplicate_yaml_key", 2, """
        pipeline: m_dup
        engine: pandas
        steps:
          - layer: ingest
            name: read
            name: read_again
            value: data/in.csv
            outputs: {data: raw}
        """, [f"{Y}, line 6", "duplicate", "'name'"], command=V),
    C("redact_columns_string", 2, [READ, store()], [f"{Y}:", "tracker.redact_columns", "list"], head="tracker: {redact_columns: email}"),
    C("input_nobody_produces", 2, [READ, store(src="rawx")], ["line 5, step 2 'save'", "'rawx'", "did you mean 'raw'"]),
    C("unknown_layer", 2, [READ.replace("ingest", "ingset"), store()], ["line 4, step 1 'read'", "ingset", "did you mean 'ingest'"]),
    C("duplicate_step_names", 2, [READ, store(), store("out/other.csv")], ["step 3 'save'", "duplicate"]),
    C("yaml_syntax_error", 2, "pipeline: m\nsteps:\n  - {layer: ingest, name: read\n", [f"{Y}, line 4", "malformed YAML"], command=V),
    C("sql_value_empty", 2, [READ, sql(""), SAVE_CALC], ["line 5, step 2 'calc'", "value"]),
    # ------------------------------------------------------------------ targets (#1, #2, #7)
    C("store_to_dot", 2, [READ, store(".")], ["line 5, step 2 'save'", "pipeline"]),
    C("store_to_filesystem_root", 2, [READ, store("/")], ["line 5, step 2 'save'", "root"], command=V),
    C("store_to_parent_of_input", 2, [READ, store("data")], ["line 5, step 2 'save'", "input"]),
    C("store_to_bucket_root", 2, [READ, store("s3://some-bucket", "format: parquet")], ["line 5, step 2 'save'", "bucket"], command=V),
    C("store_to_workspace", 2, [READ, store("/Workspace", "format: parquet")], ["line 5, step 2 'save'", "/Workspace"], command=V),
    C("store_to_volume_root", 2, [READ, store("/Volumes/main/sales/landing", "format: parquet")], ["line 5, step 2 'save'", "Volume"], command=V),
    C("read_and_overwrite_same_file", 2, [READ, store("data/in.csv")], ["step 2 'save'", "'read'", "in.csv"]),
    C("two_writers_one_target", 2, [READ, store(name="save_a"), store(name="save_b")], ["'save_a'", "'save_b'", "out/result.csv"]),
    C("two_unordered_appends", 2, [READ, store("out/t", "format: delta, mode: append", "save_a"), store("out/t", "format: delta, mode: append", "save_b")], ["'save_a'", "'save_b'", "order"], command=V),
    # ------------------------------------------------------------------ command line (#11)
    C("negative_max_workers", 2, [READ, store()], ["--max-workers", "-1"], argv=("--max-workers", "-1")),
    C("zero_max_workers", 2, [READ, store()], ["--max-workers", "0"], argv=("--max-workers", "0")),
    C("negative_retries", 2, [READ, store()], ["--retries", "-2"], argv=("--retries", "-2")),
    C("param_without_value", 2, [READ, store()], ["--param", "KEY=VALUE"], argv=("--param", "run_date")),
    C("unknown_flag", 2, [READ, store()], ["unrecognized arguments", "--max-wrkers"], argv=("--max-wrkers", "2")),
    C("select_unknown_step", 2, [READ, store()], ["selection 'sav'", "did you mean 'save'"], argv=("--select", "sav")),
    C("missing_pipeline_file", 2, [READ, store()], ["nope.yaml"], argv=("--no-state",), command="run nope.yaml"),
    # ------------------------------------------------------------------ sources (#12)
    C("s3_on_pandas", 2, ["{layer: ingest, name: read, value: s3://bucket/in.csv, outputs: {data: raw}}", store()], ["line 4, step 1 'read'", "s3://bucket/in.csv", "engine: spark"]),
    C("missing_input_file", 1, [READ.replace("in.csv", "missing.csv"), store()], ["'read'", "missing.csv"]),
    C("empty_directory", 1, [READ.replace("data/in.csv", "data/empty"), store()], ["'read'", "empty"], files={"data/empty/.keep": ""}),
    C("empty_csv", 1, [READ.replace("in.csv", "blank.csv"), store()], ["'read'", "blank.csv", "empty"], files={"data/blank.csv": ""}),
    C("ragged_csv", 1, [READ.replace("in.csv", "ragged.csv"), store()], ["'read'", "ragged.csv", "row 3 has 3 fields"], files={"data/ragged.csv": "id,name\n1,a\n2,b,extra\n"}),
    # ------------------------------------------------------------------ SQL (#9, #10)
    C("bad_sql", 1, [READ, sql("SELEC id FROM t"), SAVE_CALC], ["step 'calc'", "SELEC"]),
    C("unknown_column", 1, [READ, sql("SELECT nope FROM t"), SAVE_CALC], ["step 'calc'", "nope"]),
    C("bad_cast", 1, [READ, sql("SELECT CAST(name AS INT) AS n FROM t"), SAVE_CALC], ["step 'calc'", "CAST"]),
    C("unknown_table", 1, [READ, sql("SELECT * FROM other"), SAVE_CALC], ["step 'calc'", "other"]),
    C("division_by_zero", 1, [READ, sql("SELECT id / 0 AS x FROM t"), SAVE_CALC], ["step 'calc'", "zero"]),
    # ------------------------------------------------------------------ functions (#13)
    C("function_raises", 1, [READ, function("m_raise"), SAVE_CALC], ["step 'fn'", "m_raise.py", "line 5", "ValueError: boom"], files={"m_raise.py": raising("raise ValueError('boom')")}),
    C("function_sys_exit", 1, [READ, function("m_exit"), SAVE_CALC], ["step 'fn'", "m_exit.py", "line 5", "sys.exit(3)"], files={"m_exit.py": raising("sys.exit(3)")}),
    C("function_not_found", 1, [READ, function("m_found", "fm"), SAVE_CALC], ["step 'fn'", "m_found", "no function 'fm'"], files={"m_found.py": raising("pass")}),
    C("function_module_missing", 1, [READ, function("m_nowhere"), SAVE_CALC], ["step 'fn'", "cannot import module 'm_nowhere'"]),
    C("function_returns_none", 1, [READ, function("m_none"), SAVE_CALC], ["step 'fn'", "None"], files={"m_none.py": "def fn(data):\n    data.head()\n"}),
    # ------------------------------------------------------------------ identifiers
    C("table_name_injection", 1, [READ, store("main.sales.t; DROP TABLE x", "format: table")], ["step 'save'", "'main.sales.t; DROP TABLE x' is not a valid table name"]),
]
SPARK_CASES = [
    # ------------------------------------------------------------------ writes on Spark (#5, #9, #10, #12)
    C("merge_duplicate_keys", 1, ["{layer: ingest, name: read, value: data/dups.csv, outputs: {data: raw}}", store("out/t", "format: delta, mode: merge, merge_keys: [id]")], ["step 'save'", "more than one row for merge key (id) = ('1')", "merge_keys"], files={"data/dups.csv": "id,name\n1,a\n1,b\n2,c\n"}, engine="spark"),
    C("merge_null_keys", 1, ["{layer: ingest, name: read, value: data/nulls.csv, outputs: {data: raw}}", store("out/t", "format: delta, mode: merge, merge_keys: [id]")], ["step 'save'", "NULL", "merge_null_keys"], files={"data/nulls.csv": "id,name\n1,a\n,b\n"}, engine="spark"),
    C("spark_bad_cast", 1, [READ, sql("SELECT CAST(name AS INT) AS n FROM t"), store("out/t", "format: delta", src="calc")], ["'calc'", "CAST_INVALID_INPUT"], engine="spark"),
    C("merge_key_not_a_column", 1, [READ, store("out/t", "format: delta, mode: merge, merge_keys: [nope]")], ["step 'save'", "'nope'", "id, name"], engine="spark"),
    C("spark_ragged_csv", 1, [READ.replace("in.csv", "ragged.csv"), store("out/t", "format: delta")], ["'read'", "ragged.csv", "row 3 has 3 fields"], files={"data/ragged.csv": "id,name\n1,a\n2,b,extra\n"}, engine="spark"),
]
# fmt: on


def prepare(case: Case, folder: Path) -> None:
    folder.mkdir()
    for name, text in {"data/in.csv": CSV, "out/result.csv": OLD, **case.files}.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    (folder / Y).write_text(case.pipeline_text())


def argv_of(case: Case, *, state: bool) -> list[str]:
    command, _, pipeline = case.command.partition(" ")
    argv = [command, pipeline or Y]
    if command == "run":
        argv += ["--quiet"] + ([] if state or "--no-state" in case.argv else ["--no-state"])
    return [*argv, *case.argv]


def check(case: Case, code: int, out: str, err: str, before, after) -> None:
    text = out + err
    assert code == case.code, f"exit {code}, expected {case.code}\n{text}"
    missing = [part for part in case.expect if part not in text]
    assert not missing, f"message lacks {missing}:\n{text}"
    assert "Traceback" not in text, text
    assert after == before, f"files changed: {set(after.items()) ^ set(before.items())}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_is_refused_and_writes_nothing(case, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "work"
    prepare(case, folder)
    monkeypatch.chdir(folder)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("ODIBI_WAREHOUSE", str(tmp_path / "warehouse"))
    before = listing(folder)
    code, out, err = cli(capsys, *argv_of(case, state=False))
    check(case, code, out, err, before, listing(folder))
    assert not (tmp_path / "warehouse").exists(), "a refused pandas run wrote state"


@pytest.mark.spark
@pytest.mark.parametrize("case", SPARK_CASES, ids=lambda c: c.id)
def test_bad_input_on_spark_is_refused_and_writes_nothing(
    case, spark, tmp_path, monkeypatch, capsys
):
    from odibi_core.orchestrator import state_location_of
    from odibi_core.state.audit import AuditStore

    folder = tmp_path / "work"
    prepare(case, folder)
    monkeypatch.chdir(folder)
    before = _outside_delta_data(listing(folder))
    schema = f"matrix_{case.id}"
    code, out, err = cli(capsys, *argv_of(case, state=True), "--state-schema", schema)
    check(case, code, out, err, before, _outside_delta_data(listing(folder)))
    assert delta_versions(folder / "out" / "t") == []
    runs = AuditStore(state_location_of(schema), spark_provider=lambda: spark).runs.read()
    assert "SUCCESS" not in [r["status"] for r in runs], runs


def _outside_delta_data(files):
    """The listing without the Delta target's data files: a Delta table is what its log
    says (compared by version below); files an aborted job left are not a version."""
    return {k: v for k, v in files.items() if not k.startswith("out/t/") or "/_delta_log/" in k}


# A few as real processes: the real exit code and stderr of the `odibi` command.
PROCESS_CASES = [
    c for c in CASES if c.id in ("mdoe_typo", "negative_max_workers", "function_raises")
]


@pytest.mark.parametrize("case", PROCESS_CASES, ids=lambda c: c.id)
def test_bad_input_as_a_real_process(case, tmp_path, run_process):
    folder = tmp_path / "work"
    prepare(case, folder)
    before = listing(folder)
    code, out, err = run_process(
        argv_of(case, state=False), folder, env={"ODIBI_WAREHOUSE": str(tmp_path / "warehouse")}
    )
    check(case, code, out, err, before, listing(folder))


def test_the_matrix_has_at_least_forty_cases():
    assert len(CASES) + len(SPARK_CASES) >= 40
    assert len({c.id for c in CASES + SPARK_CASES}) == len(CASES) + len(SPARK_CASES)
