"""Image transfers with curl, one curl process per transfer; times are curl's own.

Uploads stream the file with `-T` (curl reads it as it sends): with its length as
Content-Length, or chunked with `Transfer-Encoding: chunked`. `--data-binary @file`
would load the whole file into curl's memory first, which at 1-4 GiB measures curl.
"""

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bench.gate import Gate

# the last line curl prints: status, seconds, bytes up, bytes down
WRITE_OUT = r"\n%{http_code} %{time_total} %{size_upload} %{size_download}"
CURL = ["curl", "-sS", "--noproxy", "*", "-w", WRITE_OUT]


@dataclass
class Transfer:
    status: int
    seconds: float
    size_up: int
    size_down: int
    body: str = ""
    exit_code: int = 0

    def throughput(self, size: int) -> float:
        """MiB/s of `size` bytes in this transfer's time."""
        return size / (1 << 20) / self.seconds


def _parse(stdout: str, exit_code: int) -> Transfer:
    body, _, last = stdout.rpartition("\n")
    status, seconds, up, down = last.split()
    return Transfer(int(status), float(seconds), int(up), int(down), body, exit_code)


def upload(api_url: str, path: Path, name: str, *, chunked: bool) -> Transfer:
    """POST /v1/images with the file as the image data; the body is glance's JSON answer."""
    headers = {
        "Content-Type": "application/octet-stream",
        "x-image-meta-name": name,
        "x-image-meta-disk-format": "raw",
        "x-image-meta-container-format": "bare",
        "x-image-meta-is-public": "true",
        "Expect": "",  # no 100-continue round trip, as python-glanceclient
    }
    if chunked:
        headers["Transfer-Encoding"] = "chunked"
    argv = [*CURL, "-X", "POST", "-T", str(path)]
    for key, value in headers.items():
        argv += ["-H", f"{key}:{' ' + value if value else ''}"]
    done = subprocess.run([*argv, f"{api_url}/v1/images"], capture_output=True, text=True)
    result = _parse(done.stdout, done.returncode)
    if result.status != 201:
        raise RuntimeError(f"upload of {path.name} answered {result.status}: {result.body[:500]}")
    return result


def uploaded_image(result: Transfer) -> dict:
    return json.loads(result.body)["image"]


def download(url: str) -> Transfer:
    done = subprocess.run([*CURL, "-o", "/dev/null", url], capture_output=True, text=True)
    return _parse(done.stdout, done.returncode)


@dataclass
class ParallelRun:
    wall: float  # seconds from the release of all clients to the exit of the last one
    transfers: list[Transfer]

    def errors(self, size: int) -> int:
        return sum(
            1 for t in self.transfers if t.exit_code or t.status != 200 or t.size_down != size
        )


def parallel_downloads(url: str, clients: int, workdir: Path) -> ParallelRun:
    """`clients` curl processes download `url` at once, released together by a Gate."""
    gate = Gate(workdir, clients)
    procs = [
        subprocess.Popen(
            [*CURL, "-o", "/dev/null", "-K", str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for path in gate.paths
    ]
    try:
        started = gate.release([f'url = "{url}"\n'] * clients)
        # curl's output is a single short line, so waiting in order cannot dead-lock on a
        # full pipe; the wall time ends when the last one is reaped
        outputs = [proc.communicate() for proc in procs]
        wall = time.monotonic() - started
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        gate.remove()
    transfers = [
        _parse(out, proc.returncode) if out.strip() else Transfer(0, 0.0, 0, 0, err, -1)
        for (out, err), proc in zip(outputs, procs, strict=True)
    ]
    return ParallelRun(wall, transfers)
