"""The server's request body read straight into a buffer, and the api's readers of it."""

import io

import eventlet.wsgi
import pytest

from glance_lite import exceptions
from glance_lite.api.bodies import RequestBody
from glance_lite.api.layers import Limited
from glance_lite.api.repository import ClientDisconnected
from glance_lite.server.request_body import Input

DATA = bytes(range(256)) * 40  # 10,240 bytes


def body_input(raw: bytes, length: int | None, chunked: bool = False) -> Input:
    rfile = io.BufferedReader(io.BytesIO(raw), buffer_size=1000)
    return Input(rfile, length, None, chunked_input=chunked)


def chunked(data: bytes, sizes: list[int], trailer: bytes = b"") -> bytes:
    out, pos = [], 0
    for n in sizes:
        out.append(b"%x;ext=1\r\n" % n + data[pos : pos + n] + b"\r\n")
        pos += n
    return b"".join(out) + b"0\r\n" + trailer + b"\r\n"


def read_all_into(stream, size: int) -> bytes:
    buf = bytearray(size)
    got = []
    while n := stream.readinto(buf):
        got.append(bytes(buf[:n]))
    return b"".join(got)


def test_a_sized_body_fills_the_buffer_and_stops_at_its_length():
    stream = body_input(DATA + b"GET / HTTP/1.1\r\n", len(DATA))
    buf = bytearray(4096)
    assert stream.readinto(buf) == 4096 and bytes(buf) == DATA[:4096]
    assert read_all_into(stream, 3000) == DATA[4096:]
    assert stream.position == len(DATA)
    assert stream.rfile.read() == b"GET / HTTP/1.1\r\n"  # the next request, untouched


def test_a_chunked_body_is_read_across_its_chunks_and_trailers():
    raw = chunked(DATA, [1, 4000, 3, 6236], trailer=b"X-Sum: 1\r\n") + b"NEXT"
    stream = body_input(raw, None, chunked=True)
    assert read_all_into(stream, 4096) == DATA
    assert stream.chunk_length == 0  # at its end, as eventlet's read() leaves it
    assert stream.readinto(bytearray(10)) == 0
    assert stream.rfile.read() == b"NEXT"


def test_read_and_readinto_may_be_mixed_on_one_chunked_body():
    stream = body_input(chunked(DATA, [5000, 5240]), None, chunked=True)
    head = stream.read(100)
    assert head + read_all_into(stream, 777) == DATA


@pytest.mark.parametrize(
    "raw, error",
    [
        (b"zz\r\nabc\r\n0\r\n\r\n", ValueError),  # not a chunk size
        (b"10\r\nabc", OSError),  # the connection ends inside a chunk
        (b"3\r\nabc\r\n", ValueError),  # ... or before the last chunk
    ],
)
def test_bad_or_cut_chunked_framing_raises(raw, error):
    with pytest.raises(error):
        read_all_into(body_input(raw, None, chunked=True), 64)


def test_the_request_body_reads_into_a_buffer_and_counts_down():
    body = RequestBody(body_input(DATA, len(DATA)), len(DATA), chunk_size=1024)
    assert read_all_into(body, 3000) == DATA


def test_a_sized_request_body_that_ends_early_is_a_client_disconnect():
    body = RequestBody(body_input(DATA[:100], len(DATA)), len(DATA), chunk_size=1024)
    with pytest.raises(ClientDisconnected):
        read_all_into(body, 3000)
    with pytest.raises(ClientDisconnected):
        list(RequestBody(body_input(DATA[:100], len(DATA)), len(DATA), chunk_size=64))


def test_bad_chunked_framing_is_a_client_disconnect_either_way():
    raw = b"zz\r\n"
    with pytest.raises(ClientDisconnected):
        read_all_into(RequestBody(body_input(raw, None, True), None, 64), 64)
    with pytest.raises(ClientDisconnected):
        list(RequestBody(body_input(raw, None, True), None, 64))


def test_an_input_without_readinto_is_read_in_pieces():
    plain = eventlet.wsgi.Input(io.BufferedReader(io.BytesIO(DATA)), len(DATA), None)
    body = RequestBody(plain, len(DATA), chunk_size=4000)
    assert not hasattr(body, "readinto")
    assert [len(c) for c in body] == [4000, 4000, 2240]


@pytest.mark.parametrize("limit", [0, 999, len(DATA) - 1])
def test_a_limit_stops_readinto_past_it_having_passed_on_at_most_limit_bytes(limit):
    error = exceptions.LimitExceeded("too big")
    source = RequestBody(body_input(DATA, len(DATA)), len(DATA), chunk_size=1024)
    limited = Limited(source, limit, error)
    buf = bytearray(4096)
    passed = 0
    with pytest.raises(exceptions.LimitExceeded) as caught:
        while n := limited.readinto(buf):
            passed += n
    assert caught.value is error
    assert passed <= limit


def test_a_body_within_the_limit_passes_whole_either_way():
    error = exceptions.LimitExceeded("too big")
    limited = Limited(RequestBody(body_input(DATA, len(DATA)), len(DATA), 1024), len(DATA), error)
    assert read_all_into(limited, 4096) == DATA
    limited = Limited(iter([DATA[:10], DATA[10:]]), len(DATA), error)
    assert not hasattr(limited, "readinto")
    assert b"".join(limited) == DATA
