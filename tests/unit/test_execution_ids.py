"""Execution ids: ``RUN_ID.ATTEMPT``, parsed the same way by the resume, the audit and the
job's record task."""

import pytest

from odibi_core.core.execution_ids import attempt_of, execution_id, run_id_of


@pytest.mark.parametrize(
    ("text", "run_id", "attempt"),
    [
        ("20261129T100000_abc123.2", "20261129T100000_abc123", 2),
        ("job-881.10", "job-881", 10),
        ("881", "881", 0),  # a Databricks job run id alone is a run id
        ("release.v2", "release.v2", 0),  # a dot without a number is part of the run id
        (".3", ".3", 0),  # no run id before the dot
    ],
)
def test_a_run_id_and_its_attempt_are_read_back_from_an_execution_id(text, run_id, attempt):
    assert run_id_of(text) == run_id
    assert attempt_of(text) == attempt


def test_an_execution_of_another_run_counts_as_no_attempt_of_this_one():
    assert execution_id("r1", 3) == "r1.3"
    assert attempt_of("r1.3", run_id="r1") == 3
    assert attempt_of("r10.3", run_id="r1") == 0
    assert attempt_of(None) == 0
