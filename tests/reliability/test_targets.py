"""Where writes go: a store never deletes what it was not asked to replace, a file read is
never overwritten in the same run, Delta reads are pinned, and no two writes clash.

Most cases run ``odibi validate`` or ``odibi run`` in-process on the pandas engine (no JVM)
and check the exit code, the message, that no traceback is shown, and that the folder
listing is the same before and after. The Spark-marked tests cover Delta pinning and
Spark's own refusal of a folder holding other files.
"""

from __future__ import annotations

import hashlib
import os
import textwrap
from pathlib import Path

import pytest

from odibi_core import Step
from odibi_core.cli import main
from odibi_core.core.errors import PipelineConfigError
from odibi_core.orchestrator import Orchestrator

CSV = "id,name\n1,a\n2,b\n3,c\n"


def listing(root: Path) -> dict[str, str]:
    """Every file under ``root`` with a digest of its content: what a run must not change."""
    return {
        path.relative_to(root).as_posix(): hashlib.sha1(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def pipeline(folder: Path, store: str, *, extra: str = "", parameters: str = "") -> Path:
    """A pipeline reading ``data/in.csv`` and storing it with the step ``store`` (YAML)."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "data" / "in.csv").write_text(CSV)
    text = textwrap.dedent(
        """\
        pipeline: targets
        engine: pandas
        {parameters}
        steps:
          - {{layer: ingest, name: read, value: data/in.csv, outputs: {{data: raw}}}}
          - {store}
        {extra}
        """
    ).format(store=store, extra=extra, parameters=parameters)
    path = folder / "pipeline.yaml"
    path.write_text(text)
    return path


def cli(capsys, *argv: str) -> tuple[int, str]:
    code = main([*argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def refused(capsys, folder: Path, *argv: str) -> str:
    """Run the CLI, expecting a configuration error that changed nothing under ``folder``."""
    before = listing(folder)
    code, output = cli(capsys, *argv)
    assert code == 2, output
    assert "Traceback" not in output
    assert listing(folder) == before
    return output


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A project folder that is also the current directory, with its own warehouse."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ODIBI_WAREHOUSE", str(tmp_path / "wh"))
    return tmp_path


# --------------------------------------------------------------------------- forbidden targets


@pytest.mark.parametrize("command", ["validate", "run"])
def test_storing_to_the_pipeline_folder_is_refused_before_anything_is_deleted(
    work, capsys, command
):
    project = work / "project"
    path = pipeline(
        project,
        "{layer: store, name: save, value: '.', params: {format: csv}, inputs: {data: raw}}",
    )
    args = [command, str(path)] + (["--no-state"] if command == "run" else [])
    output = refused(capsys, work, *args)
    assert "pipeline.yaml, line 6, step 2 'save'" in output
    assert f"refusing to write to '{project}': it is the pipeline's folder" in output
    assert "give it a folder of its own, e.g. value: ./save" in output
    assert (project / "pipeline.yaml").is_file() and (project / "data" / "in.csv").is_file()


# Targets outside the test's own folder ("/") are only ever validated, never run: should
# the check regress, a run would delete whatever the process may delete there.
@pytest.mark.parametrize(
    ("value", "fmt", "reason", "command"),
    [
        ("..", "csv", "it contains the pipeline's folder", "run"),
        ("{cwd}", "json", "it is the current directory", "run"),
        ("{cwd}/..", "parquet", "it contains the current directory", "run"),
        ("data", "csv", "it contains '{project}/data/in.csv', which step 'read' reads", "run"),
        ("{wh}", "delta", "it is the warehouse", "run"),
        ("/", "parquet", "it is a filesystem root", "validate"),
    ],
    ids=["parent_of_pipeline", "cwd", "parent_of_cwd", "parent_of_input", "warehouse", "root"],
)
def test_local_targets_that_hold_more_than_the_output_are_refused(
    work, capsys, value, fmt, reason, command
):
    project = work / "project"
    cwd = work / "cwd" / "inner"
    cwd.mkdir(parents=True)
    value = value.format(cwd=cwd, wh=work / "wh")
    path = pipeline(
        project,
        f"{{layer: store, name: save, value: '{value}', params: {{format: {fmt}}}, "
        "inputs: {data: raw}}",
    )
    os.chdir(cwd)
    extra = ["--no-state"] if command == "run" else []
    output = refused(capsys, work, command, str(path), *extra)
    assert "step 2 'save': refusing to write to" in output
    assert reason.format(project=project) in output


def test_the_default_warehouse_under_the_current_directory_is_refused(work, capsys, monkeypatch):
    monkeypatch.delenv("ODIBI_WAREHOUSE")
    path = pipeline(
        work / "project",
        "{layer: store, name: save, value: '../.odibi/warehouse', params: {format: delta}, "
        "inputs: {data: raw}}",
    )
    output = refused(capsys, work, "validate", str(path))
    assert f"refusing to write to '{work}/.odibi/warehouse': it is the warehouse" in output


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("/Volumes", "Unity Catalog Volume root"),
        ("/Volumes/main", "Unity Catalog Volume root"),
        ("/Volumes/main/sales", "Unity Catalog Volume root"),
        ("/Volumes/main/sales/landing", "Unity Catalog Volume root"),
        ("dbfs:/Volumes/main/sales/landing/", "Unity Catalog Volume root"),
        ("/Workspace", "Workspace root"),
        ("/Workspace/Users", "Workspace root"),
        ("dbfs:/", "DBFS root"),
        ("/dbfs", "DBFS root"),
        ("s3://bucket", "root of the bucket 'bucket'"),
        ("s3://bucket/", "root of the bucket 'bucket'"),
        ("gs://bucket", "root of the bucket 'bucket'"),
        (
            "abfss://container@account.dfs.core.windows.net/",
            "root of the container 'container@account.dfs.core.windows.net'",
        ),
    ],
)
@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_cloud_and_databricks_roots_are_refused(work, capsys, value, reason, fmt):
    path = pipeline(
        work,
        f"{{layer: store, name: save, value: '{value}', params: {{format: {fmt}}}, "
        "inputs: {data: raw}}",
    )
    output = refused(capsys, work, "validate", str(path))
    assert "step 2 'save': refusing to write to" in output
    assert reason in output


@pytest.mark.parametrize(
    "value",
    [
        "/Volumes/main/sales/landing/orders",
        "/Workspace/Users/me@example.com/out",
        "dbfs:/tmp/out",
        "s3://bucket/out",
        "abfss://container@account.dfs.core.windows.net/out",
    ],
)
def test_folders_inside_those_roots_are_fine(work, capsys, value):
    # engine: spark, which reaches all of them (the pandas engine reaches no URI but file:).
    path = pipeline(
        work,
        f"{{layer: store, name: save, engine: spark, value: '{value}', "
        "params: {format: parquet}, inputs: {data: raw}}",
    )
    code, output = cli(capsys, "validate", str(path))
    assert code == 0, output


def test_a_parameter_naming_the_pipeline_folder_is_refused_at_run(work, capsys):
    path = pipeline(
        work / "project",
        "{layer: store, name: save, value: '${params.out}', params: {format: csv}, "
        "inputs: {data: raw}}",
        parameters="parameters: {out: out}",
    )
    output = refused(capsys, work, "run", str(path), "--no-state", "--param", "out=.")
    assert "step 2 'save': refusing to write to" in output
    assert "it is the pipeline's folder" in output


def test_python_steps_resolve_against_the_current_directory(work):
    (work / "in.csv").write_text(CSV)
    steps = [
        Step(layer="ingest", name="read", value="in.csv", outputs={"data": "raw"}),
        Step(
            layer="store", name="save", value=".", params={"format": "csv"}, inputs={"data": "raw"}
        ),
    ]
    before = listing(work)
    with pytest.raises(PipelineConfigError) as caught:
        Orchestrator(steps=steps, engine_type="pandas")
    assert (
        f"<steps>, step 2 'save': refusing to write to '{work}': it is the current directory"
        in str(caught.value)
    )
    assert listing(work) == before


# --------------------------------------------------------------------------- the write-time check


def test_a_folder_holding_other_files_is_refused_when_written(work, capsys):
    out = work / "out"
    out.mkdir()
    (out / "part-00000-old.csv").write_text("id\n9\n")
    (out / "notes.txt").write_text("mine")
    (out / "drafts").mkdir()
    (out / "drafts" / "a.csv").write_text("x\n")
    path = pipeline(
        work,
        "{layer: store, name: save, value: out, params: {format: csv}, inputs: {data: raw}}",
    )
    before = listing(work)
    code, output = cli(capsys, "run", str(path), "--no-state")
    assert code == 1
    assert "Traceback" not in output
    assert f"refusing to overwrite '{out}' with csv files" in output
    assert "(drafts/, notes.txt)" in output
    assert "nothing was deleted" in output
    assert listing(work) == before


@pytest.mark.parametrize(
    ("entries", "unexpected"),
    [
        ({"part-00000-a.snappy.parquet": "x"}, "part-00000-a.snappy.parquet"),
        ({"_delta_log/00000000000000000000.json": "{}"}, "_delta_log/"),
        ({"k=1/notes.txt": "mine"}, "k=1/notes.txt"),
    ],
    ids=["other_format", "delta_table", "file_in_partition"],
)
def test_a_folder_holding_another_format_or_a_table_is_refused(work, capsys, entries, unexpected):
    out = work / "out"
    for name, text in entries.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    path = pipeline(
        work,
        "{layer: store, name: save, value: out, params: {format: csv}, inputs: {data: raw}}",
    )
    before = listing(work)
    code, output = cli(capsys, "run", str(path), "--no-state")
    assert code == 1 and f"({unexpected})" in output
    assert listing(work) == before


def test_an_existing_file_of_another_kind_is_refused(work, capsys):
    (work / "keep.yaml").write_text("precious: true\n")
    path = pipeline(
        work,
        "{layer: store, name: save, value: keep.yaml, params: {format: json}, inputs: {data: raw}}",
    )
    before = listing(work)
    code, output = cli(capsys, "run", str(path), "--no-state")
    assert code == 1
    assert f"refusing to overwrite '{work / 'keep.yaml'}' with json files" in output
    assert listing(work) == before


def test_an_earlier_write_with_spark_side_files_is_replaced(work, capsys):
    out = work / "out"
    for name in (
        "part-00000-old-c000.csv",
        ".part-00000-old-c000.csv.crc",
        "_SUCCESS",
        "._SUCCESS.crc",
        "_started_123",
        "_committed_123",
        "k=1/part-00001-old.csv.gz",
        "_temporary/0/task/part-x",
    ):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text("old")
    path = pipeline(
        work,
        "{layer: store, name: save, value: out, params: {format: csv}, inputs: {data: raw}}",
    )
    code, output = cli(capsys, "run", str(path), "--no-state")
    assert code == 0, output
    files = sorted(p.name for p in out.rglob("*") if p.is_file())
    assert len(files) == 2 and files[0] == "_SUCCESS" and files[1].startswith("part-00000-")
    assert (out / files[1]).read_text() == CSV
    code, output = cli(capsys, "run", str(path), "--no-state")
    assert code == 0, output  # its own output is replaced again


# --------------------------------------------------------------------------- read and overwritten


@pytest.mark.parametrize(
    "write",
    [
        "value: data/in.csv, params: {format: csv}",
        "value: ./data/../data/in.csv, params: {format: delta}",
        "value: data/in.csv, params: {format: parquet}",
    ],
    ids=["csv_over_csv", "delta_over_csv", "parquet_over_csv"],
)
@pytest.mark.parametrize("engine", ["pandas", "spark"])
def test_a_file_input_overwritten_in_the_same_run_is_refused(work, capsys, write, engine):
    (work / "data").mkdir()
    (work / "data" / "in.csv").write_text(CSV)
    (work / "p.yaml").write_text(
        textwrap.dedent(
            f"""\
            pipeline: same_place
            engine: {engine}
            steps:
              - {{layer: ingest, name: read, value: data/in.csv, outputs: {{data: raw}}}}
              - {{layer: store, name: save, {write}, inputs: {{data: raw}}}}
            """
        )
    )
    output = refused(capsys, work, "run", str(work / "p.yaml"), "--no-state")
    assert (
        f"p.yaml, line 5, step 2 'save': writes '{work}/data/in.csv', which step 'read'" in output
    )
    assert "reads are pinned to the version read at ingest" in output


def test_a_delta_input_may_be_overwritten_because_its_read_is_pinned(work, capsys):
    (work / "p.yaml").write_text(
        textwrap.dedent(
            """\
            pipeline: same_table
            steps:
              - {layer: ingest, name: read, value: Sales.Orders, params: {format: table}, outputs: {data: raw}}
              - {layer: store, name: save, value: spark_catalog.sales.orders, params: {format: table}, inputs: {data: raw}}
            """
        )
    )
    code, output = cli(capsys, "validate", str(work / "p.yaml"))
    assert code == 0, output


# --------------------------------------------------------------------------- written twice


def _two_writes(work: Path, first: str, second: str, *, ordered: bool = False) -> Path:
    second_input = "done" if ordered else "raw"
    (work / "data").mkdir(exist_ok=True)
    (work / "data" / "in.csv").write_text(CSV)
    (work / "p.yaml").write_text(
        textwrap.dedent(
            f"""\
            pipeline: twice
            steps:
              - {{layer: ingest, name: read, value: data/in.csv, outputs: {{data: raw}}}}
              - {{layer: store, name: first, {first}, inputs: {{data: raw}}, outputs: {{data: done}}}}
              - {{layer: store, name: second, {second}, inputs: {{data: {second_input}}}}}
            """
        )
    )
    return work / "p.yaml"


@pytest.mark.parametrize(
    ("first", "second", "ordered", "message"),
    [
        (
            "value: out, params: {format: parquet}",
            "value: ./out/, params: {format: parquet}",
            True,
            "and step 'first' overwrites it",
        ),
        (
            "value: Sales.T, params: {format: table, mode: append}",
            "value: t2, params: {format: table}",
            False,
            None,
        ),
        (
            "value: sales.t, params: {format: table, mode: append}",
            "value: SPARK_CATALOG.Sales.T, params: {format: table, mode: append}",
            False,
            "no dependency orders the two",
        ),
        (
            "value: sales.t, params: {format: table, mode: merge, merge_keys: [id]}",
            "value: sales.t, params: {format: table, mode: append}",
            False,
            "no dependency orders the two",
        ),
        (
            "value: sales.t, params: {format: table, mode: append}",
            "value: spark_catalog.sales.t, params: {format: table, mode: overwrite}",
            True,
            "and step 'second' overwrites it",
        ),
        (
            "value: sales.t, params: {format: table, mode: append}",
            "value: spark_catalog.sales.t, params: {format: table, mode: append}",
            True,
            None,
        ),
        (
            "value: sales.t, params: {format: table, mode: merge, merge_keys: [id]}",
            "value: sales.t, params: {format: table, mode: merge, merge_keys: [id]}",
            True,
            None,
        ),
        (
            "value: out, params: {format: delta}",
            "value: out/part, params: {format: delta, mode: append}",
            True,
            "writes '{work}/out/part', inside '{work}/out', which step 'first'",
        ),
    ],
    ids=[
        "two_overwrites",
        "different_tables",
        "unordered_appends",
        "unordered_merge_and_append",
        "append_then_overwrite",
        "ordered_appends",
        "ordered_merges",
        "nested",
    ],
)
def test_two_writes_of_one_target(work, capsys, first, second, ordered, message):
    path = _two_writes(work, first, second, ordered=ordered)
    if message is None:
        code, output = cli(capsys, "validate", str(path))
        assert code == 0, output
        return
    output = refused(capsys, work, "validate", str(path))
    assert "p.yaml, line 5, step 3 'second': writes" in output
    assert message.format(work=work) in output


# --------------------------------------------------------------------------- Spark


@pytest.mark.spark
def test_spark_refuses_a_folder_holding_other_files(spark, tmp_path):
    from odibi_core.engine.base import WriteSpec
    from odibi_core.engine.spark_engine import SparkEngineContext

    out = tmp_path / "out"
    out.mkdir()
    (out / "part-00000-old.snappy.parquet").write_text("old")
    (out / "inputs.csv").write_text(CSV)
    before = listing(tmp_path)
    engine = SparkEngineContext(lambda: spark)
    frame = spark.createDataFrame([(1,)], "id int")
    with pytest.raises(PipelineConfigError, match=r"refusing to overwrite .* \(inputs\.csv\)"):
        engine.write(frame, WriteSpec(target=str(out), format="parquet"), step="save")
    assert listing(tmp_path) == before
    engine.write(frame, WriteSpec(target=str(tmp_path / "fresh"), format="parquet"), step="save")
    engine.write(frame, WriteSpec(target=str(tmp_path / "fresh"), format="parquet"), step="save")
    assert spark.read.parquet(str(tmp_path / "fresh")).count() == 1


@pytest.mark.spark
def test_a_lazy_delta_read_overwritten_later_still_sees_the_version_it_read(
    spark, tmp_path, capsys
):
    from odibi_core.engine.base import ReadSpec, WriteSpec
    from odibi_core.engine.spark_engine import SparkEngineContext

    table = tmp_path / "orders"
    spark.range(3).toDF("id").write.format("delta").save(str(table))
    engine = SparkEngineContext(lambda: spark)
    lazy = engine.read(ReadSpec(source=str(table), format="delta"), step="read")
    engine.write(spark.range(10).toDF("id"), WriteSpec(target=str(table), format="delta"), step="s")
    assert lazy.count() == 3
    assert engine.read(ReadSpec(source=str(table), format="delta"), step="read").count() == 10

    # A whole run: read the table, double it, overwrite it, then count what was read.
    (tmp_path / "p.yaml").write_text(
        textwrap.dedent(
            f"""\
            pipeline: pinned
            engine: spark
            steps:
              - {{layer: ingest, name: read, value: {table}, params: {{format: delta}}, outputs: {{data: raw}}}}
              - {{layer: transform, name: double, value: "SELECT * FROM raw UNION ALL SELECT * FROM raw", inputs: {{raw: raw}}, outputs: {{data: doubled}}}}
              - {{layer: store, name: save, value: {table}, params: {{format: delta}}, inputs: {{data: doubled}}, outputs: {{data: saved}}}}
              - {{layer: transform, name: count_read, value: "SELECT count(*) AS n FROM raw", inputs: {{raw: raw, saved: saved}}, outputs: {{data: counted}}}}
              - {{layer: store, name: keep_count, value: {tmp_path / "counts"}, params: {{format: delta}}, inputs: {{data: counted}}}}
            """
        )
    )
    code, output = cli(capsys, "run", str(tmp_path / "p.yaml"), "--no-state", "--max-workers", "1")
    assert code == 0, output
    assert spark.read.format("delta").load(str(table)).count() == 20
    assert spark.read.format("delta").load(str(tmp_path / "counts")).first()["n"] == 10
