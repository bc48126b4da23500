"""The pytest plugin seen from a user's test file: generated in a fresh directory, run in
this process with pytester, using only the public fixtures and helpers."""

from __future__ import annotations

import pytest

# pytester, registered by this module (a conftest below the root may not name plugins).
pytest_plugins = ["pytester"]

STEP = """
import pandas as pd
import pytest
from odibi_core import Step
from odibi_core.testing import assert_frames_equal

DOUBLE = Step(layer="transform", name="double", type="sql",
              value="SELECT x * 2 AS y FROM src", inputs={"src": "raw"},
              outputs={"data": "doubled"})
"""


def test_a_step_test_passes_and_a_wrong_expectation_fails_showing_the_rows(pytester, run_generated):
    pytester.makepyfile(
        STEP
        + """
def test_right(run_step):
    out = run_step(DOUBLE, inputs={"raw": pd.DataFrame({"x": [3, 1, 2]})}, engine="pandas")
    assert_frames_equal(out.output, pd.DataFrame({"y": [2, 4, 6]}))

def test_wrong(run_step):
    out = run_step(DOUBLE, inputs={"raw": pd.DataFrame({"x": [1, 2]})}, engine="pandas")
    assert_frames_equal(out.output, pd.DataFrame({"y": [2, 5]}))
"""
    )
    result = run_generated()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*the frames differ (2 actual rows, 2 expected rows)*",
            "*rows only in actual (1):*",
            "*y*",
            "*4*",
            "*rows only in expected (1):*",
            "*5*",
        ]
    )


def test_the_engines_marker_parametrizes_and_is_registered(pytester, run_generated):
    pytester.makepyfile(
        """
import pytest

@pytest.mark.odibi_engines("pandas", "spark")
def test_both(odibi_engine):
    assert odibi_engine in ("pandas", "spark")

def test_default(odibi_engine):
    assert odibi_engine == "pandas"
"""
    )
    pytester.makepyfile(
        test_unknown="""
import pytest

@pytest.mark.odibi_engines("duckdb")
def test_unknown():
    pass
"""
    )
    # The spark run is deselected by its mark: no JVM is needed to see both ids.
    result = run_generated(
        "-m",
        "not spark",
        "-v",
        "--continue-on-collection-errors",
    )
    result.stdout.fnmatch_lines(
        ["*test_both?pandas? PASSED*", "*test_default PASSED*", "*'pandas' and/or 'spark'*"]
    )
    result.assert_outcomes(passed=2, deselected=1, errors=1)


def test_run_pipeline_writes_under_tmp_only_and_returns_outputs_and_lineage(
    pytester, run_generated
):
    project = pytester.mkdir("project")
    (project / "data").mkdir()
    (project / "data" / "people.csv").write_text("id,age\n1,30\n2,17\n3,45\n")
    (project / "pipeline.yaml").write_text(
        """
pipeline: adults
engine: pandas
steps:
  - {layer: ingest, name: read, value: data/people.csv, outputs: {data: people}}
  - layer: transform
    name: adults
    type: sql
    value: SELECT id FROM p WHERE age >= 18
    inputs: {p: people}
    outputs: {data: adults}
  - {layer: store, name: save, value: out/adults.parquet, inputs: {data: adults}}
  - {layer: store, name: save_abs, value: /odibi-plugin-test-never/adults.csv, inputs: {data: adults}}
"""
    )
    pytester.makepyfile(
        """
import os
import pandas as pd
from odibi_core.testing import assert_frames_equal

def test_whole(run_pipeline, tmp_path):
    out = run_pipeline("project/pipeline.yaml")
    assert out.result.success
    assert_frames_equal(out.outputs["adults"], pd.DataFrame({"id": [1, 3]}))
    assert set(out.outputs) == {"people", "adults"}
    names = [s["step_name"] for s in out.lineage["steps"]]
    assert names[:2] == ["read", "adults"]  # the two stores run at once, in either order
    assert sorted(names[2:]) == ["save", "save_abs"]
    for name in ("save", "save_abs"):
        assert out.targets[name].startswith(str(tmp_path)), out.targets
    assert out.targets["save"].endswith(os.path.join("outputs", "out", "adults.parquet"))
    assert_frames_equal(pd.read_parquet(out.targets["save"]), pd.DataFrame({"id": [1, 3]}))
    assert sorted(os.listdir("project")) == ["data", "pipeline.yaml"]
    assert not os.path.exists("/odibi-plugin-test-never")

def test_given_inputs_replace_the_ingest(run_pipeline):
    out = run_pipeline("project/pipeline.yaml", inputs={"people": pd.DataFrame({"id": [7], "age": [70]})},
                       select="adults")
    assert list(out.outputs) == ["adults"]
    assert out.output["id"].tolist() == [7]

def test_a_step_by_name(run_step):
    out = run_step("adults", pipeline="project/pipeline.yaml",
                   inputs={"people": pd.DataFrame({"id": [1, 2], "age": [18, 9]})})
    assert out.output["id"].tolist() == [1]
"""
    )
    result = run_generated()
    result.assert_outcomes(passed=3)
    assert sorted(p.name for p in project.iterdir()) == ["data", "pipeline.yaml"]


def test_a_target_off_this_machine_is_refused(pytester, run_generated):
    pytester.makepyfile(
        STEP
        + """
def test_remote(run_pipeline):
    save = Step(layer="store", name="save", value="s3://bucket/doubled.parquet",
                inputs={"data": "doubled"})
    with pytest.raises(Exception, match="s3://bucket/doubled.parquet, outside this machine"):
        run_pipeline([DOUBLE, save], inputs={"raw": pd.DataFrame({"x": [1]})})

def test_steps_need_their_inputs(run_step):
    with pytest.raises(Exception, match="raw"):
        run_step(DOUBLE, inputs={})
"""
    )
    result = run_generated()
    result.assert_outcomes(passed=2)


@pytest.mark.spark
def test_a_step_on_both_engines(pytester, run_generated, spark):
    # The generated test takes the session this process already runs (the root conftest's).
    pytester.makepyfile(
        STEP
        + """
@pytest.mark.odibi_engines("pandas", "spark")
def test_parity(run_step, odibi_engine, odibi_spark):
    out = run_step(DOUBLE, inputs={"raw": pd.DataFrame({"x": [1, 2]})})
    assert type(out.output).__module__.startswith("pyspark" if odibi_engine == "spark" else "pandas")
    assert_frames_equal(out.output, pd.DataFrame({"y": [2, 4]}))
    assert odibi_spark.conf.get("spark.sql.session.timeZone") == "UTC"
"""
    )
    result = run_generated("-v")
    result.stdout.fnmatch_lines(["*test_parity?pandas? PASSED*", "*test_parity?spark? PASSED*"])
    result.assert_outcomes(passed=2)


@pytest.mark.spark
@pytest.mark.slow  # chispa sorts and collects both frames: several Spark jobs
def test_two_spark_frames_are_compared_by_chispa_showing_the_rows(pytester, run_generated, spark):
    pytester.makepyfile(
        STEP
        + """
def test_spark_diff(odibi_spark):
    actual = odibi_spark.createDataFrame([(1, "a"), (2, "b")], "id long, name string")
    expected = odibi_spark.createDataFrame([(2, "b"), (1, "a")], "id long, name string")
    assert_frames_equal(actual, expected)  # the row order is ignored
    assert_frames_equal(actual, odibi_spark.createDataFrame([(1, "a"), (2, "c")], "id long, name string"))
"""
    )
    result = run_generated("-v")
    result.stdout.fnmatch_lines(["*DataFramesNotEqualError*", "*name=b*name=c*"])
    result.assert_outcomes(failed=1)
