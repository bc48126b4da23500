"""The plugin's tests run generated test files with pytester, in this process (one JVM)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from odibi_core.engine.log_scrubbing import guard_pyspark_loggers

# The generated runs: strict markers as in a user's project; no cache files; hypothesis'
# plugin left out (its report header and summary cost seconds per run and test nothing here).
INNER_ARGS = ("--strict-markers", "-p", "no:cacheprovider", "-p", "no:hypothesispytest")


# Modules the generated runs imported, by name. pytester drops what a run (and a test)
# imported, but a native extension (numpy, pyarrow, grpc) cannot be loaded twice in a
# process: they are put back after each run and after each test.
_KEPT: dict[str, object] = {}


class _KeepImports:
    """Records the modules a generated run imported from outside its own folder."""

    def __init__(self, folder: Path):
        self.folder = str(folder)

    def pytest_sessionfinish(self) -> None:
        for name, module in list(sys.modules.items()):
            if not (getattr(module, "__file__", None) or "").startswith(self.folder):
                _KEPT.setdefault(name, module)


def _restore_kept() -> None:
    for name, module in _KEPT.items():
        sys.modules.setdefault(name, module)


@pytest.fixture(autouse=True)
def _keep_imports():
    """Set up before pytester, so torn down after it has dropped the test's imports."""
    yield
    _restore_kept()


@pytest.fixture
def run_generated(pytester):
    """Run the generated tests in this process: ``run_generated(*pytest_args)``."""

    def run(*args: str):
        # PySpark's loggers hold the stderr of the moment they are made: made inside a
        # generated run, they would write to its capture after it closed, for every later
        # test of this process. Made here, they hold this session's stderr.
        guard_pyspark_loggers(starting_spark=True)
        try:
            return pytester.runpytest_inprocess(
                *INNER_ARGS, *args, plugins=[_KeepImports(pytester.path)]
            )
        finally:
            _restore_kept()

    return run
