"""eventlet's part outside the HTTP server: the monkey-patching, and its thread pool.

`monkey_patch()` is called once, first thing, by the console-script entry points of the
servers, before anything else is imported. `ThreadPool` is the offload (offload.py) a
server installs: blocking work runs on eventlet's pool of OS threads, so the hub keeps
serving.
"""

import logging
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
    _native_logging_locks()
    # psycopg 3 waits for PostgreSQL in C unless told otherwise, which would block the
    # whole worker during every query; its select() wait is green once patched.
    os.environ.setdefault("PSYCOPG_WAIT_FUNC", "wait_select")


def _native_logging_locks() -> None:
    """Logging's locks as the OS's own, not eventlet's green ones: the pool's threads
    log too (a cache fill's outcome, a failed job), and a green lock that an OS thread
    other than the hub's waits for breaks the hub once it is released ("Cannot switch
    to a different thread": the request then hangs, and the process ignores SIGTERM).
    A log record's write holds one for microseconds and never switches."""
    logging._lock = _os_threading.RLock()  # the module's, which eventlet made green
    create_lock = logging.Handler.createLock

    def create_native_lock(handler: logging.Handler) -> None:
        create_lock(handler)  # which also registers it for re-initialization at fork
        handler.lock = _os_threading.RLock()

    logging.Handler.createLock = create_native_lock
    for ref in logging._handlerList:  # handlers made before this
        handler = ref()
        if handler is not None:
            handler.lock = _os_threading.RLock()


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
