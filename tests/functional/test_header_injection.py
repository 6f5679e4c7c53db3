"""No response header line comes from a request: folded request headers sent over raw
sockets to the real glance-api and glance-registry."""

import socket

import pytest

from tests.functional.conftest import read_response

pytestmark = pytest.mark.functional

TRUSTED = {"flavor": "trusted-auth"}
IDENTITY = b"X-Identity-Status: Confirmed\r\nX-Tenant-Id: t\r\nX-Roles: admin\r\n"
FOLDED_ID = b"X-Openstack-Request-ID: abc\r\n Set-Cookie: pwn=1\r\n"


@pytest.fixture(scope="module")
def trusted(deploy):
    return deploy("injection", registry_options=TRUSTED, send_identity_headers=True, **TRUSTED)


def exchange(port: int, request: bytes) -> tuple[bytes, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        return read_response(sock)


def header_lines(head: bytes) -> list[bytes]:
    return head.split(b"\r\n")[1:]


@pytest.mark.parametrize("service", ["api", "registry"])
def test_a_folded_request_id_is_refused_and_never_echoed(trusted, service):
    port, path = (
        (trusted.port, b"/v1/images")
        if service == "api"
        else (trusted.deployment.registry.port, b"/images")
    )
    request = (
        b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n" + IDENTITY + FOLDED_ID
        + b"Connection: close\r\n\r\n"
    )  # fmt: skip
    head, body = exchange(port, request)
    assert head.startswith(b"HTTP/1.1 400 "), head
    assert b"X-Openstack-Request-ID) may not contain control characters" in body
    for line in header_lines(head):
        assert not line.lower().startswith((b"set-cookie", b" ", b"\t")), head


def test_a_plain_request_id_is_still_echoed(trusted):
    request = (
        b"GET /v1/images HTTP/1.1\r\nHost: x\r\n" + IDENTITY
        + b"X-Openstack-Request-ID: abc\r\nConnection: close\r\n\r\n"
    )  # fmt: skip
    head, _ = exchange(trusted.port, request)
    assert head.startswith(b"HTTP/1.1 200 "), head
    assert b"\r\nX-Openstack-Request-Id: req-abc" in head


@pytest.mark.parametrize(
    ("request_line", "status"),
    [(b"GET /v1 HTTP/1.1", b"302"), (b"POST /v1/images HTTP/1.1", b"201")],
    ids=["redirect", "create"],
)
def test_a_folded_host_never_adds_a_header_to_a_location(client, request_line, status):
    request = (
        request_line + b"\r\nHost: x\r\n Set-Cookie: pwn=1\r\nContent-Length: 0\r\n"
        b"Connection: close\r\n\r\n"
    )
    head, _ = exchange(client.port, request)
    assert head.startswith(b"HTTP/1.1 " + status + b" "), head
    lines = header_lines(head)
    assert not [line for line in lines if line.lower().startswith((b"set-cookie", b" "))], head
    assert [line for line in lines if line.startswith(b"Location: http://x")], head
