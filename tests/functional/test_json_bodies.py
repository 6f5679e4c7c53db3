"""JSON request bodies are bounded (`max_json_body_size`): the api's members PUT and the
registry's create, update and members calls answer 413 for a body over the limit,
before reading it when its Content-Length says so, and as soon as it passes the limit
when it comes chunked; then the connection closes. The process's memory stays low."""

import json
import socket
import time
import uuid
from pathlib import Path

import pytest

from tests.functional.conftest import read_response
from tests.functional.test_api_limits import Pump, closed_by_peer

pytestmark = pytest.mark.functional

MIB = 1 << 20
HUGE = 277 * MIB  # the members body that made a worker peak at 1.6 GB
LIMIT = MIB  # the limit of the `bounded` deployment
DISCARD = MIB  # and its upload_discard_limit: what a closing connection still reads
LIMIT_TEXT = "Request body too large: the limit is"


@pytest.fixture(scope="module")
def bounded(deploy):
    return deploy(
        "bounded",
        registry_options={"max_json_body_size": LIMIT, "upload_discard_limit": DISCARD},
        max_json_body_size=LIMIT,
        upload_discard_limit=DISCARD,
    )


def request_head(method: str, path: str, framing: str) -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"{framing}\r\n\r\n"
    ).encode()


def registry_address(client) -> tuple[str, int]:
    return "127.0.0.1", client.deployment.registry.port


def api_members_path(client) -> str:
    image = client.reserve(name="shared")
    return f"/v1/images/{image['id']}/members"


def registry_paths(client) -> list[tuple[str, str]]:
    image = client.reserve(name="registry-side")
    return [
        ("POST", "/images"),
        ("PUT", f"/images/{image['id']}"),
        ("PUT", f"/images/{image['id']}/members"),
        ("PUT", f"/images/{image['id']}/members/tenant-b"),
    ]


def refuse_declared(address: tuple[str, int], method: str, path: str, limit: int) -> None:
    """A huge declared body, of which only the first bytes come: 413 at once, closed."""
    sock = socket.create_connection(address, timeout=10)
    try:
        sock.sendall(request_head(method, path, f"Content-Length: {HUGE}") + b'{"memb')
        started = time.monotonic()
        head, rest = read_response(sock, deadline=10)
        assert time.monotonic() - started < 5
        assert head.startswith(b"HTTP/1.1 413"), (head, rest)
        assert f"{LIMIT_TEXT} {limit} bytes".encode() in rest
        assert b"\r\nconnection: close" in head.lower(), head
        assert closed_by_peer(sock), "the server kept the connection open"
    finally:
        sock.close()


DEFAULT_LIMIT = 64 * MIB


def test_a_huge_declared_members_body_is_413_at_once_from_the_api(client):
    refuse_declared(("127.0.0.1", client.port), "PUT", api_members_path(client), DEFAULT_LIMIT)


def test_huge_declared_bodies_are_413_at_once_from_the_registry(client):
    for method, path in registry_paths(client):
        refuse_declared(registry_address(client), method, path, DEFAULT_LIMIT)


def vm_hwm(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def refuse_chunked(address: tuple[str, int], method: str, path: str, pid: int) -> None:
    """A chunked body far over the limit: cut off near the limit; memory stays low."""
    total = 64 * MIB
    reset_peak(pid)
    before = vm_hwm(pid)
    sock = socket.create_connection(address, timeout=20)
    try:
        sock.sendall(request_head(method, path, "Transfer-Encoding: chunked"))
        pump = Pump(sock, total)
        pump.start()
        head, rest = read_response(sock, deadline=20)
        assert head.startswith(b"HTTP/1.1 413"), (head, rest)
        assert f"{LIMIT_TEXT} {LIMIT} bytes".encode() in rest
        assert closed_by_peer(sock), "the server kept the connection open"
        pump.join(20)
        assert pump.error is not None, f"all {pump.sent} bytes were accepted"
        # the limit, what the server reads while it closes, plus socket buffers
        assert pump.sent < LIMIT + DISCARD + 16 * MIB, pump.sent
    finally:
        sock.close()
    assert vm_hwm(pid) - before < 8 * MIB


def test_a_chunked_members_body_over_the_limit_is_cut_off_by_the_api(bounded):
    path = api_members_path(bounded)
    refuse_chunked(("127.0.0.1", bounded.port), "PUT", path, bounded.api_pid)


def test_chunked_bodies_over_the_limit_are_cut_off_by_the_registry(bounded):
    pid = bounded.deployment.registry.proc.pid
    for method, path in registry_paths(bounded):
        refuse_chunked(registry_address(bounded), method, path, pid)


def test_bodies_within_the_limit_are_accepted(bounded):
    image = bounded.reserve(name="within")
    members = {"memberships": [{"member_id": f"t{i:03}", "can_share": False} for i in range(128)]}
    resp = bounded.put(f"/images/{image['id']}/members", json=members)
    assert resp.status_code == 204, resp.text
    assert len(bounded.get(f"/images/{image['id']}/members").json()["members"]) == 128
    # a registry record of exactly the limit, sent chunked
    properties = {f"p{i}": "v" * 8000 for i in range(127)}
    properties["pad"] = ""
    body = json.dumps({"image": {"name": "big", "properties": properties}}).encode()
    properties["pad"] = "w" * (LIMIT - len(body))
    body = json.dumps({"image": {"name": "big", "properties": properties}}).encode()
    assert len(body) == LIMIT
    sock = socket.create_connection(registry_address(bounded), timeout=20)
    try:
        sock.sendall(request_head("POST", "/images", "Transfer-Encoding: chunked"))
        sock.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        head, rest = read_response(sock)
    finally:
        sock.close()
    assert head.startswith(b"HTTP/1.1 200"), (head, rest[:200])
    created = json.loads(rest)["image"]
    assert created["properties"] == properties


def test_a_members_body_over_the_limit_through_requests_is_413(bounded):
    image = bounded.reserve(name="over")
    member = "m" * 200
    members = {"memberships": [{"member_id": f"{member}{i}"} for i in range(LIMIT // 200)]}
    resp = bounded.put(f"/images/{image['id']}/members", json=members)
    assert resp.status_code == 413
    assert LIMIT_TEXT in resp.text
    assert bounded.get(f"/images/{image['id']}/members").json()["members"] == []
    # the server still answers
    assert bounded.head(f"/images/{image['id']}").status_code == 200


def test_the_api_passes_the_registrys_413_on(deploy):
    # an api that admits more than its registry: the registry's answer reaches the client
    client = deploy("registry-bounded", registry_options={"max_json_body_size": 4096})
    image = client.reserve(name="mid")
    members = {"memberships": [{"member_id": uuid.uuid4().hex} for _ in range(100)]}
    resp = client.put(f"/images/{image['id']}/members", json=members)
    assert resp.status_code == 413
    assert f"{LIMIT_TEXT} 4096 bytes" in resp.text
