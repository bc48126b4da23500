"""Waits on the main thread end soon after a signal another thread received."""

import signal
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from odibi_core.core.waiting import SLICE_SECONDS, event_set, first_completed


class _Signalled(Exception):
    pass


@pytest.fixture
def sigusr1_raises():
    def handler(signum, frame):
        raise _Signalled()

    previous = signal.signal(signal.SIGUSR1, handler)
    yield
    signal.signal(signal.SIGUSR1, previous)


def _signal_own_thread_then_sleep(seconds: float) -> str:
    time.sleep(0.3)  # the main thread is waiting by then
    signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)
    time.sleep(seconds)
    return "slept"


def test_waiting_for_futures_ends_on_a_signal_a_worker_thread_received(sigusr1_raises):
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(_signal_own_thread_then_sleep, 2.0)
        started = time.monotonic()
        with pytest.raises(_Signalled):
            first_completed([future])
        assert time.monotonic() - started < 1.2  # not the 2.3 s the worker takes
        assert future.result() == "slept"


def test_waiting_for_an_event_ends_on_a_signal_a_worker_thread_received(sigusr1_raises):
    event = threading.Event()
    worker = threading.Thread(target=lambda: (_signal_own_thread_then_sleep(2.0), event.set()))
    worker.start()
    started = time.monotonic()
    with pytest.raises(_Signalled):
        event_set(event)
    assert time.monotonic() - started < 1.2
    worker.join()


def test_the_waits_return_what_the_plain_waits_return():
    done: Future = Future()
    done.set_result(1)
    assert first_completed([done, Future()]) == {done}
    event = threading.Event()
    started = time.monotonic()
    assert event_set(event, timeout=SLICE_SECONDS * 2.5) is False
    assert SLICE_SECONDS * 2.5 <= time.monotonic() - started < SLICE_SECONDS * 2.5 + 0.5
    event.set()
    assert event_set(event, timeout=0) is True
    assert event_set(event) is True
