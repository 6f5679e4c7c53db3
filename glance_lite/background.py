"""Work that outlives the request that started it (a copy-from's fetch), tracked.

`start` runs the work in a thread of its own (a green thread in the servers, which
monkey-patch threading) and remembers it until it ends. A server that stops gracefully
calls `drain` once it has finished its in-flight requests: it waits for the work still
running, up to what is left of graceful_shutdown_timeout, and ends what it cannot wait
for with the work's own `abandon` callback (a copy sets its image killed, saying why in
the log), so that nothing started here is dropped silently when the process exits.

One registry per process (each forked worker has its own), as offload.py's is: the
server that drains knows nothing of what the work is.
"""

import dataclasses
import logging
import threading
import time
from collections.abc import Callable

LOG = logging.getLogger(__name__)


@dataclasses.dataclass(eq=False)
class Task:
    name: str
    thread: threading.Thread
    abandon: Callable[[], None]


_running: set[Task] = set()
_lock = threading.Lock()


def start(name: str, fn: Callable[[], None], abandon: Callable[[], None]) -> None:
    """Run `fn` in the background; `abandon()` is called instead of waiting for its end
    if the process must stop first. `name` says what it is in the log."""

    def run():
        try:
            fn()
        except Exception:
            LOG.exception("%s failed", name)
        finally:
            with _lock:
                _running.discard(task)

    task = Task(name, threading.Thread(target=run, name=name, daemon=True), abandon)
    with _lock:
        _running.add(task)
    task.thread.start()


def running() -> int:
    with _lock:
        return len(_running)


def drain(timeout: float | None) -> None:
    """Wait for the running work, at most `timeout` seconds (None: as long as it takes);
    abandon what is still running then."""
    with _lock:
        tasks = list(_running)
    if not tasks:
        return
    LOG.info("waiting for %d background task(s) before exiting", len(tasks))
    deadline = None if timeout is None else time.monotonic() + timeout
    for task in tasks:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        task.thread.join(left)
    for task in tasks:
        if task.thread.is_alive():
            LOG.error("%s: still running as the process exits; abandoned", task.name)
            try:
                task.abandon()
            except Exception:
                LOG.exception("%s: could not be abandoned cleanly", task.name)
