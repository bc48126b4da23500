"""The pytest plugin of odibi_core, loaded by pytest through the ``pytest11`` entry point.

Fixtures: ``odibi_spark`` (the session), ``run_pipeline`` and ``run_step`` (runs that write
only under the test's tmp dir), ``odibi_engine`` (the engine of a test marked
``@pytest.mark.odibi_engines("pandas", "spark")``, which runs once per engine). Nothing
heavy is imported here: pyspark only when a test asks for a Spark session, pandas and the
framework only when a fixture is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

ENGINES_MARKER = "odibi_engines"
_DEFAULT_ENGINE = "pandas"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f'{ENGINES_MARKER}(*engines): run the test once per engine ("pandas", "spark"); '
        "the odibi_engine fixture gives the current one",
    )
    config.addinivalue_line("markers", "spark: needs a local Spark session (starts a JVM)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker(ENGINES_MARKER)
    if marker is None:
        return
    engines = marker.args or ("pandas", "spark")
    unknown = [e for e in engines if e not in ("pandas", "spark")]
    if unknown:
        pytest.fail(
            f"{metafunc.definition.nodeid}: @pytest.mark.{ENGINES_MARKER} takes "
            f"'pandas' and/or 'spark', not {', '.join(map(repr, unknown))}",
            pytrace=False,
        )
    if "odibi_engine" not in metafunc.fixturenames:
        metafunc.fixturenames.append("odibi_engine")
    metafunc.parametrize(
        "odibi_engine",
        [
            pytest.param(e, marks=(pytest.mark.spark,) if e == "spark" else (), id=e)
            for e in engines
        ],
        indirect=True,
    )


@pytest.fixture
def odibi_engine(request: pytest.FixtureRequest) -> str:
    """The engine this run of a ``@pytest.mark.odibi_engines(...)`` test uses."""
    return getattr(request, "param", _DEFAULT_ENGINE)


@pytest.fixture(scope="session")
def odibi_spark(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The test session's Spark session, by the framework's own rules.

    A session already running in the process is taken as it is; ``SPARK_REMOTE`` makes it
    a Spark Connect session; otherwise a local Delta session is built (UI off, UTC, few
    shuffle partitions) with its warehouse under pytest's tmp dir. It is left running to
    the end of the process.
    """
    from odibi_core.engine.session import get_spark

    return get_spark(warehouse=tmp_path_factory.mktemp("odibi_spark"))


@pytest.fixture
def run_pipeline(request: pytest.FixtureRequest, tmp_path: Path):
    """``run_pipeline(path_or_steps, *, engine=None, inputs=None, params=None, select=None)``.

    Runs a pipeline file (or a list of steps), with ``inputs`` (data key -> frame) as its
    external data; every write goes under the test's tmp dir. Returns a ``RunOutcome``
    (``.outputs``, ``.output``, ``.lineage``, ``.result``, ``.targets``).
    """
    from odibi_core.testing.runner import run_pipeline as run

    def run_pipeline(path_or_steps: Any, **options: Any) -> Any:
        options.setdefault("engine", _engine_of(request))
        return run(path_or_steps, workdir=tmp_path / "odibi", spark=_spark(request), **options)

    return run_pipeline


@pytest.fixture
def run_step(request: pytest.FixtureRequest, tmp_path: Path):
    """``run_step(step_or_name, *, pipeline=None, inputs=None, engine=None, params=None)``.

    One step in isolation: a ``Step``, or the step of that name in the ``pipeline`` file;
    ``inputs`` holds every data key it reads. Returns a ``RunOutcome`` (``.output``).
    """
    from odibi_core.testing.runner import run_step as run

    def run_step(step_or_name: Any, **options: Any) -> Any:
        options.setdefault("engine", _engine_of(request))
        return run(step_or_name, workdir=tmp_path / "odibi", spark=_spark(request), **options)

    return run_step


def _engine_of(request: pytest.FixtureRequest) -> str | None:
    """The engine of a marked test (``odibi_engine``); otherwise the pipeline's own."""
    callspec = getattr(request.node, "callspec", None)
    return callspec.params.get("odibi_engine") if callspec is not None else None


def _spark(request: pytest.FixtureRequest):
    return lambda: request.getfixturevalue("odibi_spark")
