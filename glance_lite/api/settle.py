"""Finishing, in the background, what a registry outage left undecided.

A registry call that timed out may still be applied: a stopped registry holds the
request unread in its socket and serves it when it runs again; a partition may have
let the request through and lost the answer. glance-api answers its client 503 at
once, and cannot tell then what the image's record will be. What must follow (keep or
remove the bytes an upload stored, set the image killed, finish a delete) is handed to
a `Settler`: it runs one step in a background thread, again and again while the
registry is unavailable, until the step says it is done. The steps themselves belong
to the image lifecycle (repository.py) and are written so that no late request can
undo what they decide (docs/api.md, "A registry that stops answering").
"""

import logging
import threading
import time
from collections.abc import Callable

from glance_lite import exceptions

LOG = logging.getLogger(__name__)

# Seconds between two attempts: short at first, then this the longest.
FIRST_DELAY = 0.5
LONGEST_DELAY = 10.0


class Settler:
    def __init__(
        self,
        *,
        first_delay: float = FIRST_DELAY,
        longest_delay: float = LONGEST_DELAY,
        start: Callable[[Callable[[], None]], None] | None = None,
    ):
        self.first_delay = first_delay
        self.longest_delay = longest_delay
        self._start = start or in_background

    def settle(self, what: str, step: Callable[[], bool]) -> None:
        """Run `step` until it returns True, in the background; `what` names it in logs.

        `step` raises ServiceUnavailable while the registry cannot answer (tried again
        later); False asks for another attempt at once (the record changed under it).
        """
        LOG.warning("%s: the registry did not answer; settling it in the background", what)
        self._start(lambda: self._run(what, step))

    def _run(self, what: str, step: Callable[[], bool]) -> None:
        delay = self.first_delay
        while True:
            try:
                if step():
                    LOG.info("%s: settled", what)
                    return
                time.sleep(self.first_delay)  # the record moved under the step: look again
                continue
            except exceptions.ServiceUnavailable as err:
                LOG.info("%s: registry still unavailable (%s), next try in %.1fs", what, err, delay)
            except Exception:
                LOG.exception("%s: could not be settled", what)
                return
            time.sleep(delay)
            delay = min(delay * 2, self.longest_delay)


def in_background(fn: Callable[[], None], name: str = "glance-lite-settle") -> None:
    """Run `fn` in a daemon thread: a green thread in the servers, which monkey-patch
    threading."""
    threading.Thread(target=fn, name=name, daemon=True).start()
