"""Start many client processes at the same instant, after their start-up costs are paid.

Each client is started with its own FIFO to read its job from (curl: `-K FIFO`, our Python
client: the job as JSON). Opening a FIFO blocks until a writer comes, so every client
process waits, fully loaded, at that open. `release()` waits until each FIFO has its
reader, then writes all the jobs in one tight loop: the measured wall time starts there.
"""

import errno
import os
import time
from pathlib import Path


class Gate:
    def __init__(self, workdir: Path, count: int):
        workdir.mkdir(parents=True, exist_ok=True)
        self.paths = [workdir / f"gate-{i}.fifo" for i in range(count)]
        for path in self.paths:
            path.unlink(missing_ok=True)
            os.mkfifo(path)

    def release(self, jobs: list[str], timeout: float = 60.0) -> float:
        """Hand job i to client i once every client waits; return the monotonic release time."""
        fds = [self._open_when_read(path, time.monotonic() + timeout) for path in self.paths]
        started = time.monotonic()
        for fd, job in zip(fds, jobs, strict=True):
            os.write(fd, job.encode())
            os.close(fd)
        return started

    def remove(self) -> None:
        for path in self.paths:
            path.unlink(missing_ok=True)

    @staticmethod
    def _open_when_read(path: Path, deadline: float) -> int:
        while True:
            try:
                return os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as err:  # ENXIO: no reader has opened it yet
                if err.errno != errno.ENXIO or time.monotonic() > deadline:
                    raise
                time.sleep(0.002)
