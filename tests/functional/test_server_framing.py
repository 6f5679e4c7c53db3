"""Request smuggling: a request whose body framing could be read two ways is refused
(400, or 501 for a transfer coding nobody knows) by glance-api and glance-registry alike,
and its connection is closed, so that nothing after its headers runs as a request."""

import socket
import uuid

import pytest

from tests.functional.conftest import read_response

pytestmark = pytest.mark.functional

SMUGGLED = "GET {path} HTTP/1.1\r\nHost: t\r\nX-Smuggled: yes\r\n\r\n"

FRAMINGS = {
    "te-identity": (["Transfer-Encoding: identity"], 400),
    "te-gzip": (["Transfer-Encoding: gzip"], 400),
    "te-chunked-identity": (["Transfer-Encoding: chunked, identity"], 400),
    "te-chunked-twice-in-one": (["Transfer-Encoding: chunked, chunked"], 400),
    "te-chunked-twice": (["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"], 400),
    "te-gzip-chunked": (["Transfer-Encoding: gzip, chunked"], 400),
    "te-unknown": (["Transfer-Encoding: foo"], 501),
    "cl-twice-same": (["Content-Length: 0", "Content-Length: 0"], 400),
    "cl-conflicting": (["Content-Length: 0", "Content-Length: 60"], 400),
    "cl-plus": (["Content-Length: +0"], 400),
    "cl-underscore": (["Content-Length: 0_0"], 400),
    "space-before-colon": (["Transfer-Encoding : chunked", "Content-Length: 0"], 400),
}


def services(client) -> dict[str, tuple[int, str, str]]:
    """(port, path of a create, path that lists) of each real service."""
    return {
        "api": (client.port, "/v1/images", "/v1/images"),
        "registry": (client.deployment.registry.port, "/images", "/images"),
    }


def send_all_and_read(port: int, data: bytes) -> bytes:
    """Send `data` at once; everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(data)
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
    return received


@pytest.mark.parametrize("service", ["api", "registry"])
@pytest.mark.parametrize("framing", list(FRAMINGS))
def test_ambiguous_framing_is_refused_and_what_follows_never_runs(client, service, framing):
    port, create, listing = services(client)[service]
    headers, status = FRAMINGS[framing]
    name = f"smuggle-{uuid.uuid4().hex[:8]}"
    request = (
        f"POST {create} HTTP/1.1\r\nHost: t\r\n"
        "Content-Type: application/octet-stream\r\n"
        f"x-image-meta-name: {name}\r\n" + "".join(f"{h}\r\n" for h in headers) + "\r\n"
    )
    answer = send_all_and_read(port, (request + SMUGGLED.format(path=listing)).encode())
    head, _, rest = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d" % status), answer
    assert b"\r\nconnection: close" in head.lower(), head
    assert answer.count(b"HTTP/1.1 ") == 1, answer  # the smuggled GET got no answer
    assert b"Traceback" not in rest
    listed = client.get("/images", params={"name": name, "is_public": "none"}).json()
    assert listed["images"] == []


@pytest.mark.parametrize("service", ["api", "registry"])
def test_identity_coding_cannot_smuggle_a_request_with_its_own_identity(client, service):
    port, create, listing = services(client)[service]
    smuggled = (
        f"DELETE {listing}/{uuid.uuid4()} HTTP/1.1\r\nHost: t\r\n"
        "X-Identity-Status: Confirmed\r\nX-Roles: admin\r\n\r\n"
    )
    request = (
        f"POST {create} HTTP/1.1\r\nHost: t\r\nContent-Type: application/octet-stream\r\n"
        "x-image-meta-disk-format: raw\r\nx-image-meta-container-format: bare\r\n"
        "Transfer-Encoding: identity\r\n\r\n" + smuggled
    )
    answer = send_all_and_read(port, request.encode())
    assert answer.startswith(b"HTTP/1.1 400"), answer
    assert b"Transfer-Encoding 'identity' is not supported" in answer
    assert answer.count(b"HTTP/1.1 ") == 1, answer


def test_a_plain_content_length_and_a_single_chunked_coding_still_work(client):
    for framing in ("Content-Length: 5", "Transfer-Encoding: Chunked"):
        body = b"hello" if framing.startswith("Content") else b"5\r\nhello\r\n0\r\n\r\n"
        with client.connect() as sock:
            sock.sendall(
                b"POST /v1/images HTTP/1.1\r\nHost: t\r\n"
                b"Content-Type: application/octet-stream\r\n"
                b"x-image-meta-disk-format: raw\r\nx-image-meta-container-format: bare\r\n"
                + framing.encode()
                + b"\r\n\r\n"
                + body
            )
            head, rest = read_response(sock, deadline=15)
        assert head.startswith(b"HTTP/1.1 201"), (head, rest)
        assert b'"size": 5' in rest
