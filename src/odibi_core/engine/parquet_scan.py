"""A parquet ingest on the pandas engine, read only when and as far as it is used.

Reading every column of a parquet source into memory, and then handing it to DuckDB,
costs far more than the SQL that follows when that SQL uses a few columns of a large
table. A ``ParquetScan`` holds the source's files instead: DuckDB reads them itself in a
SQL step, with its projection and filter pushdown; the count comes from the footers and a
sample from the first batch, so the tracker's snapshot reads no data. The whole table is
read (to Arrow) only where a step needs it: a function step, a write, a quality rule.

Like a Spark DataFrame over files, a scan is lazy. The files are stamped when the ingest
runs (size and modification time); a later read of files that changed meanwhile is the
reading step's error, never a silent read of other data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from odibi_core.core.errors import EngineError
from odibi_core.engine.file_peek import first_pages_reader, first_parquet_rows
from odibi_core.engine.schema import normalize_arrow_schema, normalize_arrow_table


@dataclass(frozen=True)
class FileStamp:
    path: Path
    size: int
    modified_ns: int

    @classmethod
    def of(cls, path: Path) -> FileStamp:
        stat = path.stat()
        return cls(path, stat.st_size, stat.st_mtime_ns)


@dataclass(frozen=True)
class ParquetScan:
    """The plain parquet files of one ingest, with their schema and row count."""

    source: str  # as the step wrote it, for messages
    files: tuple[FileStamp, ...]
    schema: pa.Schema  # as pyarrow reads the files, before normalising
    rows: int

    @classmethod
    def open(cls, source: str, files: list[Path]) -> ParquetScan | None:
        """A scan of ``files``, or None when they do not share one schema (the eager read
        unifies them). Reads footers only."""
        stamps, schema, rows = [], None, 0
        for file in files:
            stamps.append(FileStamp.of(file))
            parquet = pq.ParquetFile(file)
            if _stored_index(parquet.schema_arrow):
                return None
            if schema is None:
                schema = parquet.schema_arrow
            elif not parquet.schema_arrow.equals(schema, check_metadata=False):
                return None
            rows += parquet.metadata.num_rows
        if schema is None or len(set(schema.names)) != len(schema.names):
            return None
        return cls(source, tuple(stamps), schema.remove_metadata(), rows)

    def __len__(self) -> int:
        return self.rows

    @property
    def normalized_schema(self) -> pa.Schema:
        return normalize_arrow_schema(self.schema)

    def check_unchanged(self, step: str) -> None:
        """Refuse to read files replaced or changed since the ingest stamped them."""
        for stamp in self.files:
            try:
                current = FileStamp.of(stamp.path)
            except FileNotFoundError:
                current = None
            if current != stamp:
                raise EngineError(
                    f"step '{step}': the parquet source '{self.source}' changed after its "
                    f"ingest step read it ({stamp.path.name} was "
                    f"{'removed' if current is None else 'rewritten'}); a step of this run "
                    "must not replace a source another step still reads: write to another "
                    "path, or rerun the pipeline",
                    retryable=False,
                )

    def to_arrow(self, step: str) -> pa.Table:
        """Every row and column, as canonical Arrow."""
        self.check_unchanged(step)
        tables = [pq.read_table(stamp.path) for stamp in self.files]
        table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
        return normalize_arrow_table(table.replace_schema_metadata(None))

    def head(self, n: int) -> list[dict[str, Any]]:
        """The first ``n`` rows as Python values, decoding one small batch per file."""
        schema, taken, remaining = self.normalized_schema, [], n
        for stamp in self.files:
            if remaining <= 0:
                break
            first = first_parquet_rows(first_pages_reader(stamp.path), schema, remaining)
            taken.append(first)
            remaining -= first.num_rows
        return pa.concat_tables(taken).to_pylist() if taken else []

    def duckdb_source(self) -> str:
        """The DuckDB table function reading these files."""
        paths = ", ".join("'" + str(stamp.path).replace("'", "''") + "'" for stamp in self.files)
        return f"read_parquet([{paths}])"


def _stored_index(schema: pa.Schema) -> list[str]:
    """Columns that hold a pandas index written by ``to_parquet``: pandas reads them back
    as the index, not as data, and so does this engine."""
    metadata = schema.pandas_metadata or {}
    return [name for name in metadata.get("index_columns", []) if isinstance(name, str)]


def without_stored_index(table: pa.Table) -> pa.Table:
    """``table`` without the columns holding a stored pandas index."""
    index = [name for name in _stored_index(table.schema) if name in table.column_names]
    return table.drop_columns(index) if index else table
