"""Root test fixtures. One Delta-enabled local SparkSession serves the whole test session.

The fixture is only created when a test asks for it, so unit tests never start a JVM.
"""

from __future__ import annotations

import os
import sys

import pytest


@pytest.fixture(scope="session")
def spark_warehouse(tmp_path_factory):
    return tmp_path_factory.mktemp("warehouse")


@pytest.fixture(scope="session")
def spark(spark_warehouse):
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    os.environ["ODIBI_WAREHOUSE"] = str(spark_warehouse)
    from odibi_core.engine import session

    spark = session.get_spark(warehouse=spark_warehouse)
    yield spark
    spark.stop()
    session._session = None


def pytest_collection_modifyitems(config, items):
    # Spark tests run after the fast ones, so a broken unit test fails quickly.
    items.sort(key=lambda item: item.get_closest_marker("spark") is not None)
