"""Reads that cannot work fail at the ingest step, naming the step and the file, on both engines.

A remote URI on the pandas engine, an empty folder, an empty (0-byte) csv and a ragged csv
(a row with more or fewer fields than the header) are errors; nothing downstream runs and
nothing is written.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from odibi_core import Step
from odibi_core.core import tables
from odibi_core.core.errors import EngineError, PipelineConfigError
from odibi_core.engine.base import ReadSpec
from odibi_core.engine.registry import Engines
from odibi_core.execution.engine_policy import choose_engine
from odibi_core.orchestrator import Orchestrator


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _bad_sources(folder: Path) -> dict[str, tuple[Path, str]]:
    """case -> (path, what the message must say besides the step and the path)."""
    empty_folder = folder / "empty_folder"
    empty_folder.mkdir()
    only_marker = folder / "only_marker"
    _write(only_marker / "_SUCCESS", "")
    return {
        "empty_folder": (empty_folder, "holds no csv data files"),
        "folder_with_only_a_marker": (only_marker, "holds no csv data files"),
        "empty_file": (_write(folder / "empty.csv", ""), "the file is empty (0 bytes)"),
        "row_too_long": (
            _write(folder / "long.csv", "id,name\n1,a\n2,b,extra\n3,c\n"),
            "row 3 has 3 fields where the header has 2",
        ),
        "row_too_short": (
            _write(folder / "short.csv", "id,name,city\n1,a,x\n2,b\n"),
            "row 3 has 2 fields where the header has 3",
        ),
    }


CASES = [
    "empty_folder",
    "folder_with_only_a_marker",
    "empty_file",
    "row_too_long",
    "row_too_short",
]


def _pipeline(source: str, target: Path, *, fmt: str = "csv") -> list[Step]:
    return [
        Step(
            layer="ingest",
            name="read_orders",
            value=source,
            params={"format": fmt},
            outputs={"data": "orders"},
        ),
        Step(layer="store", name="save", value=str(target), inputs={"data": "orders"}),
    ]


@pytest.mark.parametrize("case", CASES)
def test_a_bad_csv_source_fails_its_ingest_step_on_pandas(tmp_path, case):
    source, expected = _bad_sources(tmp_path)[case]
    target = tmp_path / "out.parquet"

    result = Orchestrator(steps=_pipeline(str(source), target), engine_type="pandas").execute()

    assert result.success is False
    assert result.failed_nodes == ["read_orders"]
    assert result.skipped_nodes == ["save"]
    message = result.errors["read_orders"]
    assert "step 'read_orders'" in message
    assert str(source) in message
    assert expected in message
    assert result.attempts.get("read_orders", 1) == 1  # a broken file is not retried
    assert not target.exists()


def test_a_remote_uri_on_the_pandas_engine_is_an_error_that_suggests_spark(tmp_path):
    target = tmp_path / "out.parquet"
    result = Orchestrator(
        steps=_pipeline("s3://bucket/orders/", target), engine_type="pandas"
    ).execute()

    assert result.failed_nodes == ["read_orders"]
    message = result.errors["read_orders"]
    assert "step 'read_orders'" in message
    assert "the pandas engine cannot read csv 's3://bucket/orders/'" in message
    assert "set engine: spark" in message
    assert not target.exists()


@pytest.mark.parametrize("uri", ["s3://bucket/orders/", "abfss://c@account.dfs.core.windows.net/x"])
def test_auto_picks_spark_for_a_remote_uri(uri):
    step = _pipeline(uri, Path("unused"))[0]
    choice = choose_engine(step, "auto", base_dir=None, upstream_rows={})
    assert choice.name == "spark"
    assert "is remote" in choice.reason


def test_a_glob_and_a_folder_with_some_empty_files_still_read(tmp_path):
    folder = tmp_path / "parts"
    _write(folder / "part-0.csv", "id,name\n1,a\n")
    _write(folder / "part-1.csv", "")
    _write(folder / "part-2.csv", "id,name\n2,b\n")
    engine = Engines().get("pandas")
    assert engine.read(ReadSpec(str(folder), "csv"), step="read")["id"].tolist() == [1, 2]
    glob = ReadSpec(str(folder / "part-*.csv"), "csv")
    assert sorted(engine.read(glob, step="read")["id"]) == [1, 2]


def test_a_spark_csv_mode_other_than_failfast_is_refused_by_the_pandas_engine(tmp_path):
    source = _write(tmp_path / "long.csv", "id,name\n1,a\n2,b,extra\n")
    engine = Engines().get("pandas")
    with pytest.raises(PipelineConfigError, match="step 'read'.*engine: spark"):
        engine.read(ReadSpec(str(source), "csv", {"mode": "PERMISSIVE"}), step="read")
    with pytest.raises(EngineError, match="row 3 has 3 fields"):
        engine.read(ReadSpec(str(source), "csv", {"mode": "failfast"}), step="read")


@pytest.mark.spark
def test_the_same_bad_sources_are_the_same_errors_on_spark(spark, tmp_path):
    engines = Engines(spark=spark, warehouse=tmp_path / "wh")
    engine = engines.get("spark")
    try:
        for case, (source, expected) in _bad_sources(tmp_path).items():
            with pytest.raises(EngineError) as caught:
                engine.read(ReadSpec(str(source), "csv"), step="read_orders")
            message = str(caught.value)
            assert "step 'read_orders'" in message, case
            assert str(source) in message and expected in message, case
            assert caught.value.retryable is False, case
    finally:
        engines.close()


@pytest.mark.spark
def test_where_the_file_is_not_checked_first_spark_still_refuses_a_ragged_row(
    spark, tmp_path, monkeypatch
):
    """On Databricks the framework does not read the file first; FAILFAST refuses the row."""
    monkeypatch.setattr(tables, "on_databricks", lambda: True)
    source = _write(tmp_path / "long.csv", "id,name\n1,a\n2,b,extra\n")
    engines = Engines(spark=spark, warehouse=tmp_path / "wh")
    engine = engines.get("spark")
    try:
        frame = engine.read(ReadSpec(str(source), "csv"), step="read_orders")
        with pytest.raises(EngineError, match="MALFORMED") as caught:
            # Spark reads lazily: the row fails the first action that parses it.
            engine.to_arrow(frame)
        assert "long.csv" in str(caught.value)
    finally:
        engines.close()
