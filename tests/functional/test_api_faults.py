"""Things going wrong: clients that vanish mid-upload, a registry that is down, two
uploads racing for one image, ids and bodies that are garbage. Never a 500."""

import http.client
import os
import threading
import time
import uuid

import pytest

from tests.functional.conftest import read_response
from tests.functional.servers import wait_for

pytestmark = pytest.mark.functional

MIB = 1 << 20


def leftovers(client, image_id: str) -> list[str]:
    return [n for n in client.files() if image_id in n or n.endswith(".tmp")]


def upload_head(image_id: str, framing: str, method="POST", path="/v1/images") -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: test\r\n"
        "Content-Type: application/octet-stream\r\n"
        f"x-image-meta-id: {image_id}\r\n"
        "x-image-meta-disk-format: raw\r\nx-image-meta-container-format: bare\r\n"
        f"{framing}\r\n\r\n"
    ).encode()


# --- clients that go away --------------------------------------------------------------


@pytest.mark.parametrize("framing", ["Content-Length", "chunked"])
def test_a_client_disconnecting_mid_upload_kills_the_image_and_leaves_no_file(client, framing):
    image_id = str(uuid.uuid4())
    with client.connect() as sock:
        if framing == "chunked":
            sock.sendall(upload_head(image_id, "Transfer-Encoding: chunked"))
            for _ in range(16):
                sock.sendall(b"10000\r\n" + os.urandom(0x10000) + b"\r\n")
        else:
            sock.sendall(upload_head(image_id, f"Content-Length: {10 * MIB}"))
            sock.sendall(os.urandom(MIB))
        wait_for(lambda: client.head(f"/images/{image_id}").status_code == 200)
        time.sleep(0.2)
    wait_for(lambda: client.status(image_id) == "killed")
    wait_for(lambda: not leftovers(client, image_id))
    assert client.meta(image_id)["x-image-meta-size"] == "0"
    # the server goes on serving
    assert client.upload(b"next")["status"] == "active"


def test_bad_chunked_framing_is_400_and_kills_the_image(client):
    image_id = str(uuid.uuid4())
    with client.connect() as sock:
        sock.sendall(upload_head(image_id, "Transfer-Encoding: chunked"))
        sock.sendall(b"5\r\nhello\r\nzz-not-hex\r\nmore\r\n0\r\n\r\n")
        head, rest = read_response(sock, deadline=15)
    assert head.startswith(b"HTTP/1.1 400"), (head, rest)
    assert client.status(image_id) == "killed"
    assert not leftovers(client, image_id)


def test_a_put_upload_cut_short_kills_the_reserved_image(client):
    image = client.reserve(disk_format="raw", container_format="bare")
    with client.connect() as sock:
        path = f"/v1/images/{image['id']}"
        sock.sendall(upload_head(image["id"], f"Content-Length: {4 * MIB}", "PUT", path))
        sock.sendall(b"x" * MIB)
        wait_for(lambda: client.status(image["id"]) == "saving")
        during = client.get(f"/images/{image['id']}")
        assert during.status_code == 404
        assert f"Image {image['id']} is not active" in during.text
        again = client.update(image["id"], b"other")
        assert again.status_code == 409
    wait_for(lambda: client.status(image["id"]) == "killed")
    wait_for(lambda: not leftovers(client, image["id"]))


@pytest.mark.parametrize("length", ["abc", "-5", "1, 2"])
def test_a_garbage_content_length_is_a_4xx(client, length):
    with client.connect() as sock:
        sock.sendall(
            b"POST /v1/images HTTP/1.1\r\nHost: t\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Length: " + length.encode() + b"\r\nConnection: close\r\n\r\nhello"
        )
        head, _ = read_response(sock, deadline=15)
    assert head[9:10] == b"4", head


# --- two uploads for one image ---------------------------------------------------------


def slow_body(size_mib: int, delay: float):
    piece = os.urandom(MIB)
    for _ in range(size_mib):
        time.sleep(delay)
        yield piece


def put_upload(client, image_id: str, body, results: list, key: str) -> None:
    resp = client.update(image_id, body)
    results.append((key, resp.status_code, resp.text))


def test_a_second_upload_while_the_first_is_saving_is_409(client):
    image = client.reserve(disk_format="raw", container_format="bare")
    results: list = []
    first = threading.Thread(
        target=put_upload, args=(client, image["id"], slow_body(8, 0.1), results, "first")
    )
    first.start()
    wait_for(lambda: client.status(image["id"]) == "saving")
    put_upload(client, image["id"], slow_body(2, 0), results, "second")
    first.join(60)
    codes = dict((k, c) for k, c, _ in results)
    assert codes == {"first": 200, "second": 409}, results
    assert "Cannot upload to an unqueued image" in next(t for k, _, t in results if k == "second")
    meta = client.meta(image["id"])
    assert meta["x-image-meta-status"] == "active"
    assert meta["x-image-meta-size"] == str(8 * MIB)
    assert [n for n in client.files() if image["id"] in n or n.endswith(".tmp")] == [image["id"]]


def race(client, image_id: str, barrier: threading.Barrier, results: list, key, data) -> None:
    barrier.wait()
    put_upload(client, image_id, iter([data[:1000], data[1000:]]), results, key)


def test_racing_uploads_give_one_200_and_one_409_never_500(client):
    for _ in range(4):
        image = client.reserve(disk_format="raw", container_format="bare")
        barrier = threading.Barrier(2)
        results: list = []
        a, b = os.urandom(300_000), os.urandom(300_000)
        threads = [
            threading.Thread(target=race, args=(client, image["id"], barrier, results, *args))
            for args in (("a", a), ("b", b))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        codes = sorted(c for _, c, _ in results)
        assert codes == [200, 409], results
        winner = next(k for k, c, _ in results if c == 200)
        data = a if winner == "a" else b
        assert client.get(f"/images/{image['id']}").content == data
        assert not [n for n in client.files() if n.endswith(".tmp")]


# --- garbage in URLs -------------------------------------------------------------------


GARBAGE_IDS = [
    "%ff",
    "..%2f",
    "%2e%2e",
    "..%2f..%2fetc%2fpasswd",
    "a%00b",
    "%c3%28",
    "%20",
    "not-a-uuid",
    "x" * 2000,
    "%7B3b1c5e0a-8f7d-4c2e-9a6b-1d2e3f405162%7D",
    "3b1c5e0a-8f7d-4c2e-9a6b-1d2e3f405162%0d%0aX-Injected:%201",
]


@pytest.mark.parametrize("image_id", GARBAGE_IDS)
@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE"])
def test_garbage_image_ids_are_400_or_404(client, image_id, method):
    for suffix in ("", "/members", "/members/t1"):
        if method == "HEAD" and suffix:
            continue
        conn = http.client.HTTPConnection("127.0.0.1", client.port, timeout=30)
        conn.request(method, f"/v1/images/{image_id}{suffix}", headers={"Content-Length": "0"})
        resp = conn.getresponse()
        resp.read()
        conn.close()
        # a matched route with another method is 405 whatever the id
        unrouted = (method, suffix) in (("DELETE", "/members"), ("GET", "/members/t1"))
        allowed = {400, 404, 405} if unrouted else {400, 404}
        assert resp.status in allowed, (method, image_id, suffix, resp.status)
        assert resp.getheader("X-Injected") is None


def raw_status(client, method: str, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", client.port, timeout=30)
    conn.request(method, path)
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp.status


@pytest.mark.parametrize("member", ["%ff", "m" * 300, "..%2f", "%2fetc"])
def test_garbage_member_ids_are_4xx(client, member):
    image = client.reserve()
    for method in ("PUT", "DELETE"):
        status = raw_status(client, method, f"/v1/images/{image['id']}/members/{member}")
        assert 400 <= status < 500, (method, member, status)
    assert client.get(f"/images/{image['id']}/members").json() == {"members": []}
    shared = client.get(f"/shared-images/{member}")
    assert shared.status_code in (200, 400, 404), shared.text


@pytest.mark.parametrize("member", ["..", "."])
def test_dot_member_ids_are_plain_names_not_paths(client, member):
    image = client.reserve()
    encoded = member.replace(".", "%2e")
    assert raw_status(client, "PUT", f"/v1/images/{image['id']}/members/{encoded}") == 204
    listed = client.get(f"/images/{image['id']}/members").json()["members"]
    assert listed == [{"member_id": member, "can_share": False}]
    shared = client.get(f"/shared-images/{encoded}").json()["shared_images"]
    assert {"image_id": image["id"], "can_share": False} in shared
    assert raw_status(client, "DELETE", f"/v1/images/{image['id']}/members/{encoded}") == 204
    assert client.get(f"/images/{image['id']}/members").json() == {"members": []}


def test_garbage_json_bodies_are_400(client):
    image = client.reserve()
    for body in (b"\xff\xfe", b"[1, 2", b"null", b'"str"'):
        resp = client.put(
            f"/images/{image['id']}/members",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        assert resp.status_code == 400, (body, resp.text)


# --- the registry is down ------------------------------------------------------------


def test_a_stopped_registry_is_503_and_nothing_is_written(deploy):
    api = deploy("no-registry")
    image = api.upload(b"before")
    queued = api.reserve(disk_format="raw", container_format="bare")
    api.deployment.registry.stop()
    files_before = api.files()
    attempts = [
        api.get("/images"),
        api.get("/images/detail"),
        api.head(f"/images/{image['id']}"),
        api.get(f"/images/{image['id']}"),
        api.create(name="x"),
        api.create(b"data" * 1000, disk_format="raw", container_format="bare"),
        api.update(queued["id"], b"data" * 1000),
        api.update(image["id"], name="renamed"),
        api.delete(f"/images/{image['id']}"),
        api.get(f"/images/{image['id']}/members"),
        api.put(f"/images/{image['id']}/members/t1"),
        api.get("/shared-images/t1"),
    ]
    for resp in attempts:
        assert resp.status_code == 503, (resp.request.method, resp.request.url, resp.text)
        assert "Traceback" not in resp.text
    assert api.files() == files_before
    assert api.image_file(image["id"]).read_bytes() == b"before"


# --- keep-alive after a refusal ------------------------------------------------------


SMUGGLED = b"GET /v1/images/smuggled HTTP/1.1\r\nHost: t\r\n\r\n"


@pytest.mark.parametrize("framing", ["length", "chunked"])
@pytest.mark.parametrize(
    "refusal",
    ["x-image-meta-bogus: 1", "x-image-meta-disk-format: floppy", "Content-Type: text/plain"],
)
def test_a_refused_small_body_is_drained_and_the_connection_stays_in_sync(client, framing, refusal):
    body = SMUGGLED * 20
    if framing == "chunked":
        framed = b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
        length = "Transfer-Encoding: chunked"
    else:
        framed = body
        length = f"Content-Length: {len(body)}"
    content_type = "" if "Content-Type" in refusal else "Content-Type: application/octet-stream\r\n"
    request = (
        "POST /v1/images HTTP/1.1\r\nHost: t\r\n"
        "x-image-meta-disk-format: raw\r\nx-image-meta-container-format: bare\r\n"
        f"{content_type}{refusal}\r\n{length}\r\n\r\n"
    ).encode() + framed
    with client.connect() as sock:
        sock.sendall(request)
        head, _ = read_response(sock, deadline=15)
        assert head.startswith(b"HTTP/1.1 400"), head
        sock.sendall(b"GET /v1/images?property-x=nothing HTTP/1.1\r\nHost: t\r\n\r\n")
        head, rest = read_response(sock, deadline=15)
    assert head.startswith(b"HTTP/1.1 200"), (head, rest)
    assert rest == b'{"images": []}'


# --- the image changes under an upload -----------------------------------------------


def start_put_upload(client, image_id: str, length: int, first: bytes):
    sock = client.connect()
    path = f"/v1/images/{image_id}"
    sock.sendall(upload_head(image_id, f"Content-Length: {length}", "PUT", path) + first)
    wait_for(lambda: client.status(image_id) == "saving")
    return sock


def test_an_image_deleted_during_its_upload_is_412_and_leaves_no_file(client):
    image = client.reserve(disk_format="raw", container_format="bare")
    with start_put_upload(client, image["id"], 2 * MIB, b"a" * MIB) as sock:
        assert client.delete(f"/images/{image['id']}").status_code == 200
        sock.sendall(b"b" * MIB)
        head, rest = read_response(sock, deadline=20)
    assert head.startswith(b"HTTP/1.1 412"), (head, rest)
    assert (
        f"Image {image['id']} could not be found after upload. The image may have been "
        "deleted during the upload."
    ).encode() in rest
    assert client.status(image["id"]) == "deleted"
    wait_for(lambda: not leftovers(client, image["id"]))


def test_a_registry_lost_during_an_upload_is_503_and_leaves_no_file(deploy):
    api = deploy("registry-lost")
    image = api.reserve(disk_format="raw", container_format="bare")
    with start_put_upload(api, image["id"], 2 * MIB, b"a" * MIB) as sock:
        api.deployment.registry.stop()
        sock.sendall(b"b" * MIB)
        head, rest = read_response(sock, deadline=30)
    assert head.startswith(b"HTTP/1.1 503"), (head, rest)
    wait_for(lambda: not leftovers(api, image["id"]))


# --- oversized or odd requests -------------------------------------------------------


def test_an_over_long_header_line_is_400(client):
    resp = client.get("/images", headers={"X-Long": "a" * 20000})
    assert resp.status_code == 400


def test_a_range_request_gets_the_whole_image(client):
    image = client.upload(b"0123456789")
    resp = client.get(f"/images/{image['id']}", headers={"Range": "bytes=2-4"})
    assert resp.status_code == 200
    assert resp.content == b"0123456789"
