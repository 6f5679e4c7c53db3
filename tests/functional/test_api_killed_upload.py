"""An api killed in the middle of an upload leaves a temporary file; the next start of
the file store removes it (the image record is #10 item 3's upload leases)."""

import os
import signal

import pytest

from tests.functional.servers import wait_for

pytestmark = pytest.mark.functional


def test_the_temporary_file_of_a_killed_upload_is_removed_at_the_next_start(deploy):
    api = deploy("killed-upload")
    sock = api.connect()
    sock.sendall(
        b"POST /v1/images HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
        b"x-image-meta-name: cut\r\nx-image-meta-disk-format: raw\r\n"
        b"x-image-meta-container-format: bare\r\nContent-Length: 100000000\r\n\r\n"
        + b"x"
        * (4 << 20)
    )
    temps = wait_for(lambda: [n for n in api.files() if n.endswith(".tmp")], timeout=20)
    os.kill(api.api_pid, signal.SIGKILL)
    api.deployment.api.proc.wait(10)
    sock.close()
    assert [n for n in api.files() if n.endswith(".tmp")] == temps  # left behind
    api.deployment.api.start()
    assert [n for n in api.files() if n.endswith(".tmp")] == []
    assert "temporary file of an upload that was interrupted" in api.deployment.api.log()
