"""Metadata load: bench.metaclient processes released together by a Gate."""

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.gate import Gate


@dataclass
class ClientsRun:
    count: int
    wall: float  # from the first client's first request to the last client's last answer
    latencies: list[float]
    errors: int

    @property
    def rate(self) -> float:
        return self.count / self.wall


def run_clients(
    workdir: Path, clients: int, count: int, job: dict, *, prefix: str = "bench"
) -> ClientsRun:
    """Spread `count` calls of `job` over `clients` processes that start at once."""
    shares = [count // clients + (i < count % clients) for i in range(clients)]
    gate = Gate(workdir, clients)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.metaclient", str(path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for path in gate.paths
    ]
    try:
        jobs = [
            json.dumps({**job, "count": share, "prefix": f"{prefix}-{i}"})
            for i, share in enumerate(shares)
        ]
        gate.release(jobs)
        outputs = [proc.communicate()[0] for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        gate.remove()
    for proc in procs:
        if proc.returncode:
            raise RuntimeError(f"a metadata client failed with status {proc.returncode}")
    results = [json.loads(out) for out in outputs]
    return ClientsRun(
        count=count,
        wall=max(r["end"] for r in results) - min(r["start"] for r in results),
        latencies=[lat for r in results for lat in r["latencies"]],
        errors=sum(r["errors"] for r in results),
    )
