"""Testing pipelines with pytest: the plugin's helpers, importable without pytest or pyspark.

The fixtures (``odibi_spark``, ``run_pipeline``, ``run_step``, ``odibi_engine``) come from
``odibi_core.testing.plugin``, which pytest loads by itself once odibi_core is installed.
``assert_frames_equal`` compares pandas and Spark frames on either side::

    from odibi_core.testing import assert_frames_equal

Names are loaded on first use, so importing this package imports neither pandas nor pytest.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RunOutcome", "assert_frames_equal", "run_pipeline", "run_step"]

_WHERE = {
    "assert_frames_equal": "odibi_core.testing.frames",
    "RunOutcome": "odibi_core.testing.runner",
    "run_pipeline": "odibi_core.testing.runner",
    "run_step": "odibi_core.testing.runner",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'odibi_core.testing' has no attribute '{name}'")
    from importlib import import_module

    return getattr(import_module(_WHERE[name]), name)
