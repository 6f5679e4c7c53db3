"""A registry that stops answering (SIGSTOP, as a partition would leave it: the
connection opens, no answer comes), comes back (SIGCONT), or dies: every api call
answers 503 with Retry-After within 10 s, and afterwards no image is half-made."""

import concurrent.futures
import contextlib
import hashlib
import os
import signal
import socket
import threading
import time

import pytest

from tests.functional.conftest import ApiClient, read_response
from tests.functional.servers import Deployment, wait_for
from tests.functional.test_api_faults import upload_head

pytestmark = pytest.mark.functional

MIB = 1 << 20
# small timeouts keep these tests short; the defaults answer within 9 s
FAST = {"registry_client_timeout": 1, "registry_client_connect_timeout": 1}
ANSWER_WITHIN = 10.0


@contextlib.contextmanager
def registry_stopped(api):
    """The registry's processes stopped (SIGSTOP) inside the block, resumed after it."""
    pgid = api.deployment.registry.proc.pid
    os.killpg(pgid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(pgid, signal.SIGCONT)


def assert_unavailable(resp, elapsed: float) -> None:
    where = (resp.request.method, resp.request.url, resp.status_code, resp.text)
    assert resp.status_code == 503, where
    assert int(resp.headers["Retry-After"]) > 0, where
    if resp.request.method != "HEAD":
        assert "image registry is unavailable" in resp.text, where
    assert elapsed < ANSWER_WITHIN, (where, elapsed)


def timed(call, *args, **kw):
    started = time.monotonic()
    resp = call(*args, **kw)
    return resp, time.monotonic() - started


def every_image(api) -> list[dict]:
    """Every image the registry holds, killed and deleted ones included."""
    resp = api.get(
        "/images/detail",
        params={"is_public": "none", "changes-since": "2000-01-01T00:00:00", "limit": 1000},
    )
    assert resp.status_code == 200, resp.text
    return resp.json()["images"]


def problems(api) -> list[str]:
    """What is half-made: an image saving, an active image whose file does not hold
    its size and checksum, a file (or temporary file) of an image that is not active."""
    found = []
    files = set(api.files())
    for image in every_image(api):
        image_id, status = image["id"], image["status"]
        if status == "saving":
            found.append(f"{image_id} is saving")
        elif status == "active" and image["size"]:
            path = api.image_file(image_id)
            data = path.read_bytes() if path.exists() else b""
            if hashlib.md5(data).hexdigest() != image["checksum"] or len(data) != image["size"]:
                found.append(f"{image_id} is active without its data")
            files.discard(image_id)
        elif image_id in files and status != "pending_delete":
            found.append(f"{image_id} is {status} but its file stays")
            files.discard(image_id)
    found += [f"stray file {name}" for name in sorted(files)]
    return found


def wait_consistent(api) -> None:
    with contextlib.suppress(AssertionError):
        wait_for(lambda: not problems(api), timeout=30)
    assert problems(api) == []


@pytest.fixture
def api(deploy, request):
    return deploy(request.node.name[:40].replace("[", "-").strip("]"), **FAST)


def test_every_call_to_a_stopped_registry_is_503_with_retry_after(api, uid):
    image = api.upload(b"before", properties={"t": uid})
    queued = api.reserve(disk_format="raw", container_format="bare", properties={"t": uid})
    with registry_stopped(api):
        body = b"data" * 1000
        fields = {"disk_format": "raw", "container_format": "bare"}
        calls = [
            ("get", ("/images",), {}),
            ("get", ("/images/detail",), {}),
            ("head", (f"/images/{image['id']}",), {}),
            ("get", (f"/images/{image['id']}",), {}),
            ("delete", (f"/images/{image['id']}",), {}),
            ("create", (), {"name": "x", "properties": {"t": uid}}),
            ("create", (body,), {"properties": {"t": uid}, **fields}),
            ("update", (queued["id"], body), {}),
        ]

        def call(method, args, kw):
            """On a client (a connection) of its own: the calls wait for the registry
            side by side, as independent clients would."""
            return timed(getattr(ApiClient(api.deployment), method), *args, **kw)

        with concurrent.futures.ThreadPoolExecutor(len(calls)) as pool:
            answers = list(pool.map(lambda c: call(*c), calls))
        for resp, elapsed in answers:
            assert_unavailable(resp, elapsed)
    wait_consistent(api)
    assert api.image_file(image["id"]).read_bytes() == b"before"

    # the two creates answered 503 reached the registry late, or were fenced off: either
    # way each ends a killed record, never a live image
    def late_creates() -> list[str]:
        known = (image["id"], queued["id"])
        return [i["status"] for i in every_image(api) if i["id"] not in known]

    with contextlib.suppress(AssertionError):
        wait_for(lambda: late_creates() == ["killed", "killed"], timeout=30)
    assert late_creates() == ["killed", "killed"]
    assert api.status(queued["id"]) == "queued"  # its upload never reached the registry


@pytest.mark.parametrize("size", [2 * MIB])
def test_an_upload_whose_activation_gets_no_answer_ends_consistent(api, size):
    image = api.reserve(disk_format="raw", container_format="bare")
    path = f"/v1/images/{image['id']}"
    with api.connect() as sock:
        sock.sendall(upload_head(image["id"], f"Content-Length: {size}", "PUT", path))
        sock.sendall(b"a" * (size // 2))
        wait_for(lambda: api.status(image["id"]) == "saving")
        with registry_stopped(api):
            started = time.monotonic()
            sock.sendall(b"b" * (size - size // 2))
            head, rest = read_response(sock, deadline=15)
            elapsed = time.monotonic() - started
            assert head.startswith(b"HTTP/1.1 503"), (head, rest)
            assert b"Retry-After:" in head
            assert elapsed < ANSWER_WITHIN
    wait_for(lambda: api.status(image["id"]) in ("active", "killed"), timeout=30)
    wait_consistent(api)


def test_a_dead_registry_is_503_with_retry_after(api):
    image = api.upload(b"kept")
    api.deployment.registry.signal(signal.SIGKILL)
    api.deployment.registry.proc.wait()
    for call, path in [
        (api.get, "/images"),
        (api.head, f"/images/{image['id']}"),
        (api.delete, f"/images/{image['id']}"),
    ]:
        assert_unavailable(*timed(call, path))
    resp, elapsed = timed(api.create, b"x" * 100, disk_format="raw", container_format="bare")
    assert_unavailable(resp, elapsed)
    assert api.image_file(image["id"]).read_bytes() == b"kept"


# --- a partition that loses the answer ---------------------------------------------


class Partition:
    """A TCP proxy in front of glance-registry that fails as a network can.

    `cut(let_one=True)`: the next request sent still reaches the registry (with
    let_one), but no answer comes back, and nothing else sent arrives (new connections
    open, then hear nothing).
    `heal()`: every connection held so far is closed; new ones pass again.
    """

    def __init__(self, target_port):
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.is_cut = False
        self.let_through = None
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self, *, let_one: bool = True) -> None:
        with self.lock:
            self.is_cut, self.let_through = True, (None if let_one else self)

    def heal(self) -> None:
        with self.lock:
            self.is_cut = False
            held, self.sockets = self.sockets, []
        for sock in held:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.listener.close()
        self.heal()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port()))
            with self.lock:
                self.sockets += [client, upstream]
            for src, dst, request in ((client, upstream, True), (upstream, client, False)):
                args = (src, dst, request, client)
                threading.Thread(target=self._pump, args=args, daemon=True).start()

    def _passes(self, client: socket.socket, request: bool) -> bool:
        with self.lock:
            if not self.is_cut:
                return True
            if not request:
                return False  # every answer is lost
            if self.let_through is None:
                self.let_through = client  # the first request after the cut arrives
            return self.let_through is client

    def _pump(self, src, dst, request: bool, client) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                break
            if not data:
                break
            if self._passes(client, request):
                try:
                    dst.sendall(data)
                except OSError:
                    break
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


@pytest.fixture
def partitioned(tmp_path):
    deployment = None
    proxy = Partition(lambda: deployment.registry.port)
    deployment = Deployment(tmp_path, api_options=FAST, registry_port=proxy.port)
    try:
        deployment.start()
        yield ApiClient(deployment), proxy
    finally:
        deployment.stop()
        proxy.close()


@pytest.mark.parametrize("applied", [True, False], ids=["activation-applied", "lost"])
def test_an_activation_without_an_answer_ends_active_with_data_or_killed_without(
    partitioned, applied
):
    api, proxy = partitioned
    image = api.reserve(disk_format="raw", container_format="bare")
    size = 2 * MIB
    path = f"/v1/images/{image['id']}"
    with api.connect() as sock:
        sock.sendall(upload_head(image["id"], f"Content-Length: {size}", "PUT", path))
        sock.sendall(b"a" * (size // 2))
        wait_for(lambda: api.status(image["id"]) == "saving")
        # the activation reaches the registry (or not); no answer comes back
        proxy.cut(let_one=applied)
        sock.sendall(b"b" * (size - size // 2))
        head, rest = read_response(sock, deadline=15)
    assert head.startswith(b"HTTP/1.1 503"), (head, rest)
    assert b"Retry-After:" in head
    proxy.heal()
    wait_consistent(api)
    if applied:
        assert api.status(image["id"]) == "active"
        data = api.image_file(image["id"]).read_bytes()
        assert data == b"a" * (size // 2) + b"b" * (size - size // 2)
    else:
        assert api.status(image["id"]) == "killed"
        assert api.no_file_for(image["id"])
