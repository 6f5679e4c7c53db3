"""The servers' thread pool (server/green.py): chains of jobs on eventlet's OS threads."""

import threading
import time

import pytest

from glance_lite.server.green import ThreadPool


def test_a_chain_runs_in_order_and_gives_each_result():
    pool = ThreadPool()
    ran = []

    def step(name: str, pause: float) -> str:
        time.sleep(pause)  # not green here: a pool thread's own wait
        ran.append(name)
        return name.upper()

    first = pool.start_after(None, step, "a", 0.05)
    second = pool.start_after(first, step, "b", 0.0)
    third = pool.start_after(second, step, "c", 0.0)
    assert [third.wait(), first.wait(), second.wait()] == ["C", "A", "B"]
    assert ran == ["a", "b", "c"]


def test_the_next_job_starts_while_the_callers_thread_is_busy():
    """One job after another within the pool: nothing waits for the hub, which runs
    only when the caller's (green) thread lets it."""
    pool = ThreadPool()
    stamps: dict[str, float] = {}

    def stamp(name: str) -> None:
        stamps[name] = time.monotonic()

    first = pool.start_after(None, stamp, "a")
    second = pool.start_after(first, stamp, "b")
    busy_until = time.monotonic() + 0.3
    time.sleep(0.3)  # the OS thread of the hub, blocked: no green switch can happen
    second.wait()
    assert stamps["b"] < busy_until


def test_an_error_ends_the_chain_and_every_later_job_gives_it():
    pool = ThreadPool()
    ran = []
    failure = OSError(28, "No space left on device")

    def fail() -> None:
        raise failure

    first = pool.start_after(None, ran.append, "a")
    second = pool.start_after(first, fail)
    third = pool.start_after(second, ran.append, "c")
    first.wait()
    for job in (second, third):
        with pytest.raises(OSError) as caught:
            job.wait()
        assert caught.value is failure
    assert ran == ["a"]


def test_a_job_runs_on_another_os_thread():
    pool = ThreadPool()
    assert pool.start_after(None, threading.get_ident).wait() != threading.get_ident()
    assert pool(threading.get_ident) != threading.get_ident()
