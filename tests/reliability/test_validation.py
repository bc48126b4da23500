"""Validation catches what it can: misspelled params, wrong types, duplicate keys, bad counts.

Each bad pipeline goes through ``odibi validate`` (and a few through ``odibi run``) in
process, on the pandas engine: exit 2, a message naming the file, line and step, no
traceback, and nothing written. The cases are plain data (``BAD_STEPS``, ``BAD_FILES``,
``BAD_RUN_FLAGS``, ``BAD_PYTHON``) so a combined bad-input matrix can reuse them.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from odibi_core import Step
from odibi_core.cli import main
from odibi_core.core.errors import PipelineConfigError
from odibi_core.orchestrator import Orchestrator

CSV = "id,name\n1,a\n2,b\n3,c\n"
READ = "{layer: ingest, name: read, value: data/in.csv, outputs: {data: raw}}"
SAVE = "{layer: store, name: save, value: out/result.csv, inputs: {data: raw}}"


def write_pipeline(folder: Path, steps: list[str], *, head: str = "", name="pipeline.yaml"):
    """``data/in.csv`` and a pandas pipeline whose steps are ``steps`` (one YAML line each)."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "data" / "in.csv").write_text(CSV)
    lines = ["pipeline: checks", "engine: pandas", *filter(None, [head]), "steps:"]
    lines += [f"  - {step}" for step in steps]
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return path


def refused(capsys, *argv: str) -> str:
    """Run the CLI, expect a config error (exit 2) without a traceback; return stderr."""
    code = main([*argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    return err


# --------------------------------------------------------------------------- params (#3)

# (id, steps, the step at fault as "line N, step M 'name'", expected message parts)
BAD_PARAMS = [
    (
        "misspelled_mode",
        [READ, SAVE.replace("inputs:", "params: {mdoe: append}, inputs:")],
        "line 5, step 2 'save'",
        ["unknown param 'mdoe' (did you mean 'mode'?)", "a store step takes format, options, mode"],
    ),
    (
        "reader_option_outside_options",
        [READ.replace("outputs:", "params: {header: false}, outputs:"), SAVE],
        "line 4, step 1 'read'",
        ["unknown param 'header'", "reader/writer options go under params.options"],
    ),
    (
        "writer_option_outside_options",
        [READ, SAVE.replace("inputs:", "params: {maxRecordsPerFile: 10}, inputs:")],
        "line 5, step 2 'save'",
        ["unknown param 'maxRecordsPerFile'", "(options: {maxRecordsPerFile: ...})"],
    ),
    (
        "store_param_on_ingest",
        [READ.replace("outputs:", "params: {mode: append}, outputs:"), SAVE],
        "line 4, step 1 'read'",
        ["params.mode does not apply to an ingest step", "an ingest step takes format and options"],
    ),
    (
        "misspelled_mode_value",
        [READ, SAVE.replace("inputs:", "params: {mode: apend}, inputs:")],
        "line 5, step 2 'save'",
        ["write mode 'apend' is not one of overwrite, append, merge (did you mean 'append'?)"],
    ),
    (
        "misspelled_format",
        [READ, SAVE.replace("inputs:", "params: {format: parquett}, inputs:")],
        "line 5, step 2 'save'",
        ["format 'parquett' is not one of csv, json, parquet, delta, table (did you mean"],
    ),
    (
        "merge_keys_not_names",
        [
            READ,
            "{layer: store, name: save, value: out/t, params: {format: delta, mode: merge,"
            " merge_keys: {id: 1}}, inputs: {data: raw}}",
        ],
        "line 5, step 2 'save'",
        ["params.merge_keys must be a column name or a list of column names, got {'id': 1}"],
    ),
    (
        "merge_schema_not_boolean",
        [
            READ,
            "{layer: store, name: save, value: out/t, params: {format: delta, mode: append,"
            " merge_schema: 'yes'}, inputs: {data: raw}}",
        ],
        "line 5, step 2 'save'",
        ["params.merge_schema must be true or false, got 'yes'"],
    ),
    (
        "partition_by_not_names",
        [READ, SAVE.replace("inputs:", "params: {partition_by: 3}, inputs:")],
        "line 5, step 2 'save'",
        ["params.partition_by must be a column name or a list of column names, got 3"],
    ),
    (
        "merge_null_keys_unknown_value",
        [
            READ,
            "{layer: store, name: save, value: out/t, params: {format: delta, mode: merge,"
            " merge_keys: [id], merge_null_keys: skip}, inputs: {data: raw}}",
        ],
        "line 5, step 2 'save'",
        ["params.merge_null_keys 'skip' is not one of error, insert"],
    ),
    (
        "options_not_a_mapping",
        [READ.replace("outputs:", "params: {options: 'header=true'}, outputs:"), SAVE],
        "line 4, step 1 'read'",
        ["params.options must be a mapping of reader/writer option to value"],
    ),
    (
        "cluster_by_on_csv",
        [READ, SAVE.replace("inputs:", "params: {cluster_by: [id]}, inputs:")],
        "line 5, step 2 'save'",
        ["params.cluster_by needs format delta or table, not csv"],
    ),
    (
        "append_to_csv",
        [READ, SAVE.replace("inputs:", "params: {mode: append}, inputs:")],
        "line 5, step 2 'save'",
        ["mode 'append' cannot write csv files at 'out/result.csv'", "set format: delta"],
    ),
    (
        "sql_transform_with_params",
        [
            READ,
            "{layer: transform, name: pick, value: SELECT * FROM raw, params: {limit: 5},"
            " inputs: {raw: raw}, outputs: {data: picked}}",
        ],
        "line 5, step 2 'pick'",
        ["a sql transform takes no params, got 'limit'"],
    ),
]


@pytest.mark.parametrize(
    ("steps", "at", "expected"),
    [pytest.param(steps, at, expected, id=case) for case, steps, at, expected in BAD_PARAMS],
)
def test_bad_params_are_refused_at_validation(tmp_path, capsys, steps, at, expected):
    path = write_pipeline(tmp_path, steps)

    err = refused(capsys, "validate", str(path))

    assert f"{path}, {at}: " in err
    for part in expected:
        assert part in err


def test_a_misspelled_mode_writes_nothing(tmp_path, capsys, monkeypatch):
    """``mdoe: append`` used to overwrite the target with the new rows, exit 0."""
    monkeypatch.chdir(tmp_path)
    path = write_pipeline(
        tmp_path, [READ, SAVE.replace("inputs:", "params: {mdoe: append}, inputs:")]
    )

    err = refused(capsys, "run", str(path), "--no-state")

    assert "step 2 'save': unknown param 'mdoe' (did you mean 'mode'?)" in err
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "pipeline.yaml"]


def test_a_misspelled_mode_given_as_a_runtime_parameter_writes_nothing(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    save = SAVE.replace("inputs:", "params: {mode: '${params.mode}'}, inputs:")
    path = write_pipeline(tmp_path, [READ, save], head="parameters: {mode: overwrite}")
    assert main(["validate", str(path)]) == 0

    err = refused(capsys, "run", str(path), "--no-state", "--param", "mode=apend")

    assert (
        f"{path}, step 2 'save': write mode 'apend' is not one of overwrite, append, merge" in err
    )
    assert "(did you mean 'append'?)" in err
    assert not (tmp_path / "out").exists()


def test_options_reach_the_reader_and_writer_as_given(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_pipeline(
        tmp_path,
        [
            READ.replace("data/in.csv", "data/semi.csv").replace(
                "outputs:", "params: {format: csv, options: {sep: ';'}}, outputs:"
            ),
            SAVE.replace("inputs:", "params: {options: {sep: '|', header: false}}, inputs:"),
        ],
    )
    (tmp_path / "data" / "semi.csv").write_text("id;name\n1;a\n2;b\n")

    assert main(["run", str(path), "--no-state", "--quiet"]) == 0, capsys.readouterr().err

    (part,) = (tmp_path / "out" / "result.csv").glob("part-*.csv")
    assert part.read_text().splitlines() == ["1|a", "2|b"]


def test_function_params_are_the_functions_own_arguments(tmp_path, capsys, monkeypatch):
    """A function step's params go to the user's function, so its own names are accepted."""
    monkeypatch.chdir(tmp_path)
    path = write_pipeline(
        tmp_path,
        [
            "{layer: transform, name: make, type: function, value: 'tests.funcs:sleep_then_rows',"
            " params: {seconds: 0, rows: 2}, outputs: {data: raw}}",
            SAVE,
        ],
    )

    assert main(["run", str(path), "--no-state", "--quiet"]) == 0, capsys.readouterr().err

    (part,) = (tmp_path / "out" / "result.csv").glob("part-*.csv")
    assert len(part.read_text().splitlines()) == 3  # the header and the two rows asked for


def test_the_example_pipeline_is_valid(capsys):
    example = Path(__file__).parents[2] / "pipelines" / "customer_pipeline.yaml"

    assert main(["validate", str(example)]) == 0, capsys.readouterr().err


# --------------------------------------------------------------------------- types (#11)

# (id, steps, head (top-level lines), where the problem is, expected message parts)
BAD_FILES = [
    ("list_name", [READ.replace("name: read", "name: [read]"), SAVE], "", "line 4, step 1", ["'name' must be a non-empty text, got ['read']"]),
    ("list_layer", [READ.replace("layer: ingest", "layer: [ingest]"), SAVE], "", "line 4, step 1 'read'", ["'layer' must be a non-empty text, got ['ingest']"]),
    ("numeric_name", [READ.replace("name: read", "name: 7"), SAVE], "", "line 4, step 1", ["'name' must be a non-empty text, got 7"]),
    ("list_output_key", [READ.replace("{data: raw}", "{data: [raw, other]}"), SAVE], "", "line 4, step 1 'read'", ["'outputs' maps 'data' to ['raw', 'other']"]),
    ("list_input_key", [READ, SAVE.replace("{data: raw}", "{data: [raw]}")], "", "line 5, step 2 'save'", ["'inputs' maps 'data' to ['raw']"]),
    ("numeric_input_key", [READ, SAVE.replace("{data: raw}", "{data: 5}")], "", "line 5, step 2 'save'", ["'inputs' maps 'data' to 5"]),
    ("numeric_output_name", [READ.replace("{data: raw}", "{1: raw}"), SAVE], "", "line 4, step 1 'read'", ["'outputs' maps 1 to 'raw'"]),
    ("outputs_not_a_mapping", [READ.replace("{data: raw}", "[raw]"), SAVE], "", "line 4, step 1 'read'", ["'outputs' must be a mapping of name to data key"]),
    ("list_type", [READ, "{layer: transform, name: t, type: [sql], value: SELECT 1, outputs: {data: t}}"], "", "line 5, step 2 't'", ["'type' must be a text, got ['sql']"]),
    ("numeric_engine", [READ.replace("outputs:", "engine: 5, outputs:"), SAVE], "", "line 4, step 1 'read'", ["'engine' must be a text, got 5"]),
    ("list_value", [READ.replace("value: data/in.csv", "value: [data/in.csv]"), SAVE], "", "line 4, step 1 'read'", ["'value' must be a text"]),
    ("boolean_retries", [READ.replace("outputs:", "retries: true, outputs:"), SAVE], "", "line 4, step 1 'read'", ["'retries' must be a whole number of 0 or more, got True"]),
    ("negative_retries", [READ.replace("outputs:", "retries: -1, outputs:"), SAVE], "", "line 4, step 1 'read'", ["'retries' must be a whole number of 0 or more, got -1"]),
    ("text_cache", [READ.replace("outputs:", "cache: 'yes', outputs:"), SAVE], "", "line 4, step 1 'read'", ["'cache' must be true or false, got 'yes'"]),
    ("text_hook_timeout", [READ, SAVE], "settings: {hook_timeout: abc}", "", ["settings.hook_timeout must be float (or null), got 'abc'"]),
    ("text_duckdb_threads", [READ, SAVE], "settings: {duckdb_threads: many}", "", ["settings.duckdb_threads must be int (or null), got 'many'"]),
    ("zero_max_workers", [READ, SAVE], "settings: {max_workers: 0}", "", ["settings.max_workers must be 1 or more, got 0"]),
    ("negative_max_workers", [READ, SAVE], "settings: {max_workers: -3}", "", ["settings.max_workers must be 1 or more, got -3"]),
    ("negative_retry_delay", [READ, SAVE], "settings: {retry_delay: -1}", "", ["settings.retry_delay must be 0 or more (seconds), got -1"]),
    ("negative_max_retries", [READ, SAVE], "settings: {max_retries: -1}", "", ["settings.max_retries must be 0 or more, got -1"]),
    ("list_state_catalog", [READ, SAVE], "state: {schema: s, catalog: [c]}", "", ["'state' must be a mapping with a text 'schema' (and optional 'catalog')"]),
    ("misspelled_state_key", [READ, SAVE], "state: {shcema: s}", "", ["'state' must be a mapping with a text 'schema'", "{'shcema': 's'}"]),
    ("duplicate_top_level_key", [READ, SAVE], "engine: spark", "line 3", ["duplicate key 'engine' (first given at line 2)"]),
    ("duplicate_step_key", [READ.replace("outputs:", "value: data/other.csv, outputs:"), SAVE], "", "line 4, step 1 'read'", ["duplicate key 'value' (first given at line 4)"]),
    ("duplicate_params_key", [READ, SAVE.replace("inputs:", "params: {mode: overwrite, mode: append}, inputs:")], "", "line 5, step 2 'save'", ["duplicate key 'mode' (first given at line 5)"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("steps", "head", "at", "expected"),
    [pytest.param(s, h, at, e, id=case) for case, s, h, at, e in BAD_FILES],
)
def test_wrong_types_and_duplicate_keys_are_config_errors(
    tmp_path, capsys, steps, head, at, expected
):
    path = write_pipeline(tmp_path, steps, head=head)

    err = refused(capsys, "validate", str(path))

    assert f"{path}{', ' + at if at else ''}: " in err
    for part in expected:
        assert part in err


def test_duplicate_keys_in_a_json_pipeline_are_refused(tmp_path, capsys):
    path = tmp_path / "pipeline.json"
    step = '{"layer": "ingest", "name": "read", "value": "in.csv", "outputs": {"data": "raw"}}'
    path.write_text(f'{{"pipeline": "p", "steps": [{step}], "steps": []}}')

    err = refused(capsys, "validate", str(path))

    assert f"{path}: duplicate key 'steps' in a JSON object" in err


def test_a_yaml_merge_key_may_be_overridden(tmp_path, capsys):
    """``<<: *defaults`` then an explicit key is an override, not a duplicate."""
    path = write_pipeline(tmp_path, [READ, SAVE])
    text = path.read_text().replace(
        "steps:", "x-defaults: &save {layer: store, inputs: {data: raw}}\nsteps:"
    )
    text = text.replace(SAVE, "{<<: *save, name: save, value: out/result.csv, layer: store}")
    path.write_text(text)

    code = main(["validate", str(path)])

    captured = capsys.readouterr()
    assert "duplicate key" not in captured.err
    assert "unknown top-level key 'x-defaults'" in captured.err and code == 2


BAD_RUN_FLAGS = [
    ("negative_max_workers", ["--max-workers", "-1"], "--max-workers must be 1 or more, got -1"),
    ("zero_max_workers", ["--max-workers", "0"], "--max-workers must be 1 or more, got 0"),
    ("negative_retries", ["--retries", "-2"], "--retries must be 0 or more, got -2"),
]


@pytest.mark.parametrize(
    ("flags", "expected"), [pytest.param(f, e, id=case) for case, f, e in BAD_RUN_FLAGS]
)
def test_bad_run_counts_are_refused_before_anything_runs(
    tmp_path, capsys, monkeypatch, flags, expected
):
    monkeypatch.chdir(tmp_path)
    path = write_pipeline(tmp_path, [READ, SAVE])

    err = refused(capsys, "run", str(path), "--no-state", *flags)

    assert f"error: command line: {expected}" in err
    assert not (tmp_path / "out").exists()


def _ingest(**changes) -> Step:
    fields = {"layer": "ingest", "name": "read", "value": "in.csv", "outputs": {"data": "raw"}}
    return Step(**{**fields, **changes})


# (id, Orchestrator keyword arguments, expected message)
BAD_PYTHON = [
    ("steps_is_text", {"steps": "x"}, "<steps>: steps must be a list of Step(...) objects, got str"),
    ("step_is_not_a_step", {"steps": ["read"]}, "<steps>, step 1: expected a Step(layer=..., name=..., ...), got str"),
    ("list_name", {"steps": [_ingest(name=["a"])]}, "<steps>, step 1: 'name' must be a non-empty text, got ['a']"),
    ("text_inputs", {"steps": [_ingest(inputs="x")]}, "<steps>, step 1 'read': 'inputs' must be a mapping of name to data key"),
    ("list_params", {"steps": [_ingest(params=["format"])]}, "<steps>, step 1 'read': 'params' must be a mapping, got list"),
    ("boolean_retries", {"steps": [_ingest(retries=True)]}, "<steps>, step 1 'read': 'retries' must be a whole number of 0 or more, got True"),
    ("misspelled_param", {"steps": [_ingest(params={"fromat": "csv"})]}, "<steps>, step 1 'read': unknown param 'fromat' (did you mean 'format'?)"),
    ("text_max_workers", {"steps": [_ingest()], "max_workers": "4"}, "<steps>: Orchestrator.max_workers must be int, got '4'"),
    ("zero_max_workers", {"steps": [_ingest()], "max_workers": 0}, "<steps>: Orchestrator.max_workers must be 1 or more, got 0"),
    ("negative_retry_delay", {"steps": [_ingest()], "retry_delay": -1}, "<steps>: Orchestrator.retry_delay must be 0 or more (seconds), got -1"),
    ("text_fail_fast", {"steps": [_ingest()], "fail_fast": "yes"}, "<steps>: Orchestrator.fail_fast must be bool, got 'yes'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "expected"), [pytest.param(k, e, id=case) for case, k, e in BAD_PYTHON]
)
def test_the_python_api_raises_config_errors_with_a_location(kwargs, expected):
    with pytest.raises(PipelineConfigError) as error:
        Orchestrator(**kwargs)

    assert expected in str(error.value)


def test_json_cases_match_yaml_cases(tmp_path, capsys):
    """The same checks hold for a JSON pipeline (no line numbers there, the step is named)."""
    raw = {
        "pipeline": "p",
        "engine": "pandas",
        "steps": [
            {"layer": "ingest", "name": "read", "value": "in.csv", "outputs": {"data": "raw"}},
            {
                "layer": "store",
                "name": "save",
                "value": "out.csv",
                "params": {"mdoe": "append"},
                "inputs": {"data": ["raw"]},
            },
        ],
    }
    path = tmp_path / "pipeline.json"
    path.write_text(json.dumps(raw))

    err = refused(capsys, "validate", str(path))

    assert f"{path}, step 2 'save': 'inputs' maps 'data' to ['raw']" in err
    assert f"{path}, step 2 'save': unknown param 'mdoe' (did you mean 'mode'?)" in err
    assert textwrap.dedent(err).count("error: ") == 2


def test_nodes_refuse_unknown_params_even_without_validation(tmp_path):
    """A step run directly (no validate_steps) still never drops a misspelled key."""
    from odibi_core.core.locations import locate
    from odibi_core.nodes.ingest import read_spec_for
    from odibi_core.nodes.store import write_spec_for

    save = Step(layer="store", name="save", value="t", params={"format": "delta", "mdoe": "append"})
    read = _ingest(params={"options": {"header": False}, "inferSchema": False})

    with pytest.raises(PipelineConfigError, match=r"store step 'save': unknown param 'mdoe'"):
        write_spec_for(save, locate(save, tmp_path))
    with pytest.raises(
        PipelineConfigError, match=r"ingest step 'read': unknown param 'inferSchema'"
    ):
        read_spec_for(read, locate(read, tmp_path))
    good = _ingest(params={"options": {"header": False}})
    assert dict(read_spec_for(good, locate(good, tmp_path)).options) == {"header": False}
