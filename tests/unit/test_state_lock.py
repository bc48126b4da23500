from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import pytest

from odibi_core.core.errors import StateError
from odibi_core.state.lock import DEFAULT_LOCK_TIMEOUT, lock_file_for, lock_timeout, table_lock

_HOLD_LOCK = textwrap.dedent(
    """
    import sys
    from odibi_core.state.lock import table_lock

    with table_lock(sys.argv[1], timeout=10):
        print("locked", flush=True)
        sys.stdin.read()  # hold the lock until the test closes stdin
    print("released", flush=True)
    """
)


def test_lock_file_sits_beside_the_table(tmp_path):
    table = tmp_path / "spark_catalog" / "odibi_state" / "odibi_audit"
    assert lock_file_for(table) == tmp_path.resolve() / "spark_catalog" / "odibi_state" / (
        "odibi_audit.lock"
    )


def test_lock_creates_its_folder_and_file_but_not_the_table(tmp_path):
    table = tmp_path / "wh" / "cat" / "schema" / "table"
    with table_lock(table, timeout=1):
        assert lock_file_for(table).is_file()
    assert not table.exists()


def test_threads_of_one_process_never_hold_the_lock_together(tmp_path):
    table = tmp_path / "odibi_audit"
    barrier = threading.Barrier(4)
    spans: list[tuple[float, float]] = []
    spans_lock = threading.Lock()

    def worker():
        barrier.wait()
        with table_lock(table, timeout=10):
            entered = time.monotonic()
            time.sleep(0.05)
            exited = time.monotonic()
        with spans_lock:
            spans.append((entered, exited))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(spans) == 4
    ordered = sorted(spans)
    for (_, previous_exit), (next_enter, _) in zip(ordered, ordered[1:]):
        assert next_enter >= previous_exit


def test_a_thread_times_out_while_another_thread_holds_the_lock(tmp_path):
    table = tmp_path / "odibi_runs"
    held = threading.Event()
    release = threading.Event()

    def holder():
        with table_lock(table, timeout=5):
            held.set()
            release.wait(5)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(5)
        started = time.monotonic()
        with pytest.raises(StateError) as caught, table_lock(table, timeout=0.2):
            pass
        assert time.monotonic() - started >= 0.2
        assert "another thread of this process is committing to it" in str(caught.value)
    finally:
        release.set()
        thread.join()
    with table_lock(table, timeout=1):
        assert lock_file_for(table).exists()


def test_another_process_holding_the_lock_excludes_this_one(tmp_path):
    table = tmp_path / "spark_catalog" / "odibi_state" / "odibi_audit"
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(table)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(StateError) as caught, table_lock(table, timeout=0.3):
            pass
        assert str(caught.value) == (
            f"timed out after 0.3s waiting for the lock on state table {table}: "
            f"another process is committing to it (lock file {lock_file_for(table)}); "
            "wait for that run to finish, or allow more time with ODIBI_STATE_LOCK_TIMEOUT"
        )
        child.stdin.close()
        assert child.stdout.readline().strip() == "released"
    finally:
        child.wait(10)
    assert child.returncode == 0
    entered = False
    with table_lock(table, timeout=1):
        entered = True
    assert entered


def test_waiting_for_another_process_succeeds_once_it_releases(tmp_path):
    table = tmp_path / "odibi_runs"
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(table)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "locked"
        started = time.monotonic()
        threading.Timer(0.3, child.stdin.close).start()
        with table_lock(table, timeout=10):
            waited = time.monotonic() - started
    finally:
        child.wait(10)
    assert 0.25 <= waited < 10


def test_no_lock_is_taken_for_catalog_tables(tmp_path):
    with table_lock(None, timeout=0), table_lock(None, timeout=0):
        entered_twice = True
    assert entered_twice
    assert list(tmp_path.iterdir()) == []


def test_timeout_comes_from_argument_then_environment_then_default(monkeypatch):
    monkeypatch.delenv("ODIBI_STATE_LOCK_TIMEOUT", raising=False)
    assert lock_timeout() == DEFAULT_LOCK_TIMEOUT == 120.0
    monkeypatch.setenv("ODIBI_STATE_LOCK_TIMEOUT", "7.5")
    assert lock_timeout() == 7.5
    assert lock_timeout(2) == 2
    monkeypatch.setenv("ODIBI_STATE_LOCK_TIMEOUT", "soon")
    with pytest.raises(StateError, match=r"ODIBI_STATE_LOCK_TIMEOUT='soon' is not a number"):
        lock_timeout()
