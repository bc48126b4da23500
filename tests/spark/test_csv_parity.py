"""The same csv file reads to the same schema strings and values on both engines."""

import pandas as pd
import pytest

from odibi_core.engine.base import ReadSpec
from odibi_core.engine.registry import Engines

pytestmark = pytest.mark.spark


def test_csv_inference_agrees_on_ints_dates_and_timestamps(spark, tmp_path):
    path = tmp_path / "events.csv"
    pd.DataFrame(
        {
            "id": [1, 2, 3],
            "day": ["2023-10-09", "2024-01-02", None],
            "at": ["2023-10-09 10:00:00", "2024-01-02T11:30:15", "2024-02-29 00:00:00"],
            "note": ["a", "2024-13", "c"],
            "amount": [1.5, None, 3.0],
        }
    ).to_csv(path, index=False)
    engines = Engines(spark=spark, warehouse=tmp_path / "wh")
    try:
        frames = {
            name: engines.get(name).read(ReadSpec(str(path), "csv"), step="read")
            for name in ("pandas", "spark")
        }
        schemas = {name: engines.get(name).schema(frame) for name, frame in frames.items()}
        samples = {name: engines.get(name).sample(frame, 5) for name, frame in frames.items()}
    finally:
        engines.close()
    assert (
        schemas["pandas"]
        == schemas["spark"]
        == [
            "id: int64",
            "day: date32[day]",
            "at: timestamp[us, tz=UTC]",
            "note: string",
            "amount: double",
        ]
    )
    key = lambda row: row["id"]  # noqa: E731
    assert sorted(samples["pandas"], key=key) == sorted(samples["spark"], key=key)
    assert sorted(samples["pandas"], key=key)[1]["at"].startswith("2024-01-02T11:30:15")
