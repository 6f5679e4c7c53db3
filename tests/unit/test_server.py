"""The server module's request plumbing that runs before any filter, and its tuning."""

import ctypes
import http.client
import io
import mmap
import os
import time

import pytest
import webob

from glance_lite.server import protocol, sendfile


def environ_with(raw, **present):
    environ = webob.Request.blank("/").environ
    environ["headers_raw"] = tuple(raw)
    environ.update(present)
    return environ


def test_underscored_image_meta_headers_are_put_back():
    environ = environ_with(
        [("x-image-meta-disk_format", "raw"), ("X-Image-Meta-Property-distro_name", "deb")]
    )
    protocol.recover_underscore_headers(environ)
    req = webob.Request(environ)
    assert req.headers["X-Image-Meta-Disk-Format"] == "raw"
    assert req.headers["X-Image-Meta-Property-Distro-Name"] == "deb"


def test_glance_headers_are_put_back_and_others_stay_dropped():
    environ = environ_with([("x-glance-registry-purge_props", "false"), ("x_roles", "admin")])
    protocol.recover_underscore_headers(environ)
    assert environ["HTTP_X_GLANCE_REGISTRY_PURGE_PROPS"] == "false"
    assert "HTTP_X_ROLES" not in environ


def test_both_spellings_with_one_value_are_accepted():
    environ = environ_with(
        [("x-image-meta-disk_format", "raw")], HTTP_X_IMAGE_META_DISK_FORMAT="raw"
    )
    protocol.recover_underscore_headers(environ)
    assert protocol.HEADER_CONFLICT not in environ


def test_both_spellings_with_different_values_are_a_400():
    environ = environ_with(
        [("x-image-meta-disk_format", "raw")], HTTP_X_IMAGE_META_DISK_FORMAT="qcow2"
    )
    protocol.recover_underscore_headers(environ)
    app = protocol.serving(lambda e, s: [])
    resp = webob.Request(environ).get_response(app)
    assert resp.status_int == 400
    assert "x-image-meta-disk-format" in resp.text


def _uncached_file(path, size: int) -> None:
    """A file of `size` bytes none of which is in the page cache (written, synced, its
    clean pages dropped, a few tries: the kernel may keep a page it is still writing
    back); skips where this file system keeps them (tmpfs)."""
    with open(path, "wb") as f:
        f.write(b"x" * size)
        f.flush()
        os.fsync(f.fileno())
    with open(path, "rb") as f:
        for _ in range(20):
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
            if not _cached_pages(f.fileno(), size):
                return
            time.sleep(0.01)
    pytest.skip("this file system keeps the pages of a synced file cached")


def _cached_pages(fd: int, size: int) -> int:
    """How many pages of the file are in the page cache, by mincore() on a mapping of it
    (which, unlike any read, never makes the kernel read ahead)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    vector = (ctypes.c_ubyte * -(-size // mmap.PAGESIZE))()
    with mmap.mmap(fd, size, access=mmap.ACCESS_COPY) as mapped:  # private: never written
        first = ctypes.c_char.from_buffer(mapped)
        failed = libc.mincore(ctypes.addressof(first), size, vector)
        del first  # the mapping closes only once nothing points into it
    if failed:
        raise OSError(ctypes.get_errno(), "mincore failed")
    return sum(byte & 1 for byte in vector)


def _recording_fadvise(monkeypatch) -> list:
    asked = []
    real = os.posix_fadvise

    def record(fd, offset, length, advice):
        asked.append((offset, length, advice))
        real(fd, offset, length, advice)

    monkeypatch.setattr(os, "posix_fadvise", record)
    return asked


@pytest.fixture
def small_windows(monkeypatch):
    """Windows of 256 KiB instead of 8 MiB: the same reading ahead, files 32 times smaller
    (ReadAhead reads READAHEAD at each call)."""
    monkeypatch.setattr(sendfile, "READAHEAD", 256 << 10)


def test_sendfile_reads_ahead_in_windows_and_stays_within_them(tmp_path, monkeypatch):
    path = tmp_path / "image"
    _uncached_file(path, 3 * sendfile.READAHEAD + 5)
    asked = _recording_fadvise(monkeypatch)
    with open(path, "rb") as f:
        f.seek(100)
        ahead = sendfile.ReadAhead(f.fileno(), 3 * sendfile.READAHEAD - 95)
        first = ahead.sendable(10 * sendfile.READAHEAD)
        assert first == sendfile.READAHEAD  # no further than what the kernel was asked for
        assert asked == [(100, sendfile.READAHEAD, os.POSIX_FADV_WILLNEED)]
        ahead.moved(first - 1)
        assert ahead.sendable(10 * sendfile.READAHEAD) == sendfile.READAHEAD + 1
        assert [offset for offset, _, _ in asked] == [100, 100 + sendfile.READAHEAD]


def test_a_window_already_in_the_page_cache_is_not_asked_for(tmp_path, monkeypatch, small_windows):
    path = tmp_path / "image"
    path.write_bytes(b"x" * (2 * sendfile.READAHEAD))
    with open(path, "rb") as f:
        f.read()  # every page cached
    asked = _recording_fadvise(monkeypatch)
    with open(path, "rb") as f:
        ahead = sendfile.ReadAhead(f.fileno(), 2 * sendfile.READAHEAD)
        assert ahead.sendable(10 * sendfile.READAHEAD) == sendfile.READAHEAD  # still windowed
        ahead.moved(sendfile.READAHEAD)
        assert ahead.sendable(10 * sendfile.READAHEAD) == sendfile.READAHEAD
    assert asked == []


def test_sendfile_on_something_not_a_file_is_not_held_back(monkeypatch):
    read_end, write_end = os.pipe()
    try:
        ahead = sendfile.ReadAhead(read_end, 10)
        assert ahead.sendable(10) == 10
    finally:
        os.close(read_end)
        os.close(write_end)


def parsed_headers(*lines: str):
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return http.client.parse_headers(io.BytesIO(raw))


@pytest.mark.parametrize(
    ("lines", "status"),
    [
        (["Content-Length: 12"], None),
        (["Transfer-Encoding: chunked"], None),
        (["Transfer-Encoding:  Chunked "], None),
        (["Content-Length: 1", "Content-Length: 1"], 400),
        (["Content-Length: +1"], 400),
        (["Content-Length: \xb2"], 400),
        (["Transfer-Encoding: identity"], 400),
        (["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"], 400),
        (["Transfer-Encoding: chunked,"], 400),
        (["Transfer-Encoding: x-custom"], 501),
        (["Transfer-Encoding : chunked", "Content-Length: 3"], 400),
    ],
)
def test_only_unambiguous_body_framing_is_taken(lines, status):
    problem = protocol.framing_problem(parsed_headers("Host: x", *lines), "HTTP/1.1")
    assert (problem and problem[0]) == status, problem


def test_chunked_is_refused_from_an_http_1_0_client():
    headers = parsed_headers("Transfer-Encoding: chunked")
    assert protocol.framing_problem(headers, "HTTP/1.0")[0] == 400


@pytest.mark.parametrize(
    ("data", "end"),
    [
        (b"5\r\nhello\r\n0\r\n\r\nGET /", 15),
        (b"5;ext=1\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n", 35),
        (b"5\r\nhello\r\n0\r\n", None),
        (b"5\r\nhell", None),
        (b" 5\r\nhello\r\n0\r\n\r\n", None),
        (b"5\nhello\r\n0\r\n\r\n", None),
        (b"5\r\nhelloXX0\r\n\r\n", None),
    ],
)
def test_a_whole_chunked_body_is_found_only_in_its_plainest_spelling(data, end):
    assert protocol.chunked_body_end(data) == end
