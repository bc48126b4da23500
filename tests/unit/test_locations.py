"""Data locations: where a step's ``value`` points, its format, and a Delta table's live files."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from odibi_core.core.errors import PipelineConfigError
from odibi_core.core.locations import human_bytes, live_delta_files, locate
from tests.unit.test_engine_choice import ingest, write_delta_log


def test_format_inference_and_errors(tmp_path):
    write_delta_log(tmp_path / "events", [("a.parquet", 1, 1)])

    assert locate(ingest("a/b.csv"), tmp_path).format == "csv"
    assert locate(ingest("b.JSONL"), tmp_path).format == "json"
    assert locate(ingest("b.parquet"), tmp_path).format == "parquet"
    assert locate(ingest("events"), tmp_path).format == "delta"
    assert locate(ingest("main.sales.orders"), tmp_path).target == "main.sales.orders"
    assert locate(ingest("data.txt", format="CSV"), tmp_path).format == "csv"
    with pytest.raises(PipelineConfigError) as unknown:
        locate(ingest("out/flagged"), tmp_path)
    assert str(unknown.value) == (
        "ingest step 'read': cannot tell the format of 'out/flagged' from its extension; "
        "set params.format to one of csv, json, parquet, delta, table"
    )
    with pytest.raises(PipelineConfigError, match=r"format 'parquett' .*did you mean 'parquet'"):
        locate(ingest("x", format="parquett"), tmp_path)


def test_paths_resolve_against_base_dir_or_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    assert locate(ingest("data/c.csv"), tmp_path / "pipelines").target == str(
        tmp_path / "pipelines" / "data" / "c.csv"
    )
    assert locate(ingest("data/c.csv"), None).path == tmp_path / "data" / "c.csv"
    assert locate(ingest("/abs/c.csv"), tmp_path).target == "/abs/c.csv"
    remote = locate(ingest("s3://bucket/c.csv"), tmp_path)
    assert (remote.target, remote.path) == ("s3://bucket/c.csv", None)


def test_the_log_is_replayed_from_the_last_checkpoint(tmp_path):
    table = tmp_path / "t"
    log = table / "_delta_log"
    log.mkdir(parents=True)
    add_type = pa.struct([("path", pa.string()), ("size", pa.int64()), ("stats", pa.string())])
    checkpoint = pa.table(
        {
            "add": pa.array(
                [
                    {"path": "a.parquet", "size": 100, "stats": '{"numRecords": 10}'},
                    {"path": "b.parquet", "size": 200, "stats": '{"numRecords": 20}'},
                ],
                type=add_type,
            )
        }
    )
    pq.write_table(checkpoint, log / f"{3:020d}.checkpoint.parquet")
    # Commits up to the checkpoint are superseded by it; this one would double-count.
    write_delta_log(table, [("stale.parquet", 999, 999)], version=3)
    (log / f"{4:020d}.json").write_text(
        json.dumps({"remove": {"path": "a.parquet", "dataChange": True}})
        + "\n"
        + json.dumps({"add": {"path": "c.parquet", "size": 300, "stats": '{"numRecords": 30}'}})
        + "\n"
    )

    assert live_delta_files(log) == {"b.parquet": (200, 20), "c.parquet": (300, 30)}


def test_human_bytes():
    assert [human_bytes(n) for n in (512, 18 * 1024, 1536, 256 * 1024**2, 1288490189)] == [
        "512 B",
        "18 KB",
        "1.5 KB",
        "256 MB",
        "1.2 GB",
    ]
