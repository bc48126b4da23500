"""A function step cannot change the data other steps, the tracker and the store read."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from odibi_core import Step
from odibi_core.orchestrator import Orchestrator

ROWS = 1_000
HERE = "tests.reliability.test_isolation"


def customers() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": np.arange(ROWS),
            "email": [f"user{i}@example.com" for i in range(ROWS)],
            "score": [np.nan if i % 10 == 0 else float(i) for i in range(ROWS)],
        }
    )


def mutate_in_place(data: pd.DataFrame) -> pd.DataFrame:
    """Every in-place change pandas allows on the frame it was handed."""
    data["email"] = "MUTATED"
    data.fillna({"score": -1.0}, inplace=True)
    data.loc[data["id"] < 10, "id"] = -1
    data.drop(index=data.index[: ROWS // 2], inplace=True)
    return data


def unchanged(data: pd.DataFrame) -> pd.DataFrame:
    return data


def _function_step(name: str, function: str, output: str, *, reads: str | None = None) -> Step:
    return Step(
        layer="transform",
        name=name,
        type="function",
        value=f"{HERE}:{function}",
        inputs={"data": reads} if reads else {},
        outputs={"data": output},
    )


def _steps(store_target: str) -> list[Step]:
    """One frame read by two sibling function steps and a store."""
    return [
        _function_step("make", "customers", "raw"),
        _function_step("mutate", "mutate_in_place", "mutated", reads="raw"),
        _function_step("sibling", "unchanged", "same", reads="raw"),
        Step(
            layer="store",
            name="save_raw",
            value=store_target,
            params={"format": "parquet"},
            inputs={"data": "raw"},
        ),
    ]


@pytest.mark.parametrize("copy_on_write", [False, True], ids=["default", "copy_on_write"])
def test_an_in_place_mutation_is_seen_by_no_sibling_and_no_store(tmp_path, copy_on_write):
    with pd.option_context("mode.copy_on_write", copy_on_write):
        result = Orchestrator(
            steps=_steps(str(tmp_path / "raw_out")), engine_type="pandas", parallel=False
        ).execute(raise_on_error=True)

    stored = pd.read_parquet(tmp_path / "raw_out")
    assert len(stored) == ROWS
    assert not (stored["email"] == "MUTATED").any()
    assert stored["score"].isna().sum() == ROWS // 10
    assert stored["id"].tolist() == list(range(ROWS))

    sibling = result.data_map["same"]
    assert len(sibling) == ROWS
    assert sibling["email"].str.startswith("user").all()
    assert sibling["score"].isna().sum() == ROWS // 10
    assert (result.data_map["mutated"]["email"] == "MUTATED").all()
    lineage = {step["step_name"]: step for step in result["tracker"].to_lineage()["steps"]}
    assert lineage["save_raw"]["before_snapshot"]["row_count"] == ROWS
    assert lineage["save_raw"]["after_snapshot"]["row_count"] == ROWS
    assert lineage["sibling"]["after_snapshot"]["row_count"] == ROWS
    assert lineage["mutate"]["before_snapshot"]["row_count"] == ROWS
    assert lineage["mutate"]["after_snapshot"]["row_count"] == ROWS // 2
    assert all(row["email"] != "MUTATED" for row in lineage["sibling"]["after_snapshot"]["sample"])
    assert all(row["email"] == "MUTATED" for row in lineage["mutate"]["after_snapshot"]["sample"])


@pytest.mark.spark
def test_a_spark_function_step_may_return_its_input_unchanged(spark, tmp_path):
    steps = [step for step in _steps(str(tmp_path / "raw_out")) if step.name != "mutate"]
    result = Orchestrator(steps=steps, engine_type="spark", spark=spark).execute(
        raise_on_error=True
    )

    assert result.data_map["same"].count() == ROWS
    assert len(pd.read_parquet(tmp_path / "raw_out")) == ROWS
