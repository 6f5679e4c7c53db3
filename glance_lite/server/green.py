"""eventlet's part outside the HTTP server: the monkey-patching, and its thread pool.

`monkey_patch()` is called once, first thing, by the console-script entry points of the
servers, before anything else is imported. `ThreadPool` is the offload (offload.py) a
server installs: blocking work runs on eventlet's pool of OS threads, so the hub keeps
serving.
"""

import os
from collections.abc import Callable
from typing import Any

import eventlet
from eventlet import tpool
from eventlet.greenthread import GreenThread


def monkey_patch() -> None:
    eventlet.monkey_patch()
    # psycopg 3 waits for PostgreSQL in C unless told otherwise, which would block the
    # whole worker during every query; its select() wait is green once patched.
    os.environ.setdefault("PSYCOPG_WAIT_FUNC", "wait_select")


class ThreadPool:
    """`offload(fn, *args)` waits, green, for fn run on the pool; `start_after(previous,
    fn, *args)` returns at once with a green thread whose wait() gives fn's result, or
    the first error of the chain, fn starting once `previous` (or None) has finished;
    `spawn(fn, *args)` runs fn in a green thread of its own."""

    def __call__(self, fn: Callable, *args: Any) -> Any:
        return tpool.execute(fn, *args)

    def start_after(self, previous, fn: Callable, *args: Any) -> GreenThread:
        def run():
            if previous is not None:
                previous.wait()
            return tpool.execute(fn, *args)

        return eventlet.spawn(run)

    def spawn(self, fn: Callable, *args: Any) -> GreenThread:
        return eventlet.spawn(fn, *args)
