"""Schemas as Arrow type names, and rows as JSON-safe values, the same on both engines.

Both engines describe a frame as ``["col: arrow_type", ...]`` (``"id: int64"``,
``"ts: timestamp[us, tz=UTC]"``). pandas quirks are normalised so the same data gives
the same strings as Spark:

- strings of any Arrow flavour (``large_string``, ``string_view``) are ``string``;
- timestamps are microseconds in UTC. Spark's session time zone is UTC and Spark stores
  instants, so a naive pandas timestamp is taken as UTC, as Spark would take it;
- categoricals are described by their values' type.

Only pyarrow is imported here; pandas is imported lazily by the helpers that need it.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    import pandas as pd

UTC = "UTC"
TIMESTAMP_UNIT = "us"


def normalize_arrow_type(arrow_type: pa.DataType) -> pa.DataType:
    """The canonical form of ``arrow_type``, recursively for nested types."""
    if pa.types.is_large_string(arrow_type) or _is("string_view", arrow_type):
        return pa.string()
    if pa.types.is_large_binary(arrow_type) or _is("binary_view", arrow_type):
        return pa.binary()
    if pa.types.is_timestamp(arrow_type):
        return pa.timestamp(TIMESTAMP_UNIT, tz=UTC)
    if pa.types.is_dictionary(arrow_type):
        return normalize_arrow_type(arrow_type.value_type)
    if (
        pa.types.is_list(arrow_type)
        or pa.types.is_large_list(arrow_type)
        or _is("list_view", arrow_type)
        or _is("large_list_view", arrow_type)
    ):
        return pa.list_(normalize_arrow_type(arrow_type.value_type))
    if pa.types.is_struct(arrow_type):
        return pa.struct(
            [
                pa.field(f.name, normalize_arrow_type(f.type), f.nullable)
                for f in (arrow_type.field(i) for i in range(arrow_type.num_fields))
            ]
        )
    if pa.types.is_map(arrow_type):
        return pa.map_(
            normalize_arrow_type(arrow_type.key_type), normalize_arrow_type(arrow_type.item_type)
        )
    return arrow_type


def normalize_arrow_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with every field's type in its canonical form."""
    return pa.schema([pa.field(f.name, normalize_arrow_type(f.type), f.nullable) for f in schema])


def normalize_arrow_table(table: pa.Table) -> pa.Table:
    """Cast ``table`` to canonical types: the form handed to Spark, DuckDB and Parquet."""
    target = normalize_arrow_schema(table.schema)
    if target.equals(table.schema):
        return table
    # Unsafe only for timestamps: nanoseconds below a microsecond are truncated, as
    # Spark would truncate them.
    return table.cast(target, safe=False)


def schema_strings(schema: pa.Schema) -> list[str]:
    """``["col: arrow_type", ...]`` with canonical type names."""
    return [f"{f.name}: {normalize_arrow_type(f.type)}" for f in schema]


def pandas_schema_strings(frame: pd.DataFrame) -> list[str]:
    """Schema strings of a pandas frame, as Arrow would type its columns."""
    quick = _numpy_column_types(frame)
    if quick is not None:
        return quick
    try:
        return schema_strings(pa.Schema.from_pandas(frame, preserve_index=False))
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        # One column holds values Arrow cannot type together: describe the others
        # exactly and that one by its pandas dtype.
        described = []
        for name in frame.columns:
            column = frame[[name]]
            try:
                described.extend(
                    schema_strings(pa.Schema.from_pandas(column, preserve_index=False))
                )
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                described.append(f"{name}: {frame[name].dtype}")
        return described


def _numpy_column_types(frame: pd.DataFrame) -> list[str] | None:
    """The schema strings from the dtypes alone, when every column has a plain numpy dtype;
    an object column's type is inferred from its values as ``from_pandas`` infers it, with
    no conversion. None for anything else (extension dtypes, odd names), which the full
    conversion describes. A tracker describes every output, so this is on the hot path."""
    import numpy as np

    if not frame.columns.is_unique:
        return None
    described = []
    for name, dtype in frame.dtypes.items():
        if not isinstance(name, str) or not isinstance(dtype, np.dtype):
            return None
        if dtype.kind in "iufb" or (dtype.kind == "M" and dtype != np.dtype("M8")):
            arrow_type = pa.from_numpy_dtype(dtype)
        elif dtype.kind == "O":
            arrow_type = _object_column_type(frame[name].to_numpy())
            if arrow_type is None:
                return None
        else:
            return None
        described.append(f"{name}: {normalize_arrow_type(arrow_type)}")
    return described


def _object_column_type(values: Any) -> pa.DataType | None:
    """The type ``from_pandas`` gives an object column; None where it would not convert.
    Text columns, the common case, are checked value by value instead of converted."""
    from pandas.api.types import infer_dtype

    try:
        if infer_dtype(values, skipna=True) == "string":  # every value text or missing
            return pa.string()
        return pa.array(values, from_pandas=True).type
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None


def pandas_to_arrow(frame: pd.DataFrame) -> pa.Table:
    """A pandas frame as a canonical Arrow table (no index)."""
    return normalize_arrow_table(pa.Table.from_pandas(frame, preserve_index=False))


def arrow_to_pandas(table: pa.Table) -> pd.DataFrame:
    """An Arrow table as a pandas frame that keeps SQL types.

    Integers and booleans become pandas' nullable dtypes, so a NULL does not turn an
    integer column into floats. Decimals and nested types keep their exact Arrow type.
    """
    import pandas as pd

    nullable = {
        pa.int8(): pd.Int8Dtype(),
        pa.int16(): pd.Int16Dtype(),
        pa.int32(): pd.Int32Dtype(),
        pa.int64(): pd.Int64Dtype(),
        pa.uint8(): pd.UInt8Dtype(),
        pa.uint16(): pd.UInt16Dtype(),
        pa.uint32(): pd.UInt32Dtype(),
        pa.uint64(): pd.UInt64Dtype(),
        pa.bool_(): pd.BooleanDtype(),
    }

    def pandas_type(arrow_type: pa.DataType) -> Any:
        if arrow_type in nullable:
            return nullable[arrow_type]
        if pa.types.is_decimal(arrow_type) or pa.types.is_nested(arrow_type):
            return pd.ArrowDtype(arrow_type)
        return None

    return table.to_pandas(types_mapper=pandas_type)


def json_safe(value: Any) -> Any:
    """``value`` as something ``json.dumps`` accepts, losing as little as possible.

    Datetimes become ISO strings, NaN/NaT/NA become None, numpy scalars become Python
    numbers, Decimals become floats when exact (strings otherwise), bytes become base64.
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, decimal.Decimal):
        return _decimal_to_json(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return _temporal_to_json(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if hasattr(value, "asDict"):  # a pyspark Row
        return json_safe(value.asDict(recursive=True))
    return _library_scalar_to_json(value)


def json_safe_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{str(k): json_safe(v) for k, v in row.items()} for row in rows]


def _is(kind: str, arrow_type: pa.DataType) -> bool:
    """``pa.types.is_<kind>``, false on pyarrow versions that lack the kind."""
    check = getattr(pa.types, f"is_{kind}", None)
    return bool(check and check(arrow_type))


def _decimal_to_json(value: decimal.Decimal) -> float | str | None:
    if not value.is_finite():
        return None
    as_float = float(value)
    return as_float if decimal.Decimal(repr(as_float)) == value else str(value)


def _temporal_to_json(value: dt.datetime | dt.date | dt.time) -> str | None:
    # pandas.NaT is a datetime subclass whose isoformat() is "NaT".
    if value != value:  # NaT is the one datetime not equal to itself
        return None
    return value.isoformat()


def _library_scalar_to_json(value: Any) -> Any:
    """numpy/pandas scalars and arrays, without importing either library up front."""
    module = type(value).__module__.split(".")[0]
    if module == "numpy":
        import numpy as np

        if isinstance(value, np.ndarray):
            return [json_safe(v) for v in value.tolist()]
        if isinstance(value, np.datetime64):
            if np.isnat(value):
                return None
            return _temporal_to_json(_numpy_datetime(value))
        if isinstance(value, np.timedelta64):
            return None if np.isnat(value) else value / np.timedelta64(1, "s")
        return json_safe(value.item())
    if module == "pandas":
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return None
        if isinstance(value, pd.Timedelta):
            return value.total_seconds()
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    if hasattr(value, "tolist"):
        return json_safe(value.tolist())
    return str(value)


def _numpy_datetime(value: Any) -> dt.datetime:
    import pandas as pd

    return pd.Timestamp(value).to_pydatetime()
