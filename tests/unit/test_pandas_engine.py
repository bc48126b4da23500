"""The pandas engine (DuckDB SQL, file I/O), schema strings and the registry, without a JVM."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from odibi_core.core.errors import EngineError, PipelineConfigError
from odibi_core.engine.base import ReadSpec, WriteSpec
from odibi_core.engine.pandas_engine import PandasEngineContext
from odibi_core.engine.registry import Engines
from odibi_core.engine.schema import json_safe

UTC = dt.timezone.utc


@pytest.fixture
def engine():
    return PandasEngineContext(duckdb_threads=1)


@pytest.fixture
def people():
    return pd.DataFrame(
        {
            "id": [1, 2, 3],
            "name": ["Alice", None, "Carol"],
            "amount": [10.5, None, 3.0],
            "ts": pd.to_datetime(["2024-01-01 10:00", "2024-02-29 23:59", None], utc=True),
            "d": [dt.date(2024, 1, 7), dt.date(2024, 3, 1), None],
            "flag": [True, False, True],
        }
    )


# -- SQL -------------------------------------------------------------------------------


def test_sql_reads_inputs_by_logical_name_and_keeps_integer_types(engine, people):
    result = engine.adopt(
        engine.sql(
            "SELECT id, upper(name) AS name, sum(id) OVER (ORDER BY id) AS running "
            "FROM bronze ORDER BY id",
            {"bronze": people},
            step="upper_names",
        )
    )
    assert result.to_dict("list") == {
        "id": [1, 2, 3],
        "name": ["ALICE", None, "CAROL"],
        "running": [1, 3, 6],
    }
    assert engine.schema(result) == ["id: int64", "name: string", "running: int64"]


def test_sql_dates_follow_spark(engine, people):
    result = engine.adopt(
        engine.sql(
            "SELECT dayofweek(d) AS dow, date_add(d, 1) AS next_day, year(d) AS y FROM data "
            "WHERE d IS NOT NULL ORDER BY d",
            {"data": people},
            step="dates",
        )
    )
    # 2024-01-07 was a Sunday: Spark counts it as day 1.
    assert result.to_dict("list") == {
        "dow": [1, 6],
        "next_day": [dt.date(2024, 1, 8), dt.date(2024, 3, 2)],
        "y": [2024, 2024],
    }
    assert engine.schema(result) == ["dow: int32", "next_day: date32[day]", "y: int32"]


def test_division_by_zero_raises_and_try_divide_gives_null(engine, people):
    with pytest.raises(EngineError) as caught:
        engine.sql("SELECT id / (id - 1) AS r FROM data", {"data": people}, step="ratio")
    message = str(caught.value)
    assert message.startswith("step 'ratio': DuckDB could not run the SQL")
    assert "[DIVIDE_BY_ZERO]" in message
    assert "DuckDB SQL (translated from Spark SQL): SELECT id / CASE WHEN" in message
    assert caught.value.retryable is False

    result = engine.adopt(
        engine.sql(
            "SELECT try_divide(id, id - 1) AS r FROM data ORDER BY id", {"data": people}, step="r"
        )
    )
    assert result["r"].isna().tolist() == [True, False, False]
    assert result["r"].tolist()[1:] == [2.0, 1.5]


def test_unknown_table_lists_the_inputs(engine, people):
    with pytest.raises(EngineError, match="the step's inputs are: bronze, silver") as caught:
        engine.sql("SELECT * FROM gold", {"bronze": people, "silver": people}, step="s")
    assert caught.value.retryable is False


def test_python_variables_are_not_visible_to_sql(engine, people):
    hidden = people  # noqa: F841 - DuckDB would find this local by name if allowed
    with pytest.raises(EngineError, match="Table with name hidden does not exist"):
        engine.sql("SELECT * FROM hidden", {}, step="s")


def test_duckdb_threads_setting_is_applied(people):
    engine = PandasEngineContext(duckdb_threads=3)
    result = engine.adopt(engine.sql("SELECT current_setting('threads') AS threads", {}, step="s"))
    assert result["threads"].tolist() == [3]


def test_sum_beyond_bigint_overflows_like_spark(engine):
    big = pd.DataFrame({"x": [2**62, 2**62]})
    with pytest.raises(EngineError, match=r"\[ARITHMETIC_OVERFLOW\]"):
        engine.sql("SELECT sum(x) AS s FROM data", {"data": big}, step="sum_big")


def test_call_passes_inputs_and_params_as_keywords(engine, people):
    def scale(data, factor):
        return data.assign(scaled=data["id"] * factor)

    result = engine.call(scale, {"data": people}, {"factor": 10}, step="scale")
    assert result["scaled"].tolist() == [10, 20, 30]


# -- files -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_file_round_trip_writes_spark_layout(engine, people, tmp_path, fmt):
    target = tmp_path / f"out_{fmt}"
    result = engine.write(people, WriteSpec(target=str(target), format=fmt), step="save")
    assert (result.rows, result.count_source) == (3, "in_memory")
    names = sorted(p.name for p in target.iterdir())
    assert names[0] == "_SUCCESS"
    assert len(names) == 2 and names[1].startswith("part-00000-") and names[1].endswith(fmt)

    back = engine.adopt(engine.read(ReadSpec(source=str(target), format=fmt), step="load"))
    assert back["id"].tolist() == [1, 2, 3]
    assert back["name"].where(back["name"].notna(), None).tolist() == ["Alice", None, "Carol"]
    assert back["amount"].fillna(-1).tolist() == [10.5, -1, 3.0]
    assert back["flag"].tolist() == [True, False, True]
    if fmt == "parquet":
        assert engine.schema(back) == engine.schema(people)


def test_overwrite_replaces_previous_files(engine, people, tmp_path):
    target = str(tmp_path / "out")
    engine.write(people, WriteSpec(target=target, format="parquet"), step="first")
    engine.write(people.head(1), WriteSpec(target=target, format="parquet"), step="second")
    back = engine.adopt(engine.read(ReadSpec(source=target, format="parquet"), step="load"))
    assert back["id"].tolist() == [1]


def test_partitioned_parquet_round_trip(engine, tmp_path):
    frame = pd.DataFrame({"id": [1, 2, 3], "country": ["NL", "FR", "NL"]})
    target = tmp_path / "parts"
    spec = WriteSpec(target=str(target), format="parquet", partition_by=("country",))
    engine.write(frame, spec, step="save")
    assert sorted(p.name for p in target.iterdir()) == ["_SUCCESS", "country=FR", "country=NL"]
    back = engine.adopt(engine.read(ReadSpec(source=str(target), format="parquet"), step="load"))
    rows = sorted(zip(back["id"].tolist(), back["country"].tolist()))
    assert rows == [(1, "NL"), (2, "FR"), (3, "NL")]


@pytest.mark.parametrize("mode", ["append", "merge"])
def test_file_append_or_merge_suggests_delta(engine, people, tmp_path, mode):
    spec = WriteSpec(target=str(tmp_path / "o"), format="csv", mode=mode, merge_keys=("id",))
    with pytest.raises(PipelineConfigError) as caught:
        engine.write(people, spec, step="save_csv")
    assert str(caught.value) == (
        f"step 'save_csv' (writing '{tmp_path / 'o'}'): mode '{mode}' is not supported for "
        f"csv files, which can only be overwritten; use format: delta (or table) to {mode}"
    )


def test_csv_options_use_spark_names(engine, tmp_path):
    source = tmp_path / "plain.csv"
    source.write_text("1;x\n2;y\n")
    back = engine.adopt(
        engine.read(
            ReadSpec(source=str(source), format="csv", options={"header": False, "sep": ";"}),
            step="load",
        )
    )
    assert back.to_dict("list") == {"_c0": [1, 2], "_c1": ["x", "y"]}


def test_reading_a_missing_path_names_it_and_the_step(engine, tmp_path):
    missing = tmp_path / "nowhere.csv"
    with pytest.raises(EngineError) as caught:
        engine.read(ReadSpec(source=str(missing), format="csv"), step="load_orders")
    assert str(caught.value) == (
        f"step 'load_orders': cannot read csv '{missing}': the path does not exist; "
        "check the step's value"
    )
    assert caught.value.retryable is False


def test_delta_without_a_spark_engine_fails_clearly(engine, people, tmp_path):
    with pytest.raises(EngineError, match="step 'save': cannot write delta .*Delta needs Spark"):
        engine.write(people, WriteSpec(target=str(tmp_path / "t"), format="delta"), step="save")


def test_pandas_engine_never_imports_pyspark(tmp_path):
    script = textwrap.dedent(
        f"""
        import sys
        import pandas as pd
        from odibi_core.engine import Engines, ReadSpec, WriteSpec

        engines = Engines()
        engine = engines.get("pandas")
        frame = pd.DataFrame({{"id": [1, 2], "name": ["a", "b"]}})
        for fmt in ("csv", "json", "parquet"):
            target = r"{tmp_path}/out_" + fmt
            engine.write(frame, WriteSpec(target=target, format=fmt), step="w")
            back = engine.adopt(engine.read(ReadSpec(source=target, format=fmt), step="r"))
            assert back["id"].tolist() == [1, 2], back
        result = engine.adopt(engine.sql("SELECT count(*) AS n FROM data", {{"data": frame}}, step="q"))
        assert result["n"].tolist() == [2]
        engines.close()
        assert not engines.spark_started
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("pyspark", "py4j", "delta")))
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == "[]"


# -- schema strings and JSON-safe samples ----------------------------------------------


def test_schema_strings_normalise_pandas_quirks(engine):
    frame = pd.DataFrame(
        {
            "id": pd.array([1, None], dtype="Int64"),
            "name": ["a", "b"],
            "big_text": pd.array(["x", "y"], dtype=pd.ArrowDtype(pa.large_string())),
            "category": pd.Categorical(["p", "q"]),
            "naive_ns": pd.to_datetime(["2024-01-01", "2024-01-02"]),
            "paris": pd.to_datetime(["2024-01-01", "2024-01-02"]).tz_localize("Europe/Paris"),
            "d": [dt.date(2024, 1, 1), dt.date(2024, 1, 2)],
            "flag": [True, False],
            "amount": [1.0, 2.0],
        }
    )
    assert engine.schema(frame) == [
        "id: int64",
        "name: string",
        "big_text: string",
        "category: string",
        "naive_ns: timestamp[us, tz=UTC]",
        "paris: timestamp[us, tz=UTC]",
        "d: date32[day]",
        "flag: bool",
        "amount: double",
    ]


def test_sample_is_json_safe(engine, people):
    sample = engine.sample(people, 2)
    assert sample == [
        {
            "id": 1,
            "name": "Alice",
            "amount": 10.5,
            "ts": "2024-01-01T10:00:00+00:00",
            "d": "2024-01-07",
            "flag": True,
        },
        {
            "id": 2,
            "name": None,
            "amount": None,
            "ts": "2024-02-29T23:59:00+00:00",
            "d": "2024-03-01",
            "flag": False,
        },
    ]
    json.dumps(sample)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (np.int64(7), 7),
        (np.float32(1.5), 1.5),
        (np.bool_(True), True),
        (float("nan"), None),
        (pd.NaT, None),
        (pd.NA, None),
        (decimal.Decimal("12.50"), 12.5),
        (decimal.Decimal("0.1000000000000000000001"), "0.1000000000000000000001"),
        (dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "2024-01-02T03:04:05+00:00"),
        (np.datetime64("2024-01-02T03:04:05"), "2024-01-02T03:04:05"),
        (b"\x00\xff", "AP8="),
        ({"nested": [np.int32(1), None]}, {"nested": [1, None]}),
    ],
)
def test_json_safe_values(value, expected):
    assert json_safe(value) == expected


# -- registry --------------------------------------------------------------------------


def test_registry_gives_one_pandas_engine_and_never_starts_spark_to_close(people):
    engines = Engines(duckdb_threads=1)
    assert engines.get("pandas") is engines.get("pandas")
    assert engines.frame_engine(people) == "pandas"
    assert engines.convert(people, "pandas") is people
    engines.close()
    assert engines.spark_started is False


def test_registry_rejects_unknown_engines_and_frames():
    engines = Engines()
    with pytest.raises(
        PipelineConfigError, match="unknown engine 'pandsa' \\(did you mean 'pandas'\\?\\)"
    ):
        engines.get("pandsa")
    with pytest.raises(EngineError, match="a step produced a builtins.list"):
        engines.frame_engine([1, 2])
