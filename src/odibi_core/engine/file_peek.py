"""The first rows and the row count of a local file ingest, read from the files themselves.

A tracker snapshot of an ingest step wants a few sample rows and, when it is free, the
row count. Spark would run a job for the rows (a ``limit(n)`` over the scan) and count
through an observation that sits between the scan and every later operator. A local
parquet file holds both cheaply: the count in its footers (metadata only) and the first
rows in its first row group, decoded one small batch at a time. A csv file's first rows
are in its first block. Neither read starts a Spark job.

Only reads that this module reads exactly as Spark does are peeked: one file or a flat
folder of files, no reader options, parquet or csv with Spark's defaults. Anything else
(partition folders, globs, options, other formats, a value that does not cast to the
type Spark gave the column) returns ``FilePeek.NOTHING`` and the caller asks Spark.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from odibi_core.core.locations import data_files, in_subfolders

log = logging.getLogger(__name__)

PEEKED_FORMATS = frozenset({"parquet", "csv"})
_CSV_BLOCK = 1 << 20  # bytes the csv reader parses at a time: the first rows are in it


@dataclass(frozen=True)
class FilePeek:
    """What the files told: rows (None when not read here) and a count (parquet only)."""

    rows: list[dict[str, Any]] | None = None
    count: int | None = None

    NOTHING: ClassVar[FilePeek]


FilePeek.NOTHING = FilePeek()


def peekable_files(local: Path, fmt: str) -> list[Path]:
    """The files of a plain local read of ``fmt``; empty when Spark alone reads it right."""
    if fmt not in PEEKED_FORMATS or not local.exists():
        return []
    files = data_files(local)
    if in_subfolders(local, files):
        return []  # partition folders add columns the files do not hold
    return files


def peek_files(files: list[Path], fmt: str, schema: pa.Schema, rows: int) -> FilePeek:
    """Up to ``rows`` first rows cast to ``schema`` (Spark's types), and a parquet count."""
    try:
        if fmt == "parquet":
            return _peek_parquet(files, schema, rows)
        return FilePeek(rows=_first_csv_rows(files[0], schema, rows) if rows else None)
    except Exception as exc:  # noqa: BLE001 - anything unexpected: Spark reads it instead
        log.debug("could not peek at %s: %s", files[0], exc)
        return FilePeek.NOTHING


def _peek_parquet(files: list[Path], schema: pa.Schema, rows: int) -> FilePeek:

    count, first = 0, None
    for file in files:
        parquet = first_pages_reader(file)
        if set(schema.names) - set(parquet.schema_arrow.names):
            return FilePeek.NOTHING  # a column Spark found elsewhere: not a plain read
        count += parquet.metadata.num_rows
        if first is None and rows and parquet.metadata.num_rows:
            first = first_parquet_rows(parquet, schema, rows).to_pylist()
    return FilePeek(rows=first if rows else None, count=count)


def first_pages_reader(path: Path) -> Any:
    """A parquet reader for a file's first rows. Without pre-buffering it reads the pages
    it decodes, not the whole first row group (about 10x less on a large row group)."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(path, pre_buffer=False)


def first_parquet_rows(parquet: Any, schema: pa.Schema, rows: int) -> pa.Table:
    """Up to ``rows`` first rows of an open parquet file (``first_pages_reader``), cast to
    ``schema`` (unsafe only for sub-microsecond timestamps), decoding one small batch."""
    batch = next(parquet.iter_batches(batch_size=rows, columns=schema.names), None)
    if batch is None:
        return schema.empty_table()
    table = pa.Table.from_batches([batch]).select(schema.names)
    return table.cast(schema, safe=False).slice(0, rows)


def _first_csv_rows(file: Path, schema: pa.Schema, rows: int) -> list[dict[str, Any]]:
    """The first rows as Spark reads them by default: a header, empty fields as nulls."""
    from pyarrow import csv

    convert = csv.ConvertOptions(
        column_types={field.name: pa.string() for field in schema},
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
    )
    reader = csv.open_csv(
        file, read_options=csv.ReadOptions(block_size=_CSV_BLOCK), convert_options=convert
    )
    taken: list[pa.RecordBatch] = []
    for batch in reader:
        taken.append(batch)
        if sum(len(b) for b in taken) >= rows:
            break
    table = pa.Table.from_batches(taken, schema=reader.schema).slice(0, rows)
    if table.column_names != schema.names:
        raise ValueError(f"header {table.column_names} is not Spark's {schema.names}")
    return table.cast(schema).to_pylist()
