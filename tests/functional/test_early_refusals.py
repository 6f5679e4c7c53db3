"""A request refused before its body is read gets its answer at once, even when its
client sent the headers and a little of a huge body and now waits: the server does not
read the rest (it would wait until the socket times out), says "Connection: close" and
closes. Both services, every refusal that can come before the body."""

import socket
import time
import uuid

import pytest

from tests.functional.conftest import meta_headers, read_response

pytestmark = pytest.mark.functional

TRUSTED = {"flavor": "trusted-auth"}
SECRET = "early-refusal-secret"
TIB2 = 2 << 40
MIB = 1 << 20
CAP = 64 * MIB


def as_tenant(tenant: str, roles: str = "member") -> dict[str, str]:
    return {
        "X-Identity-Status": "Confirmed",
        "X-User-Id": f"user-{tenant}",
        "X-Tenant-Id": tenant,
        "X-Roles": roles,
    }


@pytest.fixture(scope="module")
def api(deploy):
    return deploy(
        "early",
        registry_options={**TRUSTED, "registry_shared_secret": SECRET},
        registry_shared_secret=SECRET,
        send_identity_headers=True,
        image_size_cap=CAP,
        user_storage_quota="1MB",
        image_property_quota=3,
        **TRUSTED,
    )


@pytest.fixture(scope="module")
def active(api) -> str:
    return api.upload(b"bytes", headers=as_tenant("A"))["id"]


def refused_at_once(port: int, head: dict, method: str, path: str, length: int | None):
    """Send the headers and 1,000 bytes of the body, then wait: (status line and
    headers, body, seconds to the answer), the connection seen closed after it."""
    lines = [f"{method} {path} HTTP/1.1", "Host: t", "Content-Type: application/octet-stream"]
    lines += [f"{k}: {v}" for k, v in head.items()]
    if length is None:
        lines.append("Transfer-Encoding: chunked")
        first = b"3e8\r\n" + b"x" * 1000 + b"\r\n"
    else:
        lines.append(f"Content-Length: {length}")
        first = b"x" * 1000
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        start = time.monotonic()
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + first)
        status, rest = read_response(sock, deadline=5)
        took = time.monotonic() - start
        sock.settimeout(5)
        assert sock.recv(1) == b"", "the connection stayed open"
    assert b"\r\nconnection: close" in status.lower(), status
    return status, rest, took


def dataless(api) -> list[str]:
    return [n for n in api.files() if n.endswith(".tmp")]


CASES = {
    "cap-content-length": ({}, "POST", None, TIB2, 400),
    "cap-declared-size-chunked": ({"x-image-meta-size": str(TIB2)}, "POST", None, None, 400),
    "quota-content-length": ({}, "POST", None, 32 * MIB, 413),
    "not-authenticated": (None, "POST", None, TIB2, 401),
    "forbidden-publicize": ({"x-image-meta-is-public": "true"}, "POST", None, 32 * MIB, 403),
    "not-found": ({}, "PUT", "missing", 32 * MIB, 404),
    "conflict-active": ({}, "PUT", "active", 32 * MIB, 409),
    "property-quota": (meta_headers({f"p{i}": "v" for i in range(4)}), "POST", None, 8 * MIB, 413),
}


@pytest.mark.parametrize("case", list(CASES))
def test_an_early_refusal_is_answered_at_once_and_closes(api, active, case):
    extra, method, target, length, status = CASES[case]
    name = f"early-{uuid.uuid4().hex[:8]}"
    head = {} if extra is None else {**as_tenant("A"), **extra}
    head.update({"x-image-meta-name": name, "x-image-meta-disk-format": "raw"})
    head["x-image-meta-container-format"] = "bare"
    path = "/v1/images"
    if target == "missing":
        path += f"/{uuid.uuid4()}"
    elif target == "active":
        path += f"/{active}"
    answer, rest, took = refused_at_once(api.port, head, method, path, length)
    assert answer.startswith(b"HTTP/1.1 %d" % status), (answer, rest)
    assert took < 3, took
    listed = api.get(
        "/images/detail",
        params={"name": name, "is_public": "none"},
        headers=as_tenant("ops", "admin"),
    )
    assert [i["status"] for i in listed.json()["images"]] in ([], ["killed"])
    assert not dataless(api)
    assert api.meta(active, headers=as_tenant("A"))["x-image-meta-status"] == "active"


def test_the_registry_answers_a_caller_without_its_secret_at_once(api):
    answer, rest, took = refused_at_once(
        api.deployment.registry.port,
        {"Content-Type": "application/json"},
        "POST",
        "/images",
        TIB2,
    )
    assert answer.startswith(b"HTTP/1.1 401"), (answer, rest)
    assert took < 3, took


def test_a_small_refused_body_still_keeps_the_connection(api):
    body = b"x" * 1000
    with api.connect(timeout=10) as sock:
        sock.sendall(b"POST /v1/images HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n" + body)
        head, _ = read_response(sock, deadline=5)
        assert head.startswith(b"HTTP/1.1 401"), head
        assert b"connection: close" not in head.lower()
        sock.sendall(b"GET /healthcheck HTTP/1.1\r\nHost: t\r\n\r\n")
        head, rest = read_response(sock, deadline=5)
    assert head.startswith(b"HTTP/1.1 200"), (head, rest)
