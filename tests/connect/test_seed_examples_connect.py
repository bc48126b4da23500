"""The seed's examples, as written, on the Spark engine over Spark Connect.

The example functions are those of tests/integration/test_seed_examples.py. Their
``Orchestrator`` is given the remote session as ``spark=`` (the one argument the examples
leave out), so each runs through Spark Connect exactly as it runs on a classic session.
"""

from __future__ import annotations

import functools

import pytest

from odibi_core.orchestrator import Orchestrator
from tests.integration import test_seed_examples as seed
from tests.integration.test_seed_examples import (  # noqa: F401 - collected here as well
    test_built_in_hook_helpers,
    test_example_1_view_tracker_snapshots,
    test_example_2_custom_error_alert_hook,
    test_example_3_export_and_visualize_lineage,
    test_exercise_1_track_schema_changes,
    test_exercise_2_node_timing_hook,
    test_exercise_3_parallel_reads,
    test_registering_hooks,
    test_using_tracker,
)

pytestmark = pytest.mark.connect


@pytest.fixture
def engine(spark, monkeypatch):
    """The examples' engine: Spark, with the remote session as the run's session."""
    monkeypatch.setattr(seed, "Orchestrator", functools.partial(Orchestrator, spark=spark))
    return "spark"
