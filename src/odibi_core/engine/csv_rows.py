"""Ragged csv rows: a row with more or fewer fields than the header.

pandas pads a short row with NaN and Spark's default (PERMISSIVE) mode drops a long
row's extra fields, both silently. Both engines refuse such a file instead, naming the
first bad row: the pandas engine for every csv it reads, the Spark engine for local files
before it reads them (Spark itself, in FAILFAST mode, refuses the rest when an action
runs, without a row number).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

# Spark's csv options that pyarrow's parser can mirror for the row-width check.
_ROW_CHECK_OPTIONS = {"sep": "delimiter", "delimiter": "delimiter", "quote": "quote_char"}
_ROW_CHECK_OPTIONS |= {"escape": "escape_char"}
_ROW_CHECK_IGNORED = {"header", "inferschema", "nullvalue", "encoding", "charset"}


def first_ragged_row(path: Path, options: Mapping[str, Any]) -> str | None:
    """The first row with more or fewer fields than the header, described; else None.

    One streaming pass of pyarrow's parser that converts a single column. With an option
    pyarrow cannot mirror (``comment``, ``lineSep``) nothing is checked here: pandas still
    refuses a long row itself, and Spark in FAILFAST mode any ragged one.
    """
    parse: dict[str, Any] = {}
    encoding = "utf8"
    for key, value in options.items():
        lowered = key.lower()
        if lowered in _ROW_CHECK_OPTIONS:
            parse[_ROW_CHECK_OPTIONS[lowered]] = value
        elif lowered in ("encoding", "charset"):
            encoding = value
        elif lowered == "mode" and str(value).upper() != "FAILFAST":
            return None  # the user asked for Spark's PERMISSIVE or DROPMALFORMED
        elif lowered not in _ROW_CHECK_IGNORED and lowered != "mode":
            return None
    bad: list[Any] = []

    def first_bad_row(row: Any) -> str:
        bad.append(row)
        return "error"

    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(
                use_threads=False, autogenerate_column_names=True, encoding=encoding
            ),
            parse_options=pacsv.ParseOptions(
                newlines_in_values=True, invalid_row_handler=first_bad_row, **parse
            ),
            convert_options=pacsv.ConvertOptions(
                include_columns=["f0"], column_types={"f0": pa.string()}
            ),
        )
        for _ in reader:
            pass
    except pa.ArrowInvalid:
        pass  # without a bad row, not a row-width problem: the engine's reader reports it
    if not bad:
        return None
    row = bad[0]
    return (
        f"row {row.number} has {row.actual_columns} fields where the header has "
        f"{row.expected_columns} ({row.text!r}); every row needs one field per column "
        "(the header row is row 1)"
    )
