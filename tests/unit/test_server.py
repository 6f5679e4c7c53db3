"""The server module's request plumbing that runs before any filter, and its tuning."""

import os
import platform
import subprocess
import sys

import webob

from glance_lite import server


def environ_with(raw, **present):
    environ = webob.Request.blank("/").environ
    environ["headers_raw"] = tuple(raw)
    environ.update(present)
    return environ


def test_underscored_image_meta_headers_are_put_back():
    environ = environ_with(
        [("x-image-meta-disk_format", "raw"), ("X-Image-Meta-Property-distro_name", "deb")]
    )
    server.recover_underscore_headers(environ)
    req = webob.Request(environ)
    assert req.headers["X-Image-Meta-Disk-Format"] == "raw"
    assert req.headers["X-Image-Meta-Property-Distro-Name"] == "deb"


def test_glance_headers_are_put_back_and_others_stay_dropped():
    environ = environ_with([("x-glance-registry-purge_props", "false"), ("x_roles", "admin")])
    server.recover_underscore_headers(environ)
    assert environ["HTTP_X_GLANCE_REGISTRY_PURGE_PROPS"] == "false"
    assert "HTTP_X_ROLES" not in environ


def test_both_spellings_with_one_value_are_accepted():
    environ = environ_with(
        [("x-image-meta-disk_format", "raw")], HTTP_X_IMAGE_META_DISK_FORMAT="raw"
    )
    server.recover_underscore_headers(environ)
    assert server.HEADER_CONFLICT not in environ


def test_both_spellings_with_different_values_are_a_400():
    environ = environ_with(
        [("x-image-meta-disk_format", "raw")], HTTP_X_IMAGE_META_DISK_FORMAT="qcow2"
    )
    server.recover_underscore_headers(environ)
    app = server.serving(lambda e, s: [])
    resp = webob.Request(environ).get_response(app)
    assert resp.status_int == 400
    assert "x-image-meta-disk-format" in resp.text


def test_the_heap_keeps_its_slack_on_glibc():
    # in a child: the setting is process-wide
    code = "from glance_lite import server; print(server.keep_heap_slack())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    expected = platform.libc_ver()[0] == "glibc"
    assert done.stdout.strip() == str(expected), done.stderr


def test_sendfile_reads_ahead_in_windows_and_stays_within_them(tmp_path, monkeypatch):
    path = tmp_path / "image"
    path.write_bytes(b"x" * (3 * server.READAHEAD + 5))
    asked = []
    monkeypatch.setattr(
        os,
        "posix_fadvise",
        lambda fd, offset, length, advice: asked.append((offset, length, advice)),
    )
    with open(path, "rb") as f:
        f.seek(100)
        ahead = server._ReadAhead(f.fileno(), 3 * server.READAHEAD - 95)
        first = ahead.sendable(10 * server.READAHEAD)
        assert first == server.READAHEAD  # no further than what the kernel was asked for
        assert asked == [(100, server.READAHEAD, os.POSIX_FADV_WILLNEED)]
        ahead.moved(first - 1)
        assert ahead.sendable(10 * server.READAHEAD) == server.READAHEAD + 1
        assert [offset for offset, _, _ in asked] == [100, 100 + server.READAHEAD]


def test_sendfile_on_something_not_a_file_is_not_held_back(monkeypatch):
    read_end, write_end = os.pipe()
    try:
        ahead = server._ReadAhead(read_end, 10)
        assert ahead.sendable(10) == 10
    finally:
        os.close(read_end)
        os.close(write_end)
