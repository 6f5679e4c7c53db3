"""glance-api streams image data: its resident memory does not grow with the image size
(STYLE.md "Stream, never buffer"). Uploads and downloads of 16 MiB and 2 GiB (the sizes
the api issue names) while the api process's VmRSS is sampled every 50 ms."""

import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.functional

MIB = 1 << 20
GROWTH_LIMIT = 16 * MIB
PEAKS_APART = 5 * MIB


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class Sampler(threading.Thread):
    """Records the process's VmRSS every 50 ms, tagged with the current phase."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.phase = "idle"
        self.samples: dict[str, list[int]] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.samples.setdefault(self.phase, []).append(rss(self.pid))
            time.sleep(0.05)

    def peak(self, phase: str) -> int:
        return max(self.samples[phase])


def round_trip(client, size_mib: int) -> None:
    piece = os.urandom(MIB)
    sent = hashlib.md5()

    def body():
        for i in range(size_mib):
            chunk = piece[i % 997 :] + piece[: i % 997]
            sent.update(chunk)
            yield chunk

    image = client.upload(body(), name=f"{size_mib}MiB")
    assert image["size"] == size_mib * MIB
    assert image["checksum"] == sent.hexdigest()
    got = hashlib.md5()
    with client.get(f"/images/{image['id']}", stream=True) as resp:
        assert resp.status_code == 200
        for chunk in resp.iter_content(MIB):
            got.update(chunk)
    assert got.hexdigest() == sent.hexdigest()
    assert client.delete(f"/images/{image['id']}").status_code == 200


def test_memory_stays_flat_whatever_the_image_size(deploy):
    client = deploy("memory")
    round_trip(client, 4)  # warm up every code path once
    sampler = Sampler(client.api_pid)
    sampler.start()
    try:
        time.sleep(0.5)
        for size in (16, 2048):
            sampler.phase = f"{size}"
            round_trip(client, size)
    finally:
        sampler.done.set()
        sampler.join()
    idle = sampler.peak("idle")
    small, large = sampler.peak("16"), sampler.peak("2048")
    summary = f"idle {idle >> 10} KiB, 16 MiB peak {small >> 10} KiB, 2 GiB {large >> 10}"
    assert small - idle < GROWTH_LIMIT, summary
    assert large - idle < GROWTH_LIMIT, summary
    assert abs(large - small) < PEAKS_APART, summary
