"""Limits on what may be stored: image_size_cap,
user_storage_quota and image_property_quota, and how a refused upload ends its
connection (upload_discard_limit)."""

import os
import socket
import threading
import uuid

import pytest

from tests.functional.conftest import read_response

pytestmark = pytest.mark.functional

MIB = 1 << 20
CAP = 4 * MIB
DISCARD = 1 * MIB
PROPERTY_QUOTA = 3
CAP_TEXT = f"Denying attempt to upload image larger than {CAP} bytes."
QUOTA_TEXT = "Denying attempt to upload image because it exceeds the quota"


@pytest.fixture(scope="module")
def capped(deploy):
    return deploy(
        "capped",
        image_size_cap=CAP,
        upload_discard_limit=DISCARD,
        image_property_quota=PROPERTY_QUOTA,
    )


@pytest.fixture(scope="module")
def quota(deploy):
    return deploy("quota", user_storage_quota="1KB")


def upload_head(image_id: str, framing: str) -> bytes:
    return (
        "POST /v1/images HTTP/1.1\r\nHost: test\r\n"
        "Content-Type: application/octet-stream\r\n"
        f"x-image-meta-id: {image_id}\r\n"
        "x-image-meta-disk_format: raw\r\nx-image-meta-container_format: bare\r\n"
        f"{framing}\r\n\r\n"
    ).encode()


# --- image_size_cap ------------------------------------------------------------------


def test_a_declared_image_size_over_the_cap_is_400(capped):
    resp = capped.create(size=CAP + 1)
    assert resp.status_code == 400
    assert CAP_TEXT in resp.text
    image = capped.reserve(size=CAP)
    assert image["size"] == CAP
    put = capped.update(image["id"], size=CAP + 1)
    assert put.status_code == 400
    assert CAP_TEXT in put.text


def test_an_upload_of_exactly_the_cap_is_accepted(capped):
    image = capped.upload(iter([b"z" * MIB] * 4))
    assert image["size"] == CAP
    assert capped.image_file(image["id"]).stat().st_size == CAP


class Pump(threading.Thread):
    """Sends (chunked-framed) data on `sock` until `total` bytes or the server stops it."""

    def __init__(self, sock: socket.socket, total: int, *, framed: bool = True):
        super().__init__(daemon=True)
        self.sock = sock
        self.total = total
        self.framed = framed
        self.sent = 0
        self.error: OSError | None = None

    def run(self) -> None:
        piece = os.urandom(64 * 1024)
        frame = b"%x\r\n" % len(piece) + piece + b"\r\n" if self.framed else piece
        try:
            while self.sent < self.total:
                self.sock.sendall(frame)
                self.sent += len(piece)
            if self.framed:
                self.sock.sendall(b"0\r\n\r\n")
        except OSError as err:
            self.error = err


def closed_by_peer(sock: socket.socket, timeout: float = 10.0) -> bool:
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    return True


def test_a_chunked_body_past_the_cap_is_413_and_the_connection_is_closed(capped):
    total = 64 * MIB
    image_id = str(uuid.uuid4())
    sock = capped.connect(timeout=20)
    try:
        sock.sendall(upload_head(image_id, "Transfer-Encoding: chunked"))
        pump = Pump(sock, total)
        pump.start()
        head, rest = read_response(sock, deadline=20)
        assert head.startswith(b"HTTP/1.1 413"), (head, rest)
        assert CAP_TEXT.encode() in rest
        assert b"\r\nconnection: close" in head.lower(), head  # RFC 9112 §9.6
        assert closed_by_peer(sock), "the server kept the connection open"
        pump.join(20)
        assert not pump.is_alive()
        # the server read the cap, at most upload_discard_limit more, plus socket buffers
        assert pump.error is not None, f"all {pump.sent} bytes were accepted"
        assert pump.sent < CAP + DISCARD + 16 * MIB, pump.sent
    finally:
        sock.close()
    assert capped.status(image_id) == "killed"
    assert capped.meta(image_id)["x-image-meta-size"] == "0"
    assert capped.no_file_for(image_id)
    assert not [n for n in capped.files() if n.endswith(".tmp")]


def test_a_declared_length_over_the_cap_is_400_nothing_stored_connection_closed(capped):
    total = 64 * MIB
    image_id = str(uuid.uuid4())
    sock = capped.connect(timeout=20)
    try:
        sock.sendall(upload_head(image_id, f"Content-Length: {total}"))
        pump = Pump(sock, total, framed=False)
        pump.start()
        head, rest = read_response(sock, deadline=20)
        assert head.startswith(b"HTTP/1.1 400"), (head, rest)
        assert CAP_TEXT.encode() in rest
        assert b"\r\nconnection: close" in head.lower(), head
        assert closed_by_peer(sock), "the server kept the connection open"
        pump.join(20)
        assert pump.error is not None, f"all {pump.sent} bytes were accepted"
        assert pump.sent < DISCARD + 16 * MIB, pump.sent
    finally:
        sock.close()
    assert capped.head(f"/images/{image_id}").status_code == 404
    assert capped.no_file_for(image_id)


def test_a_chunked_body_past_the_cap_through_requests(capped):
    image_id = str(uuid.uuid4())

    def body():
        for _ in range(CAP // MIB + 1):
            yield b"q" * MIB

    resp = capped.create(body(), id=image_id, disk_format="raw", container_format="bare")
    assert resp.status_code == 413
    assert CAP_TEXT in resp.text
    assert capped.status(image_id) == "killed"
    assert capped.no_file_for(image_id)


def test_the_server_still_answers_after_a_refused_upload(capped):
    image = capped.upload(b"after")
    assert capped.get(f"/images/{image['id']}").content == b"after"


# --- image_property_quota ------------------------------------------------------------


def props(n: int, prefix: str = "p") -> dict[str, str]:
    return {f"{prefix}{i}": str(i) for i in range(n)}


def test_property_quota_on_create(capped):
    resp = capped.create(properties=props(PROPERTY_QUOTA + 1))
    assert resp.status_code == 413
    assert (
        "The limit has been exceeded on the number of allowed image properties. "
        f"Attempted: {PROPERTY_QUOTA + 1}, Maximum: {PROPERTY_QUOTA}" in resp.text
    )
    assert capped.reserve(properties=props(PROPERTY_QUOTA))["properties"] == props(PROPERTY_QUOTA)


def test_property_quota_on_update_counts_the_union_when_merging(capped):
    image = capped.reserve(properties=props(PROPERTY_QUOTA))
    keep = {"x-glance-registry-purge-props": "false"}
    resp = capped.update(image["id"], properties={"extra": "1"}, headers=keep)
    assert resp.status_code == 413
    assert f"Attempted: {PROPERTY_QUOTA + 1}, Maximum: {PROPERTY_QUOTA}" in resp.text
    after = capped.get("/images/detail", params={"is_public": "none"}).json()["images"]
    assert [i["properties"] for i in after if i["id"] == image["id"]] == [props(PROPERTY_QUOTA)]
    # an existing name does not count twice; purging counts only the request
    same = capped.update(image["id"], properties={"p0": "new"}, headers=keep)
    assert same.status_code == 200, same.text
    purge = capped.update(image["id"], properties=props(PROPERTY_QUOTA, "q"))
    assert purge.status_code == 200, purge.text
    assert purge.json()["image"]["properties"] == props(PROPERTY_QUOTA, "q")
    over = capped.update(image["id"], properties=props(PROPERTY_QUOTA + 1, "r"))
    assert over.status_code == 413


# --- user_storage_quota --------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (b"x" * 2048, {}),
        (b"x" * 1025, {"size": 1025}),
        ([b"y" * 600, b"y" * 600], {}),
    ],
    ids=["content-length", "declared-size", "chunked"],
)
def test_an_upload_over_the_storage_quota_is_413_and_killed(quota, body, fields):
    image_id = str(uuid.uuid4())
    data = iter(body) if isinstance(body, list) else body
    resp = quota.create(data, id=image_id, disk_format="raw", container_format="bare", **fields)
    assert resp.status_code == 413, resp.text
    assert QUOTA_TEXT in resp.text
    assert quota.status(image_id) == "killed"
    assert quota.no_file_for(image_id)


def test_an_upload_within_the_storage_quota_is_accepted(quota):
    image = quota.upload(b"x" * 1024)
    assert image["size"] == 1024


def test_storage_quota_counts_each_owners_images(deploy):
    auth = {"flavor": "trusted-auth"}
    api = deploy(
        "tenant-quota",
        registry_options=auth,
        send_identity_headers=True,
        user_storage_quota="1KB",
        **auth,
    )

    def as_tenant(tenant: str) -> dict:
        return {
            "X-Identity-Status": "Confirmed",
            "X-User-Id": f"u-{tenant}",
            "X-Tenant-Id": tenant,
            "X-Roles": "member",
        }

    first = api.upload(b"a" * 800, headers=as_tenant("A"))
    over = api.create(
        b"a" * 300, disk_format="raw", container_format="bare", headers=as_tenant("A")
    )
    assert over.status_code == 413, over.text
    assert QUOTA_TEXT in over.text
    assert api.upload(b"b" * 800, headers=as_tenant("B"))["owner"] == "B"
    assert api.delete(f"/images/{first['id']}", headers=as_tenant("A")).status_code == 200
    assert api.upload(b"a" * 300, headers=as_tenant("A"))["size"] == 300
