"""Upload leases through the real servers: an upload whose api died ends `killed` once
its lease expired, with no temporary file left; a live upload, on this node or another
one sharing the registry (and here the data directory), is never swept, even while
the other node restarts and sweeps every second."""

import hashlib
import os
import signal
import socket
import threading
import time
import types
import uuid
from pathlib import Path

import pytest
import requests

from tests.functional.conftest import ApiClient, read_response
from tests.functional.servers import ServerProcess, api_conf, wait_for

pytestmark = pytest.mark.functional

LEASE = 3  # seconds: renewed every second while an upload streams
SWEEP = 1  # seconds between sweeps of each api process
FAST_LEASES = {"upload_lease_duration": LEASE, "upload_lease_sweep_interval": SWEEP}


def upload_head(image_id: str, size: int) -> bytes:
    return (
        "POST /v1/images HTTP/1.1\r\nHost: test\r\n"
        "Content-Type: application/octet-stream\r\n"
        f"x-image-meta-id: {image_id}\r\nx-image-meta-name: leased\r\n"
        "x-image-meta-disk-format: raw\r\nx-image-meta-container-format: bare\r\n"
        f"Content-Length: {size}\r\n\r\n"
    ).encode()


def temps(datadir) -> list[str]:
    return sorted(name for name in os.listdir(datadir) if name.endswith(".tmp"))


def status(api: ApiClient, image_id: str) -> str | None:
    """The image's status as the registry has it (the api's port changes as it restarts)."""
    resp = requests.get(f"{api.deployment.registry.url}/images/{image_id}", timeout=10)
    return resp.json()["image"]["status"] if resp.status_code == 200 else None


class SlowUpload:
    """An upload of `pieces` pieces sent `pause` seconds apart from a thread (so that it
    lasts longer than a lease); `result()` is the response head and body."""

    def __init__(self, port: int, *, pieces: int, pause: float, piece_size: int = 64 * 1024):
        self.image_id = str(uuid.uuid4())
        self.data = os.urandom(piece_size) * pieces
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.sock.sendall(upload_head(self.image_id, len(self.data)))
        self._piece_size = piece_size
        self._pause = pause
        self._answer: tuple[bytes, bytes] | None = None
        self._thread = threading.Thread(target=self._send, daemon=True)
        self._thread.start()

    def _send(self) -> None:
        for start in range(0, len(self.data), self._piece_size):
            self.sock.sendall(self.data[start : start + self._piece_size])
            time.sleep(self._pause)
        self._answer = read_response(self.sock, 60)
        self.sock.close()

    def result(self, timeout: float = 90) -> tuple[bytes, bytes]:
        self._thread.join(timeout)
        assert self._answer is not None, "no answer to the upload"
        return self._answer

    @property
    def checksum(self) -> str:
        return hashlib.md5(self.data).hexdigest()


def test_an_upload_whose_api_was_killed_ends_killed_without_a_temporary_file(deploy):
    api = deploy("lease-killed", **FAST_LEASES)
    image_id = str(uuid.uuid4())
    sock = api.connect()
    sock.sendall(upload_head(image_id, 100_000_000) + b"x" * (4 << 20))
    wait_for(lambda: temps(api.datadir), timeout=20)
    assert status(api, image_id) == "saving"
    os.kill(api.api_pid, signal.SIGKILL)
    api.deployment.api.proc.wait(10)
    sock.close()
    killed_at = time.monotonic()
    api.deployment.api.start()
    # its lease runs out within LEASE seconds of the kill, and a sweep follows
    wait_for(lambda: status(api, image_id) == "killed", timeout=LEASE + 3 * SWEEP + 5)
    assert time.monotonic() - killed_at < LEASE + 3 * SWEEP + 5
    assert temps(api.datadir) == []
    assert not (api.datadir / image_id).exists()
    assert f"image {image_id} killed: its upload" in api.api_log()


def test_a_killed_worker_s_upload_is_swept_by_the_worker_started_in_its_place(deploy):
    api = deploy("lease-worker", workers=2, **FAST_LEASES)
    image_id = str(uuid.uuid4())
    sock = api.connect()
    sock.sendall(upload_head(image_id, 100_000_000) + b"x" * (4 << 20))
    wait_for(lambda: temps(api.datadir), timeout=20)
    holder = next(
        pid
        for pid in worker_pids(api.api_pid)
        if any(f".{image_id}." in os.readlink(f"/proc/{pid}/fd/{fd}") for fd in fds(pid))
    )
    os.kill(holder, signal.SIGKILL)
    sock.close()
    wait_for(lambda: status(api, image_id) == "killed", timeout=LEASE + 3 * SWEEP + 10)
    wait_for(lambda: temps(api.datadir) == [], timeout=10)


def worker_pids(parent: int) -> list[int]:
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return [int(pid) for pid in children]


def fds(pid: int) -> list[str]:
    try:
        return os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return []


@pytest.fixture(scope="module")
def two_nodes(deploy, tmp_path_factory):
    """Node A (the deployment's api) and node B, a second api on the same registry and
    the same data directory: (a, b) as ApiClients."""
    a = deploy("lease-two-nodes", node_id="node-a", **FAST_LEASES)
    workdir = tmp_path_factory.mktemp("node-b")
    conf = api_conf(
        workdir,
        a.deployment.registry.port,
        node_id="node-b",
        store_datadir=a.datadir,
        **FAST_LEASES,
    )
    b_server = ServerProcess("glance-api", conf, workdir).start()
    b = ApiClient(
        types.SimpleNamespace(
            url=b_server.url, api=b_server, registry=a.deployment.registry, datadir=a.datadir
        )
    )
    yield a, b
    b_server.stop()


def test_sweeps_on_both_nodes_never_kill_live_uploads_as_they_finish(two_nodes):
    a, b = two_nodes
    uploads = [
        SlowUpload(node.port, pieces=pieces, pause=0.3)
        for node, pieces in ((a, 12), (b, 14), (a, 16), (b, 18))
    ]  # each outlives a lease; they finish one after another while both nodes sweep
    for upload in uploads:
        head, body = upload.result()
        assert head.startswith(b"HTTP/1.1 201"), head + body
        meta = a.head(f"/images/{upload.image_id}").headers
        assert (meta["x-image-meta-status"], meta["x-image-meta-checksum"]) == (
            "active",
            upload.checksum,
        )
    assert temps(a.datadir) == []


def test_a_node_paused_past_its_lease_finds_its_upload_swept_and_keeps_nothing(two_nodes):
    """A node that stops for longer than its lease (a pause, a partition) loses the
    upload to the other node's sweep: when it goes on, the activation finds the image
    killed, the client gets 409 and the data is removed; the image never goes active."""
    a, b = two_nodes
    upload = SlowUpload(b.port, pieces=10, pause=0.2)
    wait_for(lambda: status(b, upload.image_id) == "saving", timeout=10)
    b.deployment.api.signal(signal.SIGSTOP)
    try:
        wait_for(lambda: status(a, upload.image_id) == "killed", timeout=LEASE + 3 * SWEEP + 5)
    finally:
        b.deployment.api.signal(signal.SIGCONT)
    head, body = upload.result()
    assert head.startswith(b"HTTP/1.1 409"), head + body
    assert status(a, upload.image_id) == "killed"
    assert not (a.datadir / upload.image_id).exists()
    assert temps(a.datadir) == []


def test_a_retry_of_a_swept_upload_is_untouched_when_the_stale_upload_goes_on(two_nodes):
    """Node B's upload is swept while B is paused; node A retries the killed image with
    other data (a PUT with data: glance-lite takes it for a killed image without data).
    B goes on while A's retry still streams: B's upload completes but no longer holds
    the image, so B's client gets 409 and B removes its own file; A's retry then
    activates the image with A's data, in a file of its own."""
    a, b = two_nodes
    stale = SlowUpload(b.port, pieces=10, pause=0.2)
    image_id = stale.image_id
    wait_for(lambda: status(b, image_id) == "saving", timeout=10)
    data = os.urandom(200_000)
    gate = threading.Event()
    answers = []

    def held_body():
        yield data[:50_000]
        assert gate.wait(30)
        yield data[50_000:]

    def retry():
        headers = {"Content-Type": "application/octet-stream"}
        answers.append(a.put(f"/images/{image_id}", data=held_body(), headers=headers))

    retrying = threading.Thread(target=retry, daemon=True)
    b.deployment.api.signal(signal.SIGSTOP)
    try:
        wait_for(lambda: status(a, image_id) == "killed", timeout=LEASE + 3 * SWEEP + 5)
        retrying.start()
        wait_for(lambda: status(a, image_id) == "saving", timeout=10)
    finally:
        b.deployment.api.signal(signal.SIGCONT)
    head, body = stale.result()
    assert head.startswith(b"HTTP/1.1 409"), head + body
    assert status(a, image_id) == "saving"  # still the retry's
    gate.set()
    retrying.join(30)
    assert answers[0].status_code == 200, answers[0].text
    meta = a.head(f"/images/{image_id}").headers
    assert meta["x-image-meta-status"] == "active"
    assert meta["x-image-meta-checksum"] == hashlib.md5(data).hexdigest()
    assert a.get(f"/images/{image_id}").content == data
    # the retry's file, under a name of its own, is the only one of the image
    (retry_file,) = [n for n in os.listdir(a.datadir) if n.startswith(image_id)]
    assert retry_file.startswith(f"{image_id}.")
    assert (a.datadir / retry_file).read_bytes() == data
    assert temps(a.datadir) == []


@pytest.mark.parametrize("paused", [LEASE - 1.0, LEASE - 0.2, LEASE + 0.3, LEASE + 0.8])
def test_an_upload_resumed_as_its_lease_runs_out_ends_one_way_or_the_other(two_nodes, paused):
    """Node B stops about as long as its lease and goes on as node A sweeps every
    second: its activation (and its overdue renewal) race the sweep. Whichever wins,
    the outcome is whole: 201 and an active image with its data and checksum that no
    later sweep kills, or 409, a killed image and no data."""
    a, b = two_nodes
    upload = SlowUpload(b.port, pieces=8, pause=0.2)
    wait_for(lambda: status(b, upload.image_id) == "saving", timeout=10)
    b.deployment.api.signal(signal.SIGSTOP)
    time.sleep(paused)
    b.deployment.api.signal(signal.SIGCONT)
    head, body = upload.result()
    time.sleep(2 * SWEEP)  # sweeps that come after the answer change nothing
    if head.startswith(b"HTTP/1.1 201"):
        meta = b.head(f"/images/{upload.image_id}").headers
        assert (meta["x-image-meta-status"], meta["x-image-meta-checksum"]) == (
            "active",
            upload.checksum,
        )
        assert (a.datadir / upload.image_id).read_bytes() == upload.data
    else:
        assert head.startswith(b"HTTP/1.1 409"), head + body
        assert status(a, upload.image_id) == "killed"
        assert not (a.datadir / upload.image_id).exists()
    assert temps(a.datadir) == []


def test_restarting_one_node_never_kills_the_other_node_s_upload(two_nodes):
    a, b = two_nodes
    # 20 pieces half a second apart: about three leases long
    upload = SlowUpload(b.port, pieces=20, pause=0.5)
    wait_for(lambda: status(b, upload.image_id) == "saving", timeout=10)
    os.kill(a.api_pid, signal.SIGKILL)  # node A dies and comes back, sweeping as it starts
    a.deployment.api.proc.wait(10)
    a.deployment.api.start()
    head, body = upload.result()
    assert head.startswith(b"HTTP/1.1 201"), head + body
    meta = b.head(f"/images/{upload.image_id}").headers
    assert meta["x-image-meta-status"] == "active"
    assert meta["x-image-meta-checksum"] == upload.checksum
    assert b.get(f"/images/{upload.image_id}").content == upload.data
    assert f"image {upload.image_id} killed" not in a.api_log()


def test_a_reload_of_a_single_process_api_gives_its_sweeper_the_new_settings(deploy):
    """workers = 0: SIGHUP reloads the app in the one process; the upload sweeper beside
    it must run with the new configuration too (new workers would)."""
    api = deploy("lease-reload", upload_lease_duration=LEASE, upload_lease_sweep_interval=3600)
    image_id = api.post(
        "/images",
        headers={
            "x-image-meta-name": "left-saving",
            "x-image-meta-disk-format": "raw",
            "x-image-meta-container-format": "bare",
        },
    ).json()["image"]["id"]
    # an upload's lease that nobody renews: its node died
    taken = requests.put(
        f"{api.deployment.registry.url}/images/{image_id}",
        json={
            "image": {"status": "saving"},
            "from_state": "queued",
            "lease": {"holder": "gone-node#1", "duration": 1},
        },
        timeout=10,
    )
    assert taken.status_code == 200, taken.text
    time.sleep(LEASE + 1.5)  # past the grace: dead, but the next sweep is an hour away
    assert status(api, image_id) == "saving"
    server = api.deployment.api
    conf = server.conf_file.read_text()
    assert "upload_lease_sweep_interval = 3600" in conf
    server.conf_file.write_text(
        conf.replace("upload_lease_sweep_interval = 3600", f"upload_lease_sweep_interval = {SWEEP}")
    )
    server.signal(signal.SIGHUP)
    wait_for(lambda: status(api, image_id) == "killed", timeout=3 * SWEEP + 5)
    assert f"image {image_id} killed: its upload (by gone-node#1)" in api.api_log()
