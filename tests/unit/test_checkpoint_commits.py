"""Checkpoint rows of steps finishing during another step's commit go in one commit, and
each step returns only once its own rows are committed."""

from __future__ import annotations

import threading
import time

import pytest

from odibi_core.state.checkpoints import _GroupCommit


class PausedTable:
    """Records appends; the first one waits until released.

    A stand-in for DeltaStateTable: a real Delta commit cannot be held at a chosen moment,
    which is what shows the rows arriving meanwhile being grouped.
    """

    def __init__(self, *, fail: bool = False):
        self.appends: list[tuple[str, list[str]]] = []
        self.first_started = threading.Event()
        self.release = threading.Event()
        self.fail = fail

    def append(self, rows, *, txn_app_id, txn_version):
        assert txn_version == 0
        if not self.appends:
            self.first_started.set()
            assert self.release.wait(10)
        self.appends.append((txn_app_id, [row["step"] for row in rows]))
        if self.fail and len(self.appends) == 2:
            raise RuntimeError("commit failed")


def _rows(step):
    return [{"step": step, "execution_id": "run.1"}]


def _commit_in_thread(commits, step, returned, errors):
    def run():
        try:
            commits.commit(step, _rows(step))
            returned.append(step)
        except RuntimeError as exc:
            errors.append((step, str(exc)))

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _wait_until(condition):
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


@pytest.mark.parametrize("fail", [False, True])
def test_rows_arriving_during_a_commit_share_the_next_one(fail):
    table = PausedTable(fail=fail)
    commits = _GroupCommit(table, prefix="odibi:checkpoint:p")
    returned, errors = [], []
    first = _commit_in_thread(commits, "a", returned, errors)
    assert table.first_started.wait(10)
    later = [_commit_in_thread(commits, step, returned, errors) for step in ("c", "b")]
    _wait_until(lambda: len(commits._waiting) == 2)
    assert returned == []  # nobody returns before their rows are committed

    table.release.set()
    for thread in (first, *later):
        thread.join(10)
    assert table.appends == [
        ("odibi:checkpoint:p:run.1:a", ["a"]),
        ("odibi:checkpoint:p:run.1:b+c", ["c", "b"]),
    ]
    if fail:  # both steps of the failed commit see its error; the first step returned
        assert (returned, sorted(errors)) == (
            ["a"],
            [("b", "commit failed"), ("c", "commit failed")],
        )
    else:
        assert sorted(returned) == ["a", "b", "c"] and errors == []
