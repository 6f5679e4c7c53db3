"""Short data is never served as a clean 200: a store file whose size differs from the
image's recorded size is a 500 before any header, and data that shrinks while it is
sent ends the connection before the declared length, on the sendfile() path (the real
api) and on the plain iteration path (the store's chunks through the eventlet server)."""

import os
import socket
import textwrap
import time

import pytest

from tests.functional.conftest import md5, read_response
from tests.functional.servers import run_script

pytestmark = pytest.mark.functional

MIB = 1 << 20


@pytest.mark.parametrize("change", ["truncated", "grown"])
def test_a_store_file_of_the_wrong_size_is_a_500_before_any_data(client, change):
    data = os.urandom(300 * 1024)
    image = client.upload(data)
    path = client.image_file(image["id"])
    if change == "truncated":
        os.truncate(path, 100 * 1024)
        stored = 100 * 1024
    else:
        with open(path, "ab") as f:
            f.write(b"tail")
        stored = len(data) + 4
    resp = client.get(f"/images/{image['id']}")
    assert resp.status_code == 500
    assert "x-image-meta-checksum" not in resp.headers
    assert "ETag" not in resp.headers
    assert (
        f"The data of image {image['id']} is damaged: the store holds {stored} bytes, "
        f"the image's size is {len(data)}."
    ) in resp.text
    assert data not in resp.content
    logged = [line for line in client.api_log().splitlines() if image["id"] in line]
    assert any(
        f"the store holds {stored} bytes of it, the registry records {len(data)}" in line
        for line in logged
    ), logged
    # the metadata is still there, and stays as it was
    meta = client.meta(image["id"])
    assert meta["x-image-meta-size"] == str(len(data))
    assert meta["x-image-meta-checksum"] == md5(data)


def test_the_content_length_of_a_download_is_the_recorded_size(client):
    data = os.urandom(5000)
    image = client.upload(data)
    resp = client.get(f"/images/{image['id']}")
    assert resp.headers["Content-Length"] == client.meta(image["id"])["x-image-meta-size"]
    assert resp.content == data


def receive_some(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(min(65536, count - len(data)))
        assert chunk, "the connection ended early"
        data += chunk
    return data


def receive_to_the_end(sock: socket.socket, timeout: float = 20.0) -> tuple[int, str]:
    """Bytes received until the server ends the connection, and how it ended."""
    sock.settimeout(timeout)
    total = 0
    while True:
        try:
            chunk = sock.recv(1 << 20)
        except ConnectionResetError:
            return total, "reset"
        except TimeoutError:
            return total, "timeout"
        if not chunk:
            return total, "closed"
        total += len(chunk)


def test_data_shrinking_during_a_download_cuts_the_connection(client):
    size = 48 * MIB
    piece = os.urandom(MIB)
    image = client.upload(iter([piece] * 48))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # a small window: the server can only be a few MiB ahead of what the client read
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.settimeout(20)
    sock.connect(("127.0.0.1", client.port))
    try:
        sock.sendall(f"GET /v1/images/{image['id']} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1)
        assert head.startswith(b"HTTP/1.1 200"), head
        assert f"content-length: {size}\r\n".encode() in head.lower()
        received = len(receive_some(sock, 2 * MIB))
        time.sleep(0.5)  # the server fills the socket buffers and waits
        os.truncate(client.image_file(image["id"]), MIB)
        rest, ending = receive_to_the_end(sock)
    finally:
        sock.close()
    assert ending in ("closed", "reset"), "the server left the connection hanging"
    assert received + rest < size
    # the api goes on serving
    other = client.upload(b"still serving")
    assert client.get(f"/images/{other['id']}").content == b"still serving"


def test_a_refused_download_leaves_the_connection_usable(client):
    image = client.upload(os.urandom(70_000))
    os.truncate(client.image_file(image["id"]), 10)
    sock = client.connect()
    try:
        request = f"GET /v1/images/{image['id']} HTTP/1.1\r\nHost: test\r\n\r\n".encode()
        sock.sendall(request)
        head, rest = read_response(sock)
        assert head.startswith(b"HTTP/1.1 500"), head
        assert b"is damaged" in rest
        # nothing of the image went out: the same connection takes the next request
        sock.sendall(request.replace(b"GET ", b"HEAD ", 1))
        head, rest = read_response(sock)
        assert head.startswith(b"HTTP/1.1 200"), head
        assert rest == b""
    finally:
        sock.close()


# The plain iteration path: the file store's chunks as the body, without the server's
# file wrapper (as under a server that has none), through the eventlet server stack.
PLAIN_PATH_SCRIPT = textwrap.dedent(
    """
    import sys, json, os
    from glance_lite.server import green
    green.monkey_patch()
    from glance_lite.server import protocol
    from glance_lite.store.filesystem import FilesystemStore
    import http.client, logging
    import eventlet, eventlet.wsgi

    datadir, image_id = sys.argv[1], sys.argv[2]
    store = FilesystemStore(datadir, chunk_size=65536)
    location = f"file://{datadir}/{image_id}"

    def app(environ, start_response):
        chunks, size = store.get(location)
        start_response("200 OK", [("Content-Length", str(size))])
        return chunks

    sock = eventlet.listen(("127.0.0.1", 0))
    eventlet.spawn(
        eventlet.wsgi.server, sock, protocol.serving(app), protocol=protocol.Protocol,
        log=logging.getLogger("test"), log_output=False,
    )
    conn = http.client.HTTPConnection("127.0.0.1", sock.getsockname()[1], timeout=10)
    conn.request("GET", "/image")
    resp = conn.getresponse()
    out = {"status": resp.status, "length": int(resp.headers["Content-Length"])}
    got = len(resp.read(1 << 20))
    os.truncate(os.path.join(datadir, image_id), 1 << 20)
    try:
        got += len(resp.read())
        out["ending"] = "complete"
    except http.client.IncompleteRead as err:
        got += len(err.partial)
        out["ending"] = "IncompleteRead"
    except OSError as err:
        out["ending"] = type(err).__name__
    out["received"] = got
    print(json.dumps(out))
    """
)


def test_data_shrinking_on_the_plain_iteration_path_cuts_the_connection(tmp_path):
    image_id = "1f0c0a8e-2d7b-4a6e-9f43-5d0e5b6a7c11"
    size = 32 * MIB
    (tmp_path / image_id).write_bytes(os.urandom(size))
    out = run_script(PLAIN_PATH_SCRIPT, str(tmp_path), image_id)
    assert out["status"] == 200 and out["length"] == size
    assert out["ending"] == "IncompleteRead", out
    assert out["received"] < size
