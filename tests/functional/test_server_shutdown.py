"""A stop never starts a worker, and every worker is gone within
graceful_shutdown_timeout, whether SIGTERM reaches the supervisor alone or the whole
process group at once (as systemd and glance-control send it)."""

import os
import signal
import socket
import time
from pathlib import Path

import pytest

from tests.functional.servers import (
    ServerProcess,
    api_conf,
    db_sync,
    registry_conf,
    wait_for,
)

pytestmark = pytest.mark.functional

GRACE = 3
ROUNDS = 4


def children(pid: int) -> set[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return {int(p) for p in text.split()}


def group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def log_size(server: ServerProcess) -> int:
    return server.log_file.stat().st_size if server.log_file.exists() else 0


def stop_and_check(server: ServerProcess, workers: int, whole_group: bool, mark: int) -> None:
    """Stop `server` (its log started at `mark`) once its workers serve; check the stop."""
    pid = server.proc.pid
    wait_for(lambda: len(children(pid)) == workers)
    wait_for(lambda: server.log_file.read_bytes()[mark:].count(b" serving") >= workers)
    log_before = len(server.log_file.read_bytes())
    if whole_group:
        os.killpg(pid, signal.SIGTERM)
    else:
        os.kill(pid, signal.SIGTERM)
    assert server.proc.wait(GRACE + 10) == 0
    wait_for(lambda: group_gone(pid), timeout=GRACE + 5)
    said = server.log_file.read_bytes()[log_before:].decode(errors="replace")
    assert "starting another" not in said, said
    assert " serving" not in said, said


def start_and_stop(name: str, conf: Path, workdir: Path, workers: int, whole_group: bool):
    """ROUNDS times: start the service, stop it, check the stop."""
    for _ in range(ROUNDS):
        server = ServerProcess(name, conf, workdir)
        mark = log_size(server)
        server.start()
        try:
            stop_and_check(server, workers, whole_group, mark)
        finally:
            if not group_gone(server.proc.pid):
                os.killpg(server.proc.pid, signal.SIGKILL)


@pytest.mark.parametrize("whole_group", [True, False], ids=["group", "supervisor"])
def test_the_registry_stops_cleanly(tmp_path, whole_group):
    conf = registry_conf(tmp_path, workers=3, graceful_shutdown_timeout=GRACE)
    db_sync(conf)
    start_and_stop("glance-registry", conf, tmp_path, 3, whole_group)


def test_the_api_stops_cleanly_when_the_group_gets_sigterm(tmp_path):
    registry = ServerProcess("glance-registry", registry_conf(tmp_path, workers=0), tmp_path)
    db_sync(registry.conf_file)
    registry.start()
    api_dir = tmp_path / "api"
    api_dir.mkdir()
    conf = api_conf(api_dir, registry.port, workers=2, graceful_shutdown_timeout=GRACE)
    try:
        start_and_stop("glance-api", conf, api_dir, 2, True)
    finally:
        registry.stop()


def test_a_request_that_never_ends_does_not_hold_a_group_stop_past_the_grace(tmp_path):
    conf = registry_conf(tmp_path, workers=2, graceful_shutdown_timeout=GRACE)
    db_sync(conf)
    server = ServerProcess("glance-registry", conf, tmp_path).start()
    try:
        wait_for(lambda: len(children(server.proc.pid)) == 2)
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"POST /images HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{")
            time.sleep(0.3)  # a worker is reading the body, which never comes
            start = time.monotonic()
            os.killpg(server.proc.pid, signal.SIGTERM)
            assert server.proc.wait(GRACE + 10) == 0
            wait_for(lambda: group_gone(server.proc.pid), timeout=5)
            assert time.monotonic() - start < GRACE + 3
        assert "requests still in flight" in server.log()
    finally:
        if not group_gone(server.proc.pid):
            os.killpg(server.proc.pid, signal.SIGKILL)
