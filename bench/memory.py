"""Resident memory of the measured servers, per process, from /proc.

A `RssWatch` covers one measured operation: it reads each process's VmRSS just before
(idle) and resets the kernel's peak counter (VmHWM, via clear_refs); the peak is VmHWM
read when the operation ends. Only where a reset is refused does a thread of the bench
process sample VmRSS every few milliseconds instead: reading /proc that often costs the
measured servers time (0.5 ms of a 9 ms download of 16 MiB here), which the ceilings,
measured unwatched, would not pay.
"""

import threading
from dataclasses import dataclass, field

SAMPLE_EVERY = 0.01  # seconds


def status_kib(pid: int, key: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak(pid: int) -> bool:
    """Set VmHWM back to the current RSS (Linux >= 4.0); False when not allowed."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


@dataclass
class ProcessRss:
    pid: int
    role: str  # "parent" or "worker"
    idle_mib: float
    peak_mib: float = 0.0

    @property
    def growth_mib(self) -> float:
        return self.peak_mib - self.idle_mib


@dataclass
class RssWatch:
    """Usage: `with RssWatch({"glance-api": pids, ...}) as watch: ...`, then watch.result."""

    services: dict[str, list[int]]  # service -> [parent pid, worker pids...]
    result: dict[str, list[ProcessRss]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._peaks: dict[int, int] = {}
        self._hwm_ok: dict[int, bool] = {}
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _pids(self) -> list[int]:
        return [pid for pids in self.services.values() for pid in pids]

    def __enter__(self) -> "RssWatch":
        for name, pids in self.services.items():
            self.result[name] = [
                ProcessRss(
                    pid, "parent" if i == 0 else "worker", (status_kib(pid, "VmRSS") or 0) / 1024
                )
                for i, pid in enumerate(pids)
            ]
        for pid in self._pids():
            self._peaks[pid] = 0
            self._hwm_ok[pid] = reset_peak(pid)
        if not all(self._hwm_ok.values()):
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        for processes in self.result.values():
            for proc in processes:
                peak_kib = self._peaks[proc.pid]
                if self._hwm_ok[proc.pid]:
                    peak_kib = max(peak_kib, status_kib(proc.pid, "VmHWM") or 0)
                proc.peak_mib = max(peak_kib / 1024, proc.idle_mib)

    def _sample(self) -> None:
        pids = [pid for pid in self._pids() if not self._hwm_ok[pid]]
        while not self._stop.is_set():
            for pid in pids:
                rss = status_kib(pid, "VmRSS")
                if rss is not None and rss > self._peaks[pid]:
                    self._peaks[pid] = rss
            self._stop.wait(SAMPLE_EVERY)

    def worst(self, service: str, attr: str) -> float:
        """The largest `attr` (idle_mib, peak_mib, growth_mib) over the service's processes."""
        return max(getattr(proc, attr) for proc in self.result[service])
