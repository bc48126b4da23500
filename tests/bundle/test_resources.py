"""The loader databricks.yml's python: section calls: one job per pipeline file."""

import shutil
from pathlib import Path

import pytest
from databricks.bundles.core import Bundle, Severity

from odibi_core.bundle.resources import (
    bundle_jobs,
    bundle_root,
    job_key,
    load_resources,
    pipeline_files,
)
from odibi_core.core.errors import PipelineConfigError
from tests.bundle.conftest import EXAMPLE

SMALL = """\
pipeline: {name}
engine: pandas
steps:
  - {{layer: ingest, name: read, value: data/in.csv, outputs: {{data: raw}}}}
  - {{layer: store, name: save, value: out/{name}.parquet, inputs: {{data: raw}}}}
"""


@pytest.fixture
def bundle(tmp_path, monkeypatch):
    """A bundle root holding the example pipeline, a second one in JSON, and files in
    pipelines/ that are not pipelines. The loader runs in the bundle root, as the CLI
    runs it."""
    (tmp_path / "databricks.yml").write_text("bundle: {name: b}\n")
    folder = tmp_path / "pipelines"
    (folder / "data").mkdir(parents=True)
    shutil.copy(EXAMPLE, folder / "customer_pipeline.yaml")
    (folder / "orders.json").write_text(
        '{"pipeline": "orders-daily", "engine": "pandas", "steps": ['
        '{"layer": "ingest", "name": "read", "value": "data/in.csv", "outputs": {"data": "raw"}},'
        '{"layer": "store", "name": "save", "value": "out/o.parquet", "inputs": {"data": "raw"}}'
        "]}"
    )
    (folder / "generate_data.py").write_text("print('data')\n")
    (folder / "lookup.yml").write_text("countries: [NL, BE]\n")  # YAML, but no pipeline
    (folder / "data" / "products.json").write_text('[{"product_id": 1}]')
    (folder / "data" / "nested.yaml").write_text(SMALL.format(name="nested"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_pipeline_files_are_the_pipelines_directly_under_pipelines(bundle):
    assert [p.name for p in pipeline_files(bundle)] == ["customer_pipeline.yaml", "orders.json"]
    assert pipeline_files(bundle / "nowhere") == []


def test_the_loader_makes_one_job_per_pipeline_keyed_by_its_name(bundle):
    resources = load_resources(Bundle(target="dev", variables={"catalog": "main"}))
    assert list(resources.jobs) == ["customer_pipeline", "orders_daily"]
    assert resources.jobs["orders_daily"].name == "orders-daily"
    assert resources.diagnostics.items == ()
    params = resources.jobs["orders_daily"].tasks[0].python_wheel_task.parameters
    assert params[1] == "${workspace.file_path}/pipelines/orders.json"


def test_the_jobs_location_is_databricks_yml_so_the_wheel_resolves_from_the_root(bundle):
    resources = load_resources()
    location = resources._locations[("resources", "jobs", "customer_pipeline")]
    assert (location.file, location.line) == ("databricks.yml", 1)
    # The CLI resolves a relative library path from the directory of its location (or
    # of its virtual file <root>/__generated_by_python__.yml): both are the bundle root.
    whl = resources.jobs["customer_pipeline"].tasks[0].libraries[0].whl
    assert (
        (bundle / Path(location.file).parent / whl).as_posix().endswith(f"{bundle.name}/dist/*.whl")
    )


def test_a_broken_pipeline_is_an_error_naming_its_file_and_the_others_still_load(bundle):
    (bundle / "pipelines" / "broken.yaml").write_text("pipeline: broken\nsteps: []\n")
    (bundle / "pipelines" / "garbled.yaml").write_text("pipeline: [unclosed\n")
    resources = load_resources()
    assert list(resources.jobs) == ["customer_pipeline", "orders_daily"]
    errors = [d for d in resources.diagnostics.items if d.severity == Severity.ERROR]
    assert [d.location.file for d in errors] == ["pipelines/broken.yaml", "pipelines/garbled.yaml"]
    assert "pipeline pipelines/broken.yaml is not a job" in errors[0].summary
    assert "'steps' must be a non-empty list" in errors[0].summary
    assert "malformed YAML" in errors[1].summary


def test_a_pipeline_written_to_resources_is_left_to_its_job_file(bundle):
    (bundle / "resources").mkdir()
    (bundle / "resources" / "orders_daily.job.yml").write_text("resources: {jobs: {}}\n")
    resources = load_resources()
    assert list(resources.jobs) == ["customer_pipeline"]
    (warning,) = resources.diagnostics.items
    assert warning.severity == Severity.WARNING
    assert "resources/orders_daily.job.yml (written by odibi bundle write)" in warning.summary


def test_two_pipelines_with_one_job_key_are_an_error_naming_both(bundle):
    (bundle / "pipelines" / "again.yaml").write_text(SMALL.format(name="orders_daily"))
    with pytest.raises(PipelineConfigError) as caught:
        bundle_jobs(bundle)
    (problem,) = caught.value.problems
    assert "orders.json" in problem and "again.yaml" in problem
    assert "job key 'orders_daily'" in problem


def test_a_pipeline_outside_the_bundle_root_is_refused(bundle, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere") / "p.yaml"
    outside.write_text(SMALL.format(name="p"))
    with pytest.raises(PipelineConfigError, match="outside the bundle root"):
        bundle_jobs(bundle, [outside])


def test_the_bundle_root_is_the_nearest_folder_with_databricks_yml(bundle, tmp_path_factory):
    assert bundle_root(bundle / "pipelines" / "data") == bundle.resolve()
    alone = tmp_path_factory.mktemp("no_bundle")
    assert bundle_root(alone) == alone.resolve()


@pytest.mark.parametrize(
    ("name", "key"),
    [("customer_pipeline", "customer_pipeline"), ("orders-daily v2", "orders_daily_v2")],
)
def test_job_keys_are_letters_digits_and_underscores(name, key):
    assert job_key(name) == key
