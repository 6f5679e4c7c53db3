"""A registry that stops answering (SIGSTOP, as a partition would leave it: the
connection opens, no answer comes), comes back (SIGCONT), or dies: every api call
answers 503 with Retry-After within 10 s, and afterwards no image is half-made."""

import contextlib
import hashlib
import os
import signal
import time

import pytest

from tests.functional.conftest import read_response
from tests.functional.servers import wait_for
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
        calls = [
            (api.get, "/images"),
            (api.get, "/images/detail"),
            (api.head, f"/images/{image['id']}"),
            (api.get, f"/images/{image['id']}"),
            (api.delete, f"/images/{image['id']}"),
        ]
        for call, path in calls:
            assert_unavailable(*timed(call, path))
        assert_unavailable(*timed(api.create, name="x", properties={"t": uid}))
        body = b"data" * 1000
        fields = {"disk_format": "raw", "container_format": "bare"}
        assert_unavailable(*timed(api.create, body, properties={"t": uid}, **fields))
        assert_unavailable(*timed(api.update, queued["id"], body))
    wait_consistent(api)
    assert api.image_file(image["id"]).read_bytes() == b"before"


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
