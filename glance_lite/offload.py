"""Where blocking work runs: the hand-off that keeps a served process answering.

Hashing, big writes and fsync() block the thread that does them. Under the eventlet
server one OS thread serves every request of a worker, so that work goes to a pool of
other threads instead. Code that blocks takes an offload and calls it:

- `offload(fn, *args)` runs fn and returns its result (or raises its error);
- `offload.start_after(previous, fn, *args)` starts fn once `previous` (a job it
  returned before, or None) has finished, and returns a job at once; the job's
  `wait()` gives fn's result, or the first error of the chain;
- `offload.spawn(fn, *args)` runs fn alongside the caller, on the caller's own OS
  thread, and returns a job at once: for work that mostly waits on the network,
  which is green under the servers, so that several such waits overlap (its CPU
  work does not: it shares the thread with the caller).

`DIRECT` runs everything in place, in call order, so it needs no threads: tests and
tools use it. A server installs its thread pool with `use()` before it loads the apps,
which read `current()` once, in their factories.
"""

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Job(Protocol):
    def wait(self) -> Any: ...


class Offload(Protocol):
    def __call__(self, fn: Callable[..., T], *args: Any) -> T: ...

    def start_after(self, previous: Job | None, fn: Callable, *args: Any) -> Job: ...

    def spawn(self, fn: Callable, *args: Any) -> Job: ...


class Finished:
    """A job that already ran: wait() returns its result or raises its error."""

    def __init__(self, fn: Callable, *args: Any):
        self._result = self._error = None
        try:
            self._result = fn(*args)
        except BaseException as err:
            self._error = err

    def wait(self):
        if self._error is not None:
            raise self._error
        return self._result


class Direct:
    """Run blocking work right here. A job runs, through `self(...)`, when it is
    started: calls keep their order, so each one also comes after the `previous` it
    names. A subclass that changes __call__ sees every call but spawn's, which runs
    its fn as it is, at once."""

    def __call__(self, fn: Callable[..., T], *args: Any) -> T:
        return fn(*args)

    def start_after(self, previous: Job | None, fn: Callable, *args: Any) -> Finished:
        return Finished(self, fn, *args)

    def spawn(self, fn: Callable, *args: Any) -> Finished:
        return Finished(fn, *args)


DIRECT = Direct()
_current: Offload = DIRECT


def use(offload: Offload) -> None:
    """Make `offload` the one the apps loaded from now on use."""
    global _current
    _current = offload


def current() -> Offload:
    return _current
