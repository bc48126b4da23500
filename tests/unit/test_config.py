import json
import textwrap

import pytest

from odibi_core.core.config import load_pipeline, parse_pipeline
from odibi_core.core.errors import PipelineConfigError
from odibi_core.core.parameters import resolve_parameters
from odibi_core.core.step import Step


def write(tmp_path, text, name="p.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


VALID = """
pipeline: customers
engine: auto
settings: {max_workers: 3, max_retries: 2, retry_delay: 0.5, fail_fast: true}
state: {schema: odibi_state}
tracker: {sample_rows: 3, redact_columns: [email]}
schedule: {quartz_cron_expression: "0 0 2 * * ?", timezone_id: UTC}
steps:
  - {layer: ingest, name: read_customers, value: data/customers.csv, outputs: {data: raw_customers}}
  - {layer: ingest, name: read_orders, value: data/orders.parquet, outputs: {data: raw_orders}}
  - layer: transform
    name: join_all
    type: sql
    value: SELECT * FROM orders o JOIN customers c USING (customer_id)
    inputs: {orders: raw_orders, customers: raw_customers}
    outputs: {data: joined}
  - {layer: store, name: save, value: main.sales.orders, params: {format: table, mode: merge, merge_keys: [order_id]}, inputs: {data: joined}}
"""


def test_loads_a_valid_yaml_pipeline(tmp_path):
    config = load_pipeline(write(tmp_path, VALID))
    assert config.name == "customers"
    assert config.engine == "auto"
    assert config.settings.max_workers == 3 and config.settings.fail_fast is True
    assert config.settings.retry_backoff == 2.0  # default kept
    assert config.tracker.redact_columns == ("email",)
    assert config.state.schema == "odibi_state"
    assert config.schedule["timezone_id"] == "UTC"
    assert [s.name for s in config.steps] == ["read_customers", "read_orders", "join_all", "save"]
    assert config.steps[2].inputs == {"orders": "raw_orders", "customers": "raw_customers"}
    assert config.base_dir == tmp_path.resolve()


def test_loads_json_pipeline(tmp_path):
    import yaml

    path = tmp_path / "p.json"
    path.write_text(json.dumps(yaml.safe_load(VALID)))
    assert len(load_pipeline(path).steps) == 4


def problems_of(tmp_path, text):
    with pytest.raises(PipelineConfigError) as info:
        load_pipeline(write(tmp_path, text))
    return info.value.problems


def test_unknown_layer_with_suggestion(tmp_path):
    (problem,) = problems_of(
        tmp_path,
        """
        pipeline: p
        steps:
          - {layer: ingets, name: a, value: x.csv, outputs: {data: a}}
    """,
    )
    assert "step 1 'a'" in problem and "unknown layer 'ingets'" in problem
    assert "did you mean 'ingest'" in problem


def test_unknown_transform_type(tmp_path):
    (problem,) = problems_of(
        tmp_path,
        """
        pipeline: p
        steps:
          - {layer: ingest, name: a, value: x.csv, outputs: {data: a}}
          - {layer: transform, name: b, type: sqll, value: SELECT 1, inputs: {x: a}, outputs: {data: b}}
    """,
    )
    assert (
        "step 2 'b'" in problem
        and "unknown transform type 'sqll'" in problem
        and "'sql'" in problem
    )


def test_missing_required_field(tmp_path):
    (problem,) = problems_of(
        tmp_path,
        """
        pipeline: p
        steps:
          - {layer: ingest, value: x.csv, outputs: {data: a}}
    """,
    )
    assert "step 1" in problem and "missing required field 'name'" in problem


def test_duplicate_step_name(tmp_path):
    (problem,) = problems_of(
        tmp_path,
        """
        pipeline: p
        steps:
          - {layer: ingest, name: a, value: x.csv, outputs: {data: a}}
          - {layer: ingest, name: a, value: y.csv, outputs: {data: b}}
    """,
    )
    assert "step 2 'a'" in problem and "duplicate step name 'a'" in problem


def test_data_key_with_two_producers(tmp_path):
    (problem,) = problems_of(
        tmp_path,
        """
        pipeline: p
        steps:
          - {layer: ingest, name: a, value: x.csv, outputs: {data: raw}}
          - {layer: ingest, name: b, value: y.csv, outputs: {data: raw}}
    """,
    )
    assert "step 2 'b'" in problem and "'raw' is already produced by step 'a'" in problem


def test_input_no_step_produces_suggests_closest(tmp_path):
    (problem,) = problems_of(
        tmp_path,
        """
        pipeline: p
        steps:
          - {layer: ingest, name: a, value: x.csv, outputs: {data: raw_orders}}
          - {layer: store, name: s, value: out.csv, inputs: {data: raw_order}}
    """,
    )
    assert "step 2 's'" in problem and "reads 'raw_order', which no step produces" in problem
    assert "(did you mean 'raw_orders'?)" in problem


def test_bad_engine_name(tmp_path):
    (problem,) = problems_of(
        tmp_path,
        """
        pipeline: p
        steps:
          - {layer: ingest, name: a, engine: sparkk, value: x.csv, outputs: {data: a}}
    """,
    )
    assert (
        "step 1 'a'" in problem
        and "engine 'sparkk'" in problem
        and "did you mean 'spark'" in problem
    )


def test_bad_function_reference(tmp_path):
    (problem,) = problems_of(
        tmp_path,
        """
        pipeline: p
        steps:
          - {layer: ingest, name: a, value: x.csv, outputs: {data: a}}
          - {layer: transform, name: f, type: function, value: mymodule.fn, inputs: {df: a}, outputs: {data: b}}
    """,
    )
    assert (
        "step 2 'f'" in problem
        and "'mymodule.fn' is not of the form 'package.module:function'" in problem
    )


def test_cycle_names_the_steps_on_it(tmp_path):
    (problem,) = problems_of(
        tmp_path,
        """
        pipeline: p
        steps:
          - {layer: transform, name: a, value: SELECT 1, inputs: {x: kb}, outputs: {data: ka}}
          - {layer: transform, name: b, value: SELECT 1, inputs: {x: ka}, outputs: {data: kb}}
    """,
    )
    assert "cycle" in problem and "a -> b -> a" in problem or "b -> a -> b" in problem


def test_malformed_yaml_reports_its_line(tmp_path):
    (problem,) = problems_of(tmp_path, "pipeline: p\nsteps:\n  - layer: ingest\n    name: a: b\n")
    assert "malformed YAML" in problem and "p.yaml, line 4" in problem


def test_merge_without_keys_is_rejected_at_load(tmp_path):
    (problem,) = problems_of(
        tmp_path,
        """
        pipeline: p
        steps:
          - {layer: ingest, name: a, value: x.csv, outputs: {data: a}}
          - {layer: store, name: s, value: t.x, params: {mode: merge}, inputs: {data: a}}
    """,
    )
    assert "step 2 's'" in problem and "merge_keys" in problem


FIVE_MISTAKES = """
pipeline: p
steps:
  - {layer: ingets, name: a, value: x.csv, outputs: {data: raw}}
  - {layer: ingest, name: a, value: y.csv, outputs: {data: other}}
  - {layer: ingest, name: c, engine: pandsa, value: z.csv, outputs: {data: raw}}
  - {layer: transform, name: d, type: function, value: not_a_ref, inputs: {x: raw}, outputs: {data: d}}
  - {layer: store, name: e, value: out.csv, inputs: {data: raww}}
"""


def test_five_mistakes_are_reported_together_with_file_and_step(tmp_path):
    problems = problems_of(tmp_path, FIVE_MISTAKES)
    assert len(problems) == 6  # the five mistakes, plus c's output clashing with a's
    joined = "\n".join(problems)
    for expected in (
        "unknown layer 'ingets'",
        "duplicate step name 'a'",
        "engine 'pandsa'",
        "'not_a_ref' is not of the form",
        "reads 'raww', which no step produces",
    ):
        assert expected in joined
    assert all("p.yaml, line " in p and ", step " in p for p in problems)


def test_error_is_never_a_bare_key_or_type_error(tmp_path):
    for text in (
        "[1, 2]",
        "pipeline: p\nsteps: 3",
        "pipeline: p\nsteps:\n  - 7\n",
        "pipeline: p\nsteps:\n  - {layer: ingest, name: a, inputs: [1]}\n",
    ):
        with pytest.raises(PipelineConfigError):
            load_pipeline(write(tmp_path, text))


def test_settings_types_are_checked(tmp_path):
    problems = problems_of(tmp_path, VALID.replace("max_workers: 3", "max_workers: lots"))
    assert any("settings.max_workers must be int" in p for p in problems)


def test_parameters_substitute_into_value_and_params():
    steps = [
        Step(
            layer="ingest", name="a", value="data/${params.run_date}/x.csv", outputs={"data": "a"}
        ),
        Step(
            layer="transform",
            name="t",
            value="SELECT * FROM d WHERE day = '${params.run_date}'",
            inputs={"d": "a"},
            outputs={"data": "t"},
            params={"note": "${params.run_date}"},
        ),
    ]
    resolved, values = resolve_parameters(steps, {"run_date": None}, {"run_date": "2024-05-01"})
    assert resolved[0].value == "data/2024-05-01/x.csv"
    assert "day = '2024-05-01'" in resolved[1].value
    assert resolved[1].params == {"note": "2024-05-01"}
    assert values == {"run_date": "2024-05-01"}


def test_missing_parameter_without_default_is_a_config_error():
    steps = [Step(layer="ingest", name="a", value="${params.run_date}.csv", outputs={"data": "a"})]
    with pytest.raises(PipelineConfigError, match="--param run_date=VALUE"):
        resolve_parameters(steps, {"run_date": None}, {})
    with pytest.raises(PipelineConfigError, match="not declared"):
        resolve_parameters(steps, {"run_date": "x"}, {"rundate": "y"})


def test_undeclared_parameter_reference_fails_at_load():
    raw = {
        "pipeline": "p",
        "steps": [
            {"layer": "ingest", "name": "a", "value": "${params.day}.csv", "outputs": {"data": "a"}}
        ],
    }
    with pytest.raises(
        PipelineConfigError, match=r"uses \$\{params.day\}, which the pipeline does not declare"
    ):
        parse_pipeline(raw)


# --------------------------------------------------------------------------- params schema


def test_each_layer_takes_its_own_params():
    from odibi_core.core.step_params import params_for

    assert params_for("ingest") == ("format", "options")
    assert (
        set(params_for("store"))
        == set(params_for("publish"))
        == {
            "format",
            "options",
            "mode",
            "merge_keys",
            "update_columns",
            "merge_null_keys",
            "merge_schema",
            "partition_by",
            "cluster_by",
        }
    )
    assert params_for("transform") == ()


def test_a_misspelled_param_is_a_load_error_with_a_suggestion(tmp_path):
    (problem,) = problems_of(
        tmp_path, VALID.replace("params: {format: table,", "params: {fromat: table,")
    )
    assert problem.startswith(f"{tmp_path / 'p.yaml'}, line 17, step 4 'save': ")
    assert "unknown param 'fromat' (did you mean 'format'?)" in problem


def test_params_given_as_runtime_parameters_are_not_refused_before_substitution(tmp_path):
    text = VALID.replace("mode: merge,", "mode: '${params.mode}',").replace(
        "steps:", "parameters: {mode: merge}\nsteps:"
    )
    config = load_pipeline(write(tmp_path, text))
    assert config.steps[3].params["mode"] == "${params.mode}"


def test_custom_layers_and_function_steps_keep_their_own_params():
    from odibi_core.core.config import validate_steps
    from odibi_core.core.step import register_layer

    register_layer("notify")
    steps = [
        Step(layer="transform", name="f", type="function", value="m:f", params={"mdoe": 1},
             outputs={"data": "a"}),
        Step(layer="notify", name="n", params={"channel": "#data"}, inputs={"data": "a"}),
    ]  # fmt: skip
    assert validate_steps(steps) == []


# --------------------------------------------------------------------------- types and keys


def test_optional_settings_are_type_checked_too(tmp_path):
    problems = problems_of(tmp_path, VALID.replace("fail_fast: true", "hook_timeout: abc"))
    assert problems == [
        f"{tmp_path / 'p.yaml'}: settings.hook_timeout must be float (or null), got 'abc'"
    ]
    config = load_pipeline(write(tmp_path, VALID.replace("fail_fast: true", "hook_timeout: null")))
    assert config.settings.hook_timeout is None


def test_settings_that_cannot_work_are_refused(tmp_path):
    text = VALID.replace("max_workers: 3", "max_workers: 0").replace(
        "retry_delay: 0.5", "retry_delay: -0.5"
    )
    assert problems_of(tmp_path, text) == [
        f"{tmp_path / 'p.yaml'}: settings.max_workers must be 1 or more, got 0",
        f"{tmp_path / 'p.yaml'}: settings.retry_delay must be 0 or more (seconds), got -0.5",
    ]


def test_settings_overrides_are_checked_like_the_file():
    from odibi_core.core.config import Settings, settings_with

    settings = settings_with(
        Settings(), {"max_workers": 2, "retry_delay": 0}, where="w", section="S"
    )
    assert (settings.max_workers, settings.retry_delay) == (2, 0)
    with pytest.raises(PipelineConfigError, match=r"^w: S.max_workers must be int, got '4'$"):
        settings_with(Settings(), {"max_workers": "4"}, where="w", section="S")
    with pytest.raises(PipelineConfigError, match=r"S.max_retries must be 0 or more, got -1"):
        settings_with(Settings(), {"max_retries": -1}, where="w", section="S")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pipeline: p\npipeline: q\nsteps: []\n", "p.yaml, line 2: duplicate key 'pipeline'"),
        (
            "pipeline: p\nsteps:\n  - layer: ingest\n    name: a\n    name: b\n",
            "p.yaml, line 5, step 1 'a': duplicate key 'name' (first given at line 4)",
        ),
        (
            "pipeline: p\nsettings: {tracker: {a: 1, a: 2}}\nsteps: []\n",
            "p.yaml, line 2: duplicate key 'a' (first given at line 2)",
        ),
    ],
)
def test_duplicate_yaml_keys_are_refused_at_any_depth(tmp_path, text, expected):
    (problem,) = problems_of(tmp_path, text)
    assert expected in problem


def test_wrong_step_field_types_are_problems_never_raw_errors():
    from odibi_core.core.config import validate_steps

    steps = [
        Step(layer="ingest", name=["a"], value="x.csv", outputs={"data": "a"}),
        Step(layer=["ingest"], name="b", value="y.csv", outputs={"data": ["b"]}),
        Step(layer="store", name="c", value="z.csv", inputs="a", retries=True, cache="no"),
    ]
    assert validate_steps(steps) == [
        "<steps>, step 1: 'name' must be a non-empty text, got ['a']",
        "<steps>, step 2 'b': 'layer' must be a non-empty text, got ['ingest']",
        "<steps>, step 2 'b': 'outputs' maps 'data' to ['b']; names and data keys must be "
        "non-empty text, e.g. outputs: {data: my_key}",
        "<steps>, step 3 'c': 'inputs' must be a mapping of name to data key, e.g. "
        "inputs: {data: my_key}, got 'a'",
        "<steps>, step 3 'c': 'retries' must be a whole number of 0 or more, got True",
        "<steps>, step 3 'c': 'cache' must be true or false, got 'no'",
    ]
