"""``assert_frames_equal``: one assertion for pandas and Spark frames on either side.

Two Spark frames are compared by chispa (schema and rows, its own readable diff). Any other
pair is brought to pandas (a Spark frame by ``toPandas()``) and compared by column names
and values: rows sorted first unless ``ignore_row_order=False``, dtypes only with
``check_dtype=True``, since the two engines' integer and null types differ. A difference
is reported as the rows only one side has, as small tables.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

_SHOWN_ROWS = 10


def assert_frames_equal(
    actual: Any,
    expected: Any,
    *,
    ignore_row_order: bool = True,
    ignore_nullable: bool = True,
    check_dtype: bool = False,
) -> None:
    """Raise ``AssertionError`` showing the differing rows when the frames differ.

    assert_frames_equal(result.outputs["enriched"], pd.DataFrame({"id": [1, 2]}))
    """
    __tracebackhide__ = True
    if _is_spark(actual) and _is_spark(expected):
        _assert_spark_equal(actual, expected, ignore_row_order, ignore_nullable)
        return
    left, right = _as_pandas(actual, "actual"), _as_pandas(expected, "expected")
    _assert_pandas_equal(left, right, ignore_row_order=ignore_row_order, check_dtype=check_dtype)


def _is_spark(frame: Any) -> bool:
    """A classic or a Spark Connect DataFrame (the class is looked up, pyspark not imported)."""
    return any(
        cls.__name__ == "DataFrame" and cls.__module__.startswith("pyspark.sql")
        for cls in type(frame).__mro__
    )


def _as_pandas(frame: Any, side: str) -> Any:
    import pandas as pd

    if isinstance(frame, pd.DataFrame):
        return frame
    if _is_spark(frame):
        return frame.toPandas()
    raise TypeError(
        f"assert_frames_equal: the {side} frame is a {type(frame).__name__}; "
        "give a pandas or a Spark DataFrame"
    )


def _assert_spark_equal(
    actual: Any, expected: Any, ignore_row_order: bool, ignore_nullable: bool
) -> None:
    __tracebackhide__ = True
    try:
        from chispa import assert_df_equality
    except ImportError as exc:
        raise ImportError(
            "comparing two Spark frames needs chispa; install the local extra: "
            "pip install 'odibi_core[local]'"
        ) from exc
    assert_df_equality(
        actual, expected, ignore_row_order=ignore_row_order, ignore_nullable=ignore_nullable
    )


def _assert_pandas_equal(left: Any, right: Any, *, ignore_row_order: bool, check_dtype: bool):
    __tracebackhide__ = True
    if list(left.columns) != list(right.columns):
        raise AssertionError(
            "the frames have different columns:\n"
            f"  actual:   {list(left.columns)}\n  expected: {list(right.columns)}"
        )
    if ignore_row_order:
        left, right = _sorted_rows(left), _sorted_rows(right)
    left, right = left.reset_index(drop=True), right.reset_index(drop=True)
    import pandas.testing

    try:
        pandas.testing.assert_frame_equal(
            left, right, check_dtype=check_dtype, check_index_type=False
        )
    except AssertionError as exc:
        raise AssertionError(_difference(left, right, str(exc))) from None


def _sorted_rows(frame: Any) -> Any:
    if frame.empty or not len(frame.columns):
        return frame
    columns = list(frame.columns)
    return frame.sort_values(by=columns, key=lambda col: col.map(_sort_key), kind="stable")


def _sort_key(value: Any) -> str:
    return "\x00" if _is_missing(value) else f"{type(value).__name__}:{value!r}"


def _is_missing(value: Any) -> bool:
    try:
        return bool(value != value) or value is None  # NaN, NaT and None
    except (TypeError, ValueError):
        return False


def _difference(left: Any, right: Any, detail: str) -> str:
    """The rows only one side has (counting repeats), then pandas' own message."""
    only_left, only_right = _rows_only_in(left, right), _rows_only_in(right, left)
    lines = [f"the frames differ ({len(left)} actual rows, {len(right)} expected rows)"]
    for label, rows, frame in (
        ("only in actual", only_left, left),
        ("only in expected", only_right, right),
    ):
        if rows:
            shown = frame.loc[rows[:_SHOWN_ROWS]].to_string(index=False)
            more = f"\n  ... and {len(rows) - _SHOWN_ROWS} more" if len(rows) > _SHOWN_ROWS else ""
            lines.append(f"rows {label} ({len(rows)}):\n{_indent(shown)}{more}")
    if not only_left and not only_right:
        lines.append("the same rows; their types or order differ")
    lines.append(f"pandas says: {detail}")
    return "\n".join(lines)


def _rows_only_in(frame: Any, other: Any) -> list[Any]:
    """Index labels of ``frame``'s rows that ``other`` lacks, repeats counted."""
    available = Counter(_row_keys(other))
    missing = []
    for label, key in zip(frame.index, _row_keys(frame)):
        if available[key] > 0:
            available[key] -= 1
        else:
            missing.append(label)
    return missing


def _row_keys(frame: Any) -> list[tuple[str, ...]]:
    return [
        tuple("<null>" if _is_missing(v) else _normal(v) for v in row)
        for row in frame.itertuples(index=False, name=None)
    ]


def _normal(value: Any) -> str:
    """One text for a value whichever engine made it (1 == 1.0, numpy or Python scalar)."""
    if hasattr(value, "item") and not hasattr(value, "__len__"):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return repr(value)


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())
