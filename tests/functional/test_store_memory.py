"""The file store's memory stays flat whatever the image size: an upload of 256 MiB in a
process of its own, its peak RSS read from the kernel."""

import os
import subprocess
import sys
import tempfile
import textwrap

RSS_SCRIPT = textwrap.dedent(
    """
    import sys
    from glance_lite.store.filesystem import FilesystemStore

    CHUNK = 64 * 1024
    TEMPLATE = bytes(range(256)) * (CHUNK // 256)

    def chunks():
        for i in range(256 * 1024 * 1024 // CHUNK):
            yield i.to_bytes(8, "big") + TEMPLATE[8:]  # a fresh object each time

    def status_kib(field):
        with open("/proc/self/status") as status:
            line = next(line for line in status if line.startswith(field + ":"))
        return int(line.split()[1])

    # VmHWM (peak RSS) starts afresh at exec, unlike getrusage's ru_maxrss, which
    # keeps the peak of the parent process that forked us.
    store = FilesystemStore(sys.argv[1])
    before = status_kib("VmRSS")
    result = store.add("big", chunks(), None)
    after = status_kib("VmHWM")
    print(after - before, result.size)
    """
)


def test_adding_256_mib_keeps_peak_memory_growth_under_32_mib(tmp_path):
    # tmpfs when there is one: the page cache is not the process's memory either way,
    # but there the final fsync costs nothing.
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else str(tmp_path)
    with tempfile.TemporaryDirectory(dir=base) as datadir:
        out = subprocess.run(
            [sys.executable, "-c", RSS_SCRIPT, datadir],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
    growth_kib, size = int(out[0]), int(out[1])
    assert size == 256 * 1024 * 1024
    assert growth_kib < 32 * 1024, f"peak RSS grew by {growth_kib} KiB"
