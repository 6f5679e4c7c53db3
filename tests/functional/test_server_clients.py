"""Slow and idle clients cannot take a service down: a crowd of idle connections, clients
that send their headers a byte at a time, and uploads that stall, while a normal client
keeps getting answers. Real glance-api and glance-registry processes, one worker each."""

import os
import socket
import time
import uuid

import pytest
import requests

from tests.functional.conftest import read_response
from tests.functional.servers import wait_for

pytestmark = pytest.mark.functional

HEADER_TIMEOUT = 2
BODY_TIMEOUT = 2
MIB = 1 << 20


@pytest.fixture(scope="module")
def api(deploy):
    limits = {"client_header_timeout": HEADER_TIMEOUT, "client_body_timeout": BODY_TIMEOUT}
    return deploy("clients", registry_options=limits, **limits)


@pytest.fixture(scope="module")
def crowded(deploy):
    """Default limits (1,000 connections a worker, 60 s for headers)."""
    return deploy("crowded")


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def answered(api) -> bool:
    resp = requests.get(f"{api.v1}/images", timeout=3)
    return resp.status_code == 200


@pytest.mark.parametrize("service", ["api", "registry"])
def test_more_idle_connections_than_a_worker_holds_do_not_stop_it(crowded, service):
    port = crowded.port if service == "api" else crowded.deployment.registry.port
    idle = []
    try:
        for i in range(1050):
            sock = connect(port)
            if i % 2:
                sock.sendall(b"GE")  # a request line begun, never finished
            idle.append(sock)
        for _ in range(5):
            start = time.monotonic()
            assert answered(crowded)
            assert time.monotonic() - start < 3
        # the idle connections made room: the oldest were closed, not the newest
        assert closed_by_server(idle[0], within=5)
    finally:
        for sock in idle:
            sock.close()


def test_a_client_sending_its_headers_a_byte_at_a_time_is_dropped(api):
    request = b"GET /v1/images HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 100 + b"\r\n\r\n"
    with connect(api.port) as sock:
        start = time.monotonic()
        closed = False
        for byte in request:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                closed = True
                break
            assert answered(api)
            time.sleep(0.5)
            if time.monotonic() - start > HEADER_TIMEOUT + 3:
                break
        closed = closed or closed_by_server(sock, within=1)
        assert closed, "a slow header sender was never dropped"
        assert time.monotonic() - start < HEADER_TIMEOUT + 3


@pytest.mark.parametrize("service", ["api", "registry"])
def test_an_idle_connection_is_closed_after_the_header_timeout(api, service):
    port = api.port if service == "api" else api.deployment.registry.port
    with connect(port) as sock:
        start = time.monotonic()
        assert closed_by_server(sock, within=HEADER_TIMEOUT + 3)
        assert time.monotonic() - start >= HEADER_TIMEOUT - 0.5
    with connect(port) as sock:  # so is one kept alive after a request
        sock.sendall(b"GET /healthcheck HTTP/1.1\r\nHost: t\r\n\r\n")
        head, _ = read_response(sock, deadline=5)
        assert head.startswith(b"HTTP/1.1 200"), head
        assert closed_by_server(sock, within=HEADER_TIMEOUT + 3)


def test_a_stalled_upload_ends_killed_and_leaves_no_file(api):
    image_id = str(uuid.uuid4())
    with connect(api.port) as sock:
        sock.sendall(
            (
                "POST /v1/images HTTP/1.1\r\nHost: t\r\n"
                "Content-Type: application/octet-stream\r\n"
                f"x-image-meta-id: {image_id}\r\n"
                "x-image-meta-disk-format: raw\r\nx-image-meta-container-format: bare\r\n"
                f"Content-Length: {8 * MIB}\r\n\r\n"
            ).encode()
            + os.urandom(MIB)
        )
        wait_for(lambda: api.head(f"/images/{image_id}").status_code == 200)
        assert answered(api)
        wait_for(lambda: api.status(image_id) == "killed", timeout=BODY_TIMEOUT + 5)
    wait_for(lambda: api.no_file_for(image_id))
    assert not [n for n in api.files() if n.endswith(".tmp")]


def test_an_upload_that_keeps_sending_is_not_cut(api):
    def slow():
        for _ in range(4):
            time.sleep(BODY_TIMEOUT * 0.6)
            yield b"s" * 1000

    image = api.upload(slow())
    assert image["size"] == 4000


def test_with_every_connection_busy_a_new_one_gets_503_at_once(deploy):
    api = deploy("bounded", max_client_connections=3)
    uploads = []
    try:
        for _ in range(3):
            sock = connect(api.port)
            sock.sendall(
                b"PUT /v1/images/nothing-yet HTTP/1.1\r\nHost: t\r\n"
                b"Content-Length: 1000\r\n\r\nsome"  # a request in progress: not idle
            )
            uploads.append(sock)
        time.sleep(0.5)
        start = time.monotonic()
        resp = requests.get(f"{api.v1}/images", timeout=5)
        assert resp.status_code == 503, resp.text
        assert resp.headers["Retry-After"] == "1"
        assert time.monotonic() - start < 3
    finally:
        for sock in uploads:
            sock.close()
    wait_for(lambda: answered(api))


def test_a_stalled_json_body_is_a_400_not_a_500(api):
    registry = api.deployment.registry
    with connect(registry.port) as sock:
        sock.sendall(
            b"POST /images HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b'Content-Length: 200\r\n\r\n{"image": '
        )
        head, rest = read_response(sock, deadline=BODY_TIMEOUT + 5)
    assert head.startswith(b"HTTP/1.1 400"), (head, rest)
    assert b"could not be read to its end" in rest
    assert "Traceback" not in registry.log()
