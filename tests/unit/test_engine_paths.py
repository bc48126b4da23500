"""Paths each engine accepts: URIs only Spark reaches are refused for pandas steps at load,
the pandas engine reads local paths, ``file:`` URIs and ``/Volumes/...`` paths as written,
and ``auto`` sends a step whose source it cannot size here to Spark."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from odibi_core import Step
from odibi_core.cli import main
from odibi_core.core.config import load_pipeline
from odibi_core.core.errors import EngineError, PipelineConfigError
from odibi_core.core.files import write_atomically
from odibi_core.engine.base import ReadSpec, WriteSpec
from odibi_core.engine.pandas_engine import PandasEngineContext
from odibi_core.execution.engine_policy import choose_engine
from odibi_core.orchestrator import Orchestrator

SPARK_ONLY = "which only the Spark engine reaches; set engine: spark on this step"
AUTO_READS = " (engine: auto picks spark for it)"  # auto sizes what a step reads
VOLUME_CSV = "/Volumes/main/raw/files/../landing/orders.csv"


def write_pipeline(folder: Path, *steps: str, head: str = "engine: pandas") -> Path:
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "data" / "in.csv").write_text("id,name\n1,a\n2,b\n")
    text = f"pipeline: paths\n{head}\nsteps:\n" + "".join(f"  - {step}\n" for step in steps)
    path = folder / "pipeline.yaml"
    path.write_text(text)
    return path


READ_LOCAL = "{layer: ingest, name: read, value: data/in.csv, outputs: {data: raw}}"


def save(value: str, extra: str = "") -> str:
    return f"{{layer: store, name: save, value: '{value}', {extra}inputs: {{data: raw}}}}"


# --------------------------------------------------------------------------- validation


def test_a_pandas_step_reading_a_cloud_uri_is_refused_at_load(tmp_path):
    path = write_pipeline(
        tmp_path,
        "{layer: ingest, name: read_orders, value: 's3://bucket/orders.csv', outputs: {data: raw}}",
    )
    with pytest.raises(PipelineConfigError) as refused:
        load_pipeline(path)
    assert refused.value.problems == [
        f"{path}, line 4, step 1 'read_orders': the pandas engine cannot read csv "
        f"'s3://bucket/orders.csv': it is a cloud URI, {SPARK_ONLY}{AUTO_READS}"
    ]


def test_a_step_that_sets_engine_pandas_and_writes_to_dbfs_is_refused(tmp_path):
    path = write_pipeline(
        tmp_path,
        READ_LOCAL,
        save("dbfs:/mnt/out/orders", "engine: pandas, params: {format: parquet}, "),
        head="engine: spark",
    )
    with pytest.raises(PipelineConfigError) as refused:
        load_pipeline(path)
    assert refused.value.problems == [
        f"{path}, line 5, step 2 'save': the pandas engine cannot write parquet "
        f"'dbfs:/mnt/out/orders': it is a DBFS URI, {SPARK_ONLY}"
    ]


def test_odibi_validate_names_the_step_the_uri_and_the_fix(tmp_path, capsys):
    path = write_pipeline(
        tmp_path,
        "{layer: ingest, name: read, value: 'abfss://raw@acct.dfs.core.windows.net/o.json', "
        "outputs: {data: raw}}",
    )
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert (
        f"{path}, line 4, step 1 'read': the pandas engine cannot read json "
        "'abfss://raw@acct.dfs.core.windows.net/o.json': it is a cloud URI" in err
    )
    assert "set engine: spark on this step" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("head", "step"),
    [
        # Spark reaches them: the step's own engine, the default, or auto.
        ("engine: spark", "{layer: ingest, name: r, value: 's3://b/o.csv', outputs: {data: raw}}"),
        ("engine: auto", "{layer: ingest, name: r, value: 'gs://b/o.csv', outputs: {data: raw}}"),
        (
            "engine: pandas",
            "{layer: ingest, name: r, engine: spark, value: 's3a://b/o.csv', outputs: {data: raw}}",
        ),
        # The pandas engine hands Delta to Spark anyway.
        (
            "engine: pandas",
            "{layer: ingest, name: r, value: 's3://b/t', params: {format: delta}, "
            "outputs: {data: raw}}",
        ),
        # Python reaches them: a Volume (FUSE on Databricks) and a file: URI.
        (
            "engine: pandas",
            f"{{layer: ingest, name: r, value: '{VOLUME_CSV}', outputs: {{data: raw}}}}",
        ),
        (
            "engine: pandas",
            "{layer: ingest, name: r, value: 'file:///tmp/o.csv', outputs: {data: raw}}",
        ),
        # Known only once the parameter is given: the engine says so when it runs.
        (
            "engine: pandas\nparameters: {src: 's3://b/o.csv'}",
            "{layer: ingest, name: r, value: '${params.src}', params: {format: csv}, "
            "outputs: {data: raw}}",
        ),
    ],
)
def test_locations_the_chosen_engine_reaches_are_accepted(tmp_path, head, step):
    assert len(load_pipeline(write_pipeline(tmp_path, step, head=head)).steps) == 1


def test_a_run_with_another_default_engine_validates_for_that_engine(tmp_path):
    s3_read = "{layer: ingest, name: read, value: 's3://b/o.csv', outputs: {data: raw}}"
    stated = write_pipeline(tmp_path / "stated", s3_read)
    unstated = write_pipeline(tmp_path / "unstated", s3_read, head="description: no engine key")

    assert load_pipeline(stated, engine="spark").engine == "spark"  # odibi run --engine spark
    with pytest.raises(PipelineConfigError, match="the pandas engine cannot read csv"):
        load_pipeline(stated)
    # No default named in the file: pandas unless the run says otherwise, so the run decides.
    assert load_pipeline(unstated).engine == "pandas"
    with pytest.raises(PipelineConfigError, match="the pandas engine cannot read csv"):
        load_pipeline(unstated, engine="pandas")


def test_python_steps_that_set_engine_pandas_are_refused_when_the_run_is_built():
    steps = [
        Step(
            layer="ingest",
            name="read",
            engine="pandas",
            value="gs://bucket/orders.parquet",
            outputs={"data": "raw"},
        )
    ]
    with pytest.raises(PipelineConfigError) as refused:
        Orchestrator(steps=steps)
    assert refused.value.problems == [
        "<steps>, step 1 'read': the pandas engine cannot read parquet "
        f"'gs://bucket/orders.parquet': it is a cloud URI, {SPARK_ONLY}{AUTO_READS}"
    ]


# --------------------------------------------------------------------------- the pandas engine


def test_a_plain_path_and_a_file_uri_read_the_same_rows(tmp_path):
    engine = PandasEngineContext(duckdb_threads=1)
    source = tmp_path / "in dir" / "orders.csv"
    source.parent.mkdir()
    source.write_text("id,name\n1,a\n2,b\n")

    plain = engine.read(ReadSpec(str(source), "csv"), step="read")
    uri = engine.read(ReadSpec(f"file://{source}", "csv"), step="read")  # as Spark reads it

    assert plain.to_dict("list") == {"id": [1, 2], "name": ["a", "b"]}
    pd.testing.assert_frame_equal(plain, uri)


def test_the_pandas_engine_writes_to_a_file_uri_on_this_machine(tmp_path):
    engine = PandasEngineContext(duckdb_threads=1)
    frame = pd.DataFrame({"id": [1, 2]})
    target = tmp_path / "out"

    written = engine.write(frame, WriteSpec(f"file://{target}", "parquet"), step="save")

    assert written.rows == 2
    back = engine.adopt(engine.read(ReadSpec(str(target), "parquet"), step="read"))
    assert back["id"].tolist() == [1, 2]


def test_a_volumes_path_reaches_the_pandas_reader_exactly_as_written(tmp_path, monkeypatch):
    """No /Volumes mount exists here: the engine's own not-found error names the path as given,
    neither resolved (``..`` kept) nor turned into a URI; the ingest node leaves it to it."""
    monkeypatch.chdir(tmp_path)
    steps = [
        Step(layer="ingest", name="read_volume", value=VOLUME_CSV, outputs={"data": "raw"}),
        Step(layer="store", name="save", value="out.csv", inputs={"data": "raw"}),
    ]
    result = Orchestrator(steps=steps, engine_type="pandas").execute()

    assert result.failed_nodes == ["read_volume"]
    assert result.errors["read_volume"].endswith(
        f"step 'read_volume': cannot read csv '{VOLUME_CSV}': the path does not exist; "
        "check the step's value"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_uri_only_spark_reaches_is_the_steps_error_on_write_and_nothing_is_created(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    engine = PandasEngineContext(duckdb_threads=1)
    frame = pd.DataFrame({"id": [1]})
    with pytest.raises(EngineError) as refused:
        engine.write(frame, WriteSpec("s3://bucket/out", "parquet"), step="save")
    assert str(refused.value) == (
        "step 'save': the pandas engine cannot write parquet 's3://bucket/out': it is a "
        f"cloud URI, {SPARK_ONLY}"
    )
    assert list(tmp_path.iterdir()) == []  # no local 's3:' folder


# --------------------------------------------------------------------------- auto


def _ingest(value: str) -> Step:
    return Step(
        layer="ingest", name="read", value=value, params={"format": "csv"}, outputs={"data": "r"}
    )


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (
            "dbfs:/mnt/raw/orders.csv",
            "auto: 'dbfs:/mnt/raw/orders.csv' is remote (a DBFS URI) and its size is not "
            "known locally, so spark",
        ),
        (
            "s3://bucket/orders.csv",
            "auto: 's3://bucket/orders.csv' is remote (a cloud URI) and its size is not "
            "known locally, so spark",
        ),
        (
            VOLUME_CSV,
            f"auto: '{VOLUME_CSV}' is a Volumes path not mounted on this machine, so spark",
        ),
    ],
)
def test_auto_sends_a_source_it_cannot_size_here_to_spark(value, reason):
    choice = choose_engine(_ingest(value), "auto", base_dir=None, upstream_rows={})
    assert (choice.name, choice.reason) == ("spark", reason)


def test_auto_still_sizes_a_file_uri_on_this_machine(tmp_path):
    source = tmp_path / "orders.csv"
    source.write_text("id\n1\n2\n3\n")
    choice = choose_engine(_ingest(f"file://{source}"), "auto", base_dir=None, upstream_rows={})
    assert choice.name == "pandas"
    assert choice.estimated_rows == 3


# --------------------------------------------------------------------------- run files


def test_lineage_and_reports_go_to_a_file_uri_but_never_to_a_mangled_cloud_uri(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    written = write_atomically(f"file://{tmp_path}/run/lineage.json", "{}\n")
    assert written == tmp_path / "run" / "lineage.json"
    assert written.read_text() == "{}\n"

    with pytest.raises(PipelineConfigError) as refused:
        write_atomically("s3://bucket/run/report.html", "<html></html>")
    assert str(refused.value) == (
        "cannot write 's3://bucket/run/report.html': it is a cloud URI, and lineage, metrics "
        "and reports are written by Python, not Spark; give a local path, a /Volumes/... "
        "path or a file: URI"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no local 's3:' folder
