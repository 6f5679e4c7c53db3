"""The servers' process tuning, checked in a process of its own: it is process-wide."""

import platform
import subprocess
import sys


def test_the_heap_keeps_its_slack_on_glibc():
    code = "from glance_lite.server import workers; print(workers.keep_heap_slack())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    expected = platform.libc_ver()[0] == "glibc"
    assert done.stdout.strip() == str(expected), done.stderr
