"""glance-api streams image data: its resident memory does not grow with the image size.
Uploads and downloads of 16 MiB and 2 GiB, each phase's peak read from the kernel's
high-water mark (VmHWM, reset through clear_refs before the phase): polling VmRSS missed
the peak of a 16 MiB round trip, which lasts a fraction of a second, now and then."""

import hashlib
import os
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.functional

MIB = 1 << 20
GROWTH_LIMIT = 16 * MIB
PEAKS_APART = 5 * MIB


def status_bytes(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field}")


def reset_peak(pid: int) -> None:
    """VmHWM back to the current RSS (Linux >= 4.0); skip where that is not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError as err:
        pytest.skip(f"cannot reset the peak RSS of the api: {err}")


def round_trip(client, size_mib: int) -> None:
    piece = os.urandom(MIB)
    sent = hashlib.md5()

    def pieces():
        """The image's bytes, a MiB at a time, each MiB other than the one before."""
        for i in range(size_mib):
            yield piece[i % 997 :] + piece[: i % 997]

    def body():
        for chunk in pieces():
            sent.update(chunk)
            yield chunk

    image = client.upload(body(), name=f"{size_mib}MiB")
    assert image["size"] == size_mib * MIB
    assert image["checksum"] == sent.hexdigest()
    with client.get(f"/images/{image['id']}", stream=True) as resp:
        assert resp.status_code == 200
        assert same_bytes(resp.iter_content(MIB), pieces())
    assert client.delete(f"/images/{image['id']}").status_code == 200


def same_bytes(received, expected) -> bool:
    """Whether the chunks `received` make the same bytes as the MiB pieces `expected`:
    compared as they come, which costs a fraction of hashing them again."""
    got = bytearray()
    for chunk in received:
        got += chunk
        while len(got) >= MIB:
            if got[:MIB] != next(expected, b""):
                return False
            del got[:MIB]
    return not got and next(expected, None) is None


def test_memory_stays_flat_whatever_the_image_size(deploy):
    client = deploy("memory")
    round_trip(client, 4)  # warm up every code path once
    pid = client.api_pid
    time.sleep(0.5)
    idle = status_bytes(pid, "VmRSS")
    peaks = {}
    for size in (16, 2048):
        reset_peak(pid)
        round_trip(client, size)
        peaks[size] = status_bytes(pid, "VmHWM")
    small, large = peaks[16], peaks[2048]
    summary = f"idle {idle >> 10} KiB, 16 MiB peak {small >> 10} KiB, 2 GiB {large >> 10}"
    assert small - idle < GROWTH_LIMIT, summary
    assert large - idle < GROWTH_LIMIT, summary
    assert abs(large - small) < PEAKS_APART, summary
