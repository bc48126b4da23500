"""Engine choice: explicit engines win; ``auto`` sizes inputs from metadata, never from data."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from odibi_core.core.locations import human_bytes
from odibi_core.core.step import Step
from odibi_core.execution.engine_policy import choose_engine

NO_UPSTREAM: dict[str, int | None] = {}


def ingest(value: str, **params) -> Step:
    return Step(layer="ingest", name="read", value=value, params=params, outputs={"data": "raw"})


def write_csv(path: Path, rows: int) -> Path:
    lines = ["id,name"] + [f"{i},customer_{i}" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_delta_log(table: Path, adds: list[tuple[str, int, int]], version: int = 0) -> None:
    """A hand-written Delta commit: ``adds`` are (file name, size in bytes, numRecords)."""
    log = table / "_delta_log"
    log.mkdir(parents=True, exist_ok=True)
    actions = []
    if version == 0:
        actions.append({"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}})
        schema = {
            "type": "struct",
            "fields": [{"name": "id", "type": "long", "nullable": True, "metadata": {}}],
        }
        actions.append(
            {
                "metaData": {
                    "id": "5f2a3c1e-0000-4000-8000-000000000000",
                    "format": {"provider": "parquet", "options": {}},
                    "schemaString": json.dumps(schema),
                    "partitionColumns": [],
                    "configuration": {},
                    "createdTime": 1700000000000,
                }
            }
        )
    for name, size, records in adds:
        actions.append(
            {
                "add": {
                    "path": name,
                    "partitionValues": {},
                    "size": size,
                    "modificationTime": 1700000000000,
                    "dataChange": True,
                    "stats": json.dumps({"numRecords": records}),
                }
            }
        )
    (log / f"{version:020d}.json").write_text("\n".join(json.dumps(a) for a in actions) + "\n")


def test_auto_picks_pandas_for_a_thousand_row_csv(tmp_path):
    csv = write_csv(tmp_path / "customers.csv", 1_000)
    size = human_bytes(csv.stat().st_size)

    choice = choose_engine(
        ingest("customers.csv"), "auto", base_dir=tmp_path, upstream_rows=NO_UPSTREAM
    )

    assert choice.name == "pandas"
    assert choice.estimated_rows == 1_000
    assert choice.reason == f"auto: ~1,000 rows ({size} csv) under 1,000,000 rows / 256 MB"


def test_auto_picks_spark_for_a_delta_table_from_its_log_alone(tmp_path):
    table = tmp_path / "events"
    adds = [(f"part-{i:05d}.snappy.parquet", 50 * 1024 * 1024, 1_000_000) for i in range(5)]
    write_delta_log(table, adds)
    for name, _, _ in adds:  # garbage data files: any scan of them would fail
        (table / name).write_bytes(b"not a parquet file")

    choice = choose_engine(ingest(str(table)), "auto", base_dir=None, upstream_rows=NO_UPSTREAM)

    assert choice.name == "spark"
    assert choice.estimated_rows == 5_000_000
    assert choice.estimated_bytes == 250 * 1024 * 1024
    assert choice.reason == "auto: ~5,000,000 rows (250 MB delta) over 1,000,000 rows / 256 MB"


def test_a_delta_log_without_data_files_is_sized_the_same(tmp_path):
    adds = [(f"part-{i}.parquet", 1024, 1_000_000) for i in range(5)]
    write_delta_log(tmp_path / "t", adds)

    choice = choose_engine(
        ingest("t", format="delta"), "auto", base_dir=tmp_path, upstream_rows=NO_UPSTREAM
    )

    assert (choice.name, choice.estimated_rows) == ("spark", 5_000_000)


def test_a_table_name_is_sized_from_the_local_warehouse(tmp_path):
    write_delta_log(tmp_path / "main" / "sales" / "orders", [("a.parquet", 2048, 40)])
    step = ingest("main.sales.orders", format="table")

    choice = choose_engine(
        step, "auto", base_dir=None, upstream_rows=NO_UPSTREAM, warehouse=tmp_path
    )

    assert choice.name == "pandas"
    assert choice.reason == "auto: ~40 rows (2 KB table) under 1,000,000 rows / 256 MB"


def test_delta_without_row_stats_is_judged_by_bytes(tmp_path):
    table = tmp_path / "t"
    write_delta_log(table, [("a.parquet", 300 * 1024 * 1024, 1)])
    commit = table / "_delta_log" / f"{0:020d}.json"
    commit.write_text(commit.read_text().replace('"stats": "{\\"numRecords\\": 1}"', '"stats": ""'))

    choice = choose_engine(ingest(str(table)), "auto", base_dir=None, upstream_rows=NO_UPSTREAM)

    assert choice.name == "spark"
    assert choice.estimated_rows is None
    assert choice.reason == (
        "auto: unknown rows (300 MB delta; the Delta log has no row stats) "
        "over 1,000,000 rows / 256 MB"
    )


def test_parquet_rows_come_from_footers(tmp_path):
    pq.write_table(pa.table({"id": list(range(3_000))}), tmp_path / "ids.parquet")

    choice = choose_engine(
        ingest("ids.parquet"), "auto", base_dir=tmp_path, upstream_rows=NO_UPSTREAM, max_rows=2_000
    )

    assert (choice.name, choice.estimated_rows) == ("spark", 3_000)


def test_a_small_file_over_the_byte_limit_goes_to_spark(tmp_path):
    write_csv(tmp_path / "c.csv", 100)

    choice = choose_engine(
        ingest("c.csv"), "auto", base_dir=tmp_path, upstream_rows=NO_UPSTREAM, max_bytes=1_000
    )

    assert choice.name == "spark"
    assert choice.reason.endswith("over 1,000,000 rows / 1000 B")


def test_a_json_array_has_no_row_estimate_and_is_judged_by_bytes(tmp_path):
    (tmp_path / "rows.json").write_text(json.dumps([{"id": i} for i in range(10)]))

    choice = choose_engine(
        ingest("rows.json"), "auto", base_dir=tmp_path, upstream_rows=NO_UPSTREAM
    )

    assert (choice.name, choice.estimated_rows) == ("pandas", None)


def test_json_lines_are_counted(tmp_path):
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps({"id": i}) + "\n" for i in range(7)))

    choice = choose_engine(
        ingest("rows.jsonl"), "auto", base_dir=tmp_path, upstream_rows=NO_UPSTREAM
    )

    assert choice.estimated_rows == 7


def test_a_large_csv_is_extrapolated_from_its_first_bytes(tmp_path):
    csv = tmp_path / "big.csv"
    csv.write_text("id,v\n" + "".join(f"{i:06d},x\n" for i in range(200_000)))

    choice = choose_engine(ingest(str(csv)), "auto", base_dir=None, upstream_rows=NO_UPSTREAM)

    assert choice.estimated_rows is not None
    assert abs(choice.estimated_rows - 200_000) < 200


def test_explicit_engines_win_over_auto(tmp_path):
    step = Step(layer="transform", name="t", value="SELECT 1", engine="spark", outputs={"d": "x"})
    from_default = Step(layer="transform", name="u", value="SELECT 1", outputs={"d": "y"})

    assert choose_engine(step, "auto", base_dir=None, upstream_rows={}).reason == (
        "step sets engine: spark"
    )
    chosen = choose_engine(from_default, "pandas", base_dir=None, upstream_rows={})
    assert (chosen.name, chosen.reason) == ("pandas", "pipeline default engine: pandas")


def test_downstream_steps_sum_known_upstream_counts():
    step = Step(
        layer="transform",
        name="join",
        value="SELECT * FROM a JOIN b USING (id)",
        engine="auto",
        inputs={"a": "raw_a", "b": "raw_b"},
        outputs={"data": "joined"},
    )

    small = choose_engine(
        step, "pandas", base_dir=None, upstream_rows={"raw_a": 1_000, "raw_b": 200}
    )
    large = choose_engine(
        step, "pandas", base_dir=None, upstream_rows={"raw_a": 999_000, "raw_b": 1_000}
    )

    assert small.reason == "auto: 1,200 rows from upstream under 1,000,000 rows / 256 MB"
    assert small.name == "pandas"
    assert large.name == "spark"


def test_an_unknown_upstream_count_means_spark():
    step = Step(
        layer="store", name="save", value="out.parquet", inputs={"data": "big"}, engine="auto"
    )

    choice = choose_engine(step, "pandas", base_dir=None, upstream_rows={"big": None})

    assert choice.name == "spark"
    assert choice.reason == "auto: row count of 'big' is unknown (a Spark output), so spark"


def test_an_auto_store_to_a_uri_only_spark_writes_to_goes_to_spark_whatever_its_size():
    def store(value):
        return Step(layer="store", name="save", value=value, engine="auto", inputs={"d": "x"})

    remote = choose_engine(
        store("s3://bucket/out.parquet"), "pandas", base_dir=None, upstream_rows={"x": 3}
    )
    assert (remote.name, remote.reason) == (
        "spark",
        "auto: 's3://bucket/out.parquet' is a cloud URI, which only Spark writes to, so spark",
    )
    dbfs = choose_engine(store("dbfs:/out.csv"), "pandas", base_dir=None, upstream_rows={"x": 3})
    assert (
        dbfs.reason == "auto: 'dbfs:/out.csv' is a DBFS URI, which only Spark writes to, so spark"
    )
    volume = store("/Volumes/main/raw/files/out.csv")
    assert choose_engine(volume, "pandas", base_dir=None, upstream_rows={"x": 3}).name == "pandas"
