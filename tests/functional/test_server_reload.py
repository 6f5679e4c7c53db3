"""Reloads lose no request and make none up; a stop refuses new connections at once.

Clients keep a mixed load going over kept-alive connections (creates with data, updates,
HEAD, downloads, listings, deletes) while the api, the registry, or both are reloaded
(SIGHUP) several times: no request fails, and afterwards every image is what its client
was last told. A retiring worker finishes each request it has read, or refuses it before
doing anything with it, and the new workers take over the listening socket at once.
"""

import dataclasses
import hashlib
import json
import os
import signal
import socket
import threading
import time

import pytest
import requests

from tests.functional.conftest import ApiClient
from tests.functional.servers import (
    Deployment,
    ServerProcess,
    db_sync,
    registry_conf,
    wait_for,
)

pytestmark = pytest.mark.functional

CLIENTS = 6
RELOADS = 4
RELOAD_EVERY = 0.8  # seconds between two reloads (some 150 requests each, on a busy machine)
WORKERS = 2
GRACE = 10


@dataclasses.dataclass
class Told:
    """What a client was told about one image, last."""

    name: str
    checksum: str
    size: int
    deleted: bool = False


class Load:
    """CLIENTS threads, each with its own kept-alive session, until stop() is called.

    Every answer is checked as it comes; a failed request (an error status or a broken
    connection) is noted with what it tried, so that its effect can be looked for."""

    def __init__(self, deployment: Deployment):
        self.deployment = deployment
        self.told: dict[str, Told] = {}
        self.failed: list[str] = []
        self.not_created: list[str] = []  # names of creates that failed
        self.not_renamed: list[tuple[str, str]] = []  # (id, name) of updates that failed
        self.not_deleted: list[str] = []  # ids of deletes that failed
        self.requests = 0
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.threads = [
            threading.Thread(target=self.client, args=(n,), daemon=True) for n in range(CLIENTS)
        ]

    def start(self) -> "Load":
        for thread in self.threads:
            thread.start()
        return self

    def stop(self) -> None:
        self.done.set()
        for thread in self.threads:
            thread.join(60)
            assert not thread.is_alive(), "a client hung"

    def call(self, api: ApiClient, what: str, method: str, path: str, **kw):
        """The response, or None when the request failed (noted)."""
        with self.lock:
            self.requests += 1
        try:
            resp = api.request(method, path, **kw)
        except requests.RequestException as exc:
            self.fail(f"{what}: {type(exc).__name__}: {exc}")
            return None
        if resp.status_code >= 400:
            self.fail(f"{what}: {resp.status_code} {resp.text[:200]}")
            return None
        return resp

    def fail(self, text: str) -> None:
        with self.lock:
            self.failed.append(text)

    def client(self, number: int) -> None:
        api = ApiClient(self.deployment)
        mine: list[str] = []
        step = 0
        while not self.done.is_set():
            step += 1
            name = f"c{number}-{step}"
            data = os.urandom(1024 * (1 + step % 16))
            headers = {
                "x-image-meta-name": name,
                "x-image-meta-disk-format": "raw",
                "x-image-meta-container-format": "bare",
                "x-image-meta-is-public": "true",
                "Content-Type": "application/octet-stream",
            }
            resp = self.call(api, f"create {name}", "POST", "/images", data=data, headers=headers)
            if resp is None:
                self.not_created.append(name)
                continue
            image = resp.json()["image"]
            told = Told(name, hashlib.md5(data).hexdigest(), len(data))
            self.told[image["id"]] = told
            mine.append(image["id"])
            path = f"/images/{image['id']}"

            renamed = f"{name}-renamed"
            headers = {"x-image-meta-name": renamed, "x-image-meta-property-step": str(step)}
            if self.call(api, f"update {name}", "PUT", path, headers=headers) is None:
                self.not_renamed.append((image["id"], renamed))
            else:
                told.name = renamed

            resp = self.call(api, f"head {name}", "HEAD", path)
            if resp is not None and resp.headers["x-image-meta-name"] != told.name:
                self.fail(f"head {name}: name {resp.headers['x-image-meta-name']!r}")
            resp = self.call(api, f"download {name}", "GET", path)
            if resp is not None and hashlib.md5(resp.content).hexdigest() != told.checksum:
                self.fail(f"download {name}: other bytes")
            self.call(api, "listing", "GET", "/images/detail?limit=5")

            if step % 3 == 0:  # delete the oldest of this client's images
                victim = mine.pop(0)
                if self.call(api, f"delete {victim}", "DELETE", f"/images/{victim}") is None:
                    self.not_deleted.append(victim)
                else:
                    self.told[victim].deleted = True

    def check_images(self) -> list[str]:
        """Where the images differ from what their clients were told, or show the
        effect of a request that failed."""
        api = ApiClient(self.deployment)
        wrong = []
        for image_id, told in self.told.items():
            resp = api.head(f"/images/{image_id}")
            if told.deleted:
                gone = resp.status_code == 404 or resp.headers.get("x-image-meta-deleted") == "True"
                if not gone:
                    wrong.append(f"{image_id} ({told.name}) was deleted but is still there")
                continue
            if resp.status_code != 200:
                wrong.append(f"{image_id} ({told.name}): HEAD {resp.status_code}")
                continue
            seen = resp.headers
            if (seen["x-image-meta-name"], seen["x-image-meta-status"]) != (told.name, "active"):
                wrong.append(
                    f"{image_id}: told {told.name} active, is {seen['x-image-meta-name']} "
                    f"{seen['x-image-meta-status']}"
                )
            if (seen["x-image-meta-checksum"], int(seen["x-image-meta-size"])) != (
                told.checksum,
                told.size,
            ):
                wrong.append(f"{image_id} ({told.name}): other data than uploaded")
        listed = api.get("/images/detail?limit=100000").json()["images"]
        # a create the client was told failed may leave a killed record, nothing usable
        alive = {image["name"] for image in listed if image["status"] != "killed"}
        for name in self.not_created:
            if name in alive:
                wrong.append(f"create of {name} failed, yet the image is there")
        for image_id, name in self.not_renamed:
            resp = api.head(f"/images/{image_id}")
            if resp.headers.get("x-image-meta-name") == name:
                wrong.append(f"update of {image_id} to {name} failed, yet it was made")
        for image_id in self.not_deleted:
            resp = api.head(f"/images/{image_id}")
            if resp.status_code == 404 or resp.headers.get("x-image-meta-deleted") == "True":
                wrong.append(f"delete of {image_id} failed, yet it is gone")
        return wrong


def workers_of(server: ServerProcess) -> set[int]:
    pid = server.proc.pid
    return {int(p) for p in open(f"/proc/{pid}/task/{pid}/children").read().split()}


def reload(server: ServerProcess) -> None:
    before = workers_of(server)
    server.signal(signal.SIGHUP)
    # the new generation is up (the old one may still be draining)
    wait_for(lambda: len(workers_of(server) - before) == WORKERS, timeout=10)


@pytest.mark.parametrize("reloaded", ["api", "registry", "both"])
def test_reloads_under_load_fail_no_request_and_apply_none_behind_an_error(tmp_path, reloaded):
    options = {"workers": WORKERS, "graceful_shutdown_timeout": GRACE}
    deployment = Deployment(tmp_path, registry_options=options, api_options=options).start()
    try:
        load = Load(deployment).start()
        try:
            time.sleep(RELOAD_EVERY)
            for _ in range(RELOADS):
                if reloaded in ("api", "both"):
                    reload(deployment.api)
                if reloaded in ("registry", "both"):
                    reload(deployment.registry)
                time.sleep(RELOAD_EVERY)
        finally:
            load.stop()
        assert load.requests > 200, load.requests  # the load went on through the reloads
        wrong = load.check_images()
        assert not wrong, "\n".join(wrong)
        assert not load.failed, "\n".join(load.failed)
    finally:
        deployment.stop()


def test_a_new_connection_during_a_stop_is_answered_or_refused_at_once(tmp_path):
    """While a stopping server drains a request, a new client is not left waiting."""
    conf = registry_conf(tmp_path, workers=WORKERS, graceful_shutdown_timeout=GRACE)
    db_sync(conf)
    server = ServerProcess("glance-registry", conf, tmp_path).start()
    try:
        body = b'{"image": {"name": "draining", "status": "queued"}}'
        slow = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        slow.sendall(
            b"POST /images HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body[:10])
        )
        time.sleep(0.3)  # a worker is reading the body: the stop has to wait for it
        server.signal(signal.SIGTERM)
        time.sleep(0.5)
        assert server.proc.poll() is None  # still draining
        start = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=3) as late:
                late.sendall(b"GET /healthcheck HTTP/1.1\r\nHost: t\r\n\r\n")
                answer = late.recv(65536)
        except (ConnectionRefusedError, ConnectionResetError):
            answer = b"refused"
        except TimeoutError:
            answer = b"no answer"
        took = time.monotonic() - start
        assert answer.startswith((b"HTTP/1.1 200", b"refused")) or answer == b"", answer
        assert took < 1.0, took
        slow.sendall(body[10:])
        reply = slow.recv(65536)
        assert reply.startswith(b"HTTP/1.1 200"), reply
        slow.close()
        assert server.proc.wait(GRACE + 5) == 0
    finally:
        if server.proc.poll() is None:
            os.killpg(server.proc.pid, signal.SIGKILL)


def test_the_new_workers_serve_at_once_after_a_reload(tmp_path):
    """No gap: while the old workers drain, a new client is served by the new ones."""
    conf = registry_conf(tmp_path, workers=WORKERS, graceful_shutdown_timeout=GRACE)
    db_sync(conf)
    server = ServerProcess("glance-registry", conf, tmp_path).start()
    try:
        session = requests.Session()
        for _ in range(5):
            server.signal(signal.SIGHUP)
            deadline = time.monotonic() + 1.0  # the handover is over well before
            while time.monotonic() < deadline:
                start = time.monotonic()
                assert requests.get(f"{server.url}/healthcheck", timeout=5).status_code == 200
                assert session.get(f"{server.url}/images", timeout=5).status_code == 200
                assert time.monotonic() - start < 1.0
    finally:
        server.stop()


def test_a_request_sent_on_a_kept_alive_connection_as_its_worker_retires_is_answered(tmp_path):
    """The request is answered, with "Connection: close", and applied once; before, the
    worker closed the idle connection at once (and might still run what had come)."""
    conf = registry_conf(tmp_path, workers=1, graceful_shutdown_timeout=GRACE)
    db_sync(conf)
    server = ServerProcess("glance-registry", conf, tmp_path).start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"GET /images HTTP/1.1\r\nHost: t\r\n\r\n")
            first = read_answer(sock)
            assert first.startswith(b"HTTP/1.1 200") and b"Connection: close" not in first
            old = workers_of(server)
            server.signal(signal.SIGHUP)
            wait_for(lambda: workers_of(server) - old, timeout=10)  # the new one is up
            time.sleep(0.2)  # the old one has retired
            body = b'{"image": {"name": "late", "status": "queued"}}'
            sock.sendall(
                b"POST /images HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            second = read_answer(sock)
        assert second.startswith(b"HTTP/1.1 200"), second
        assert b"Connection: close" in second
        image_id = json.loads(second.partition(b"\r\n\r\n")[2])["image"]["id"]
        resp = requests.get(f"{server.url}/images/{image_id}", timeout=5)
        assert resp.json()["image"]["name"] == "late"
    finally:
        server.stop()


def read_answer(sock: socket.socket) -> bytes:
    """One answer with a Content-Length body (or b"" when the connection closes)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body
