"""The Connect suite's fixtures: one local Spark Connect server per pytest process.

``SparkSession.builder.remote`` puts the whole Python process in Connect mode, so this
suite runs in a pytest process of its own (``pytest -m connect``; ``make test`` does).
Here ``spark`` is a remote session of that server, replacing the root conftest's local
classic session.
"""

from __future__ import annotations

import os

import pytest

from tests.connect.server import start_server
from tests.integration.conftest import seed_data  # noqa: F401 - the seed's data, shared


@pytest.fixture(scope="session")
def connect_url(tmp_path_factory):
    """The server's URL. ODIBI_TEST_CONNECT_URL points the suite at a server already
    running (one start-up less while working on the suite); otherwise one is started."""
    given = os.environ.get("ODIBI_TEST_CONNECT_URL")
    if given:
        yield given
        return
    server = start_server(tmp_path_factory.mktemp("connect"))
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def spark(connect_url):
    from pyspark.sql import SparkSession

    os.environ["SPARK_REMOTE"] = connect_url  # the CLI path picks the server up too
    session = SparkSession.builder.remote(connect_url).getOrCreate()
    yield session
    session.stop()
    os.environ.pop("SPARK_REMOTE", None)


def pytest_collection_modifyitems(config, items):
    """Keep the Connect tests out of a run that also holds other tests.

    A remote session switches the whole process to Connect mode, which the other tests'
    classic session cannot share: those tests run with ``-m connect`` on their own.
    """
    connect = [item for item in items if item.get_closest_marker("connect") is not None]
    if not connect or len(connect) == len(items):
        return
    chosen = set(map(id, connect))
    items[:] = [item for item in items if id(item) not in chosen]
    config.hook.pytest_deselected(items=connect)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"{len(connect)} Spark Connect tests left out: they run in a pytest process of "
            "their own, with -m connect (make test does)"
        )
