"""A local file ingest's first rows and parquet count, read from the files without Spark."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from odibi_core.engine.file_peek import FilePeek, peek_files, peekable_files

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string()), ("v", pa.float64())])


def _frame(start: int, rows: int) -> pd.DataFrame:
    ids = range(start, start + rows)
    return pd.DataFrame({"id": ids, "name": [f"n{i}" for i in ids], "v": [i / 2 for i in ids]})


def test_a_parquet_folder_is_counted_from_its_footers_and_sampled_from_its_first_file(tmp_path):
    folder = tmp_path / "orders"
    folder.mkdir()
    _frame(0, 7).to_parquet(folder / "part-0.parquet", index=False)
    _frame(7, 5).to_parquet(folder / "part-1.parquet", index=False)
    (folder / "_SUCCESS").write_text("")

    peek = peek_files(peekable_files(folder, "parquet"), "parquet", SCHEMA, 2)

    assert peek == FilePeek(
        rows=[{"id": 0, "name": "n0", "v": 0.0}, {"id": 1, "name": "n1", "v": 0.5}], count=12
    )


def test_parquet_with_samples_off_still_gives_the_count(tmp_path):
    _frame(0, 3).to_parquet(tmp_path / "t.parquet", index=False)
    assert peek_files([tmp_path / "t.parquet"], "parquet", SCHEMA, 0) == FilePeek(count=3)


def test_csv_rows_are_cast_to_sparks_types_and_empty_fields_are_nulls(tmp_path):
    (tmp_path / "t.csv").write_text("id,name,v\n1,,2.5\n2,b,\n3,c,1\n")
    peek = peek_files([tmp_path / "t.csv"], "csv", SCHEMA, 2)
    assert peek == FilePeek(
        rows=[{"id": 1, "name": None, "v": 2.5}, {"id": 2, "name": "b", "v": None}]
    )


def test_what_is_not_read_here_as_spark_reads_it_is_left_to_spark(tmp_path):
    (tmp_path / "t.csv").write_text("id;name;v\n1;a;2\n")  # another delimiter than Spark's
    assert peek_files([tmp_path / "t.csv"], "csv", SCHEMA, 2) is FilePeek.NOTHING
    _frame(0, 3).drop(columns="v").to_parquet(tmp_path / "t.parquet", index=False)
    assert peek_files([tmp_path / "t.parquet"], "parquet", SCHEMA, 2) is FilePeek.NOTHING
    partitioned = tmp_path / "p" / "day=1"
    partitioned.mkdir(parents=True)
    _frame(0, 3).to_parquet(partitioned / "part-0.parquet", index=False)
    assert peekable_files(tmp_path / "p", "parquet") == []
    assert peekable_files(tmp_path / "t.parquet", "json") == []
