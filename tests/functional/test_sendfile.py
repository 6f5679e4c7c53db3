"""FileWrapper bodies through the real eventlet server: sent with sendfile() after the
first block when the answer declares its length, the usual way otherwise, and counted
whole in the access log either way.

Each case runs in a process of its own, as the services do: eventlet's monkey-patching
first, then a server on a free port and a client in the same hub."""

import textwrap

import pytest

from tests.functional.servers import run_script

SCRIPT = textwrap.dedent(
    """
    import sys, json, os
    from glance_lite.server import green
    green.monkey_patch()
    from glance_lite.server import protocol
    import http.client, logging, io
    import eventlet, eventlet.wsgi

    path, mode = sys.argv[1], sys.argv[2]
    sendfile_calls = []
    real_sendfile = os.sendfile

    def counting_sendfile(out_fd, in_fd, offset, count):
        sent = real_sendfile(out_fd, in_fd, offset, count)
        sendfile_calls.append(sent)
        return sent

    os.sendfile = counting_sendfile
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    logging.getLogger(protocol.ACCESS_LOG).addHandler(handler)
    logging.getLogger(protocol.ACCESS_LOG).setLevel(logging.INFO)

    def app(environ, start_response):
        f = open(path, "rb")
        size = os.fstat(f.fileno()).st_size
        headers = [("Content-Type", "application/octet-stream")]
        if mode != "chunked":
            declared = size + 1000 if mode == "short" else size
            headers.append(("Content-Length", str(declared)))
        start_response("200 OK", headers)
        if environ["REQUEST_METHOD"] == "HEAD":  # as webob answers a HEAD
            f.close()
            return []
        return environ["wsgi.file_wrapper"](f, 65536)

    sock = eventlet.listen(("127.0.0.1", 0))
    eventlet.spawn(
        eventlet.wsgi.server, sock, protocol.serving(app), protocol=protocol.Protocol,
        log=logging.getLogger(protocol.ACCESS_LOG), log_output=False,
    )
    conn = http.client.HTTPConnection("127.0.0.1", sock.getsockname()[1], timeout=10)
    out = {}
    try:
        conn.request("GET", "/image")
        resp = conn.getresponse()
        body = resp.read()
        out["status"] = resp.status
        out["same"] = body == open(path, "rb").read()
        out["length"] = len(body)
        conn.request("HEAD", "/image")  # the same connection, kept alive
        head = conn.getresponse()
        out["head"] = [head.status, len(head.read())]
    except (http.client.HTTPException, OSError) as err:
        out["error"] = type(err).__name__
    eventlet.sleep(0.1)
    out["sendfile"] = sendfile_calls
    out["log"] = log.getvalue().splitlines()
    print(json.dumps(out))
    """
)


def run(tmp_path, size: int, mode: str) -> dict:
    path = tmp_path / "image"
    path.write_bytes(bytes(range(256)) * (size // 256) + b"x" * (size % 256))
    return run_script(SCRIPT, str(path), mode)


def logged_bytes(line: str) -> int:
    return int(line.rsplit(" ", 2)[1])


def test_a_declared_length_body_goes_by_sendfile_after_its_first_block(tmp_path):
    size = 3 * 1024 * 1024 + 5
    out = run(tmp_path, size, "length")
    assert out["status"] == 200 and out["same"] and out["length"] == size
    assert sum(out["sendfile"]) == size - 65536  # all but the first 64 KiB block
    assert out["head"] == [200, 0]
    get_line, head_line = out["log"]
    assert '"GET /image HTTP/1.1" 200' in get_line
    assert logged_bytes(get_line) > size  # the body and the header lines
    assert logged_bytes(head_line) < 1000


def test_a_chunked_body_goes_through_python_and_is_logged_whole(tmp_path):
    size = 200_000
    out = run(tmp_path, size, "chunked")
    assert out["status"] == 200 and out["same"] and out["length"] == size
    assert out["sendfile"] == []
    assert logged_bytes(out["log"][0]) > size


def test_a_file_shorter_than_its_declared_length_ends_the_connection(tmp_path):
    size = 300_000
    out = run(tmp_path, size, "short")
    # the client sees a body cut short, not a hang; the server logs what it sent
    assert out.get("error") == "IncompleteRead"
    assert sum(out["sendfile"]) == size - 65536
    assert logged_bytes(out["log"][0]) > size


@pytest.mark.parametrize("size", [0, 1000, 65536])
def test_a_body_no_longer_than_one_block_needs_no_sendfile(tmp_path, size):
    out = run(tmp_path, size, "length")
    assert out["status"] == 200 and out["same"] and out["length"] == size
    assert out["sendfile"] == []
