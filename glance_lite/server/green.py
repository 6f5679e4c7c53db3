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
from eventlet import patcher, tpool
from eventlet.greenthread import GreenThread

# the OS's own, for waits between pool threads, which must not go through the hub
_os_threading = patcher.original("threading")


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

    def start_after(self, previous: "Chained | None", fn: Callable, *args: Any) -> "Chained":
        job = Chained(previous, fn, args)
        eventlet.sleep(0)  # its green thread hands it to the pool now
        return job

    def spawn(self, fn: Callable, *args: Any) -> GreenThread:
        return eventlet.spawn(fn, *args)


class Chained:
    """A job of a chain on the pool: its pool thread waits for the job before it, then
    runs fn (or takes that job's error as its own). From one job to the next of a chain
    nothing goes through the hub, which may be busy: an upload's green thread receiving
    a burst of its body runs on without switching, and the hash of the next block would
    wait for it (a quarter of an upload's time, measured)."""

    def __init__(self, previous: "Chained | None", fn: Callable, args: tuple):
        self.over = _os_threading.Event()
        self.error: BaseException | None = None
        self._green = eventlet.spawn(tpool.execute, self._run, previous, fn, args)

    def _run(self, previous: "Chained | None", fn: Callable, args: tuple) -> Any:
        try:
            if previous is not None:
                previous.over.wait()
                if previous.error is not None:
                    raise previous.error
            return fn(*args)
        except BaseException as err:
            self.error = err
            raise
        finally:
            self.over.set()

    def wait(self) -> Any:
        return self._green.wait()
