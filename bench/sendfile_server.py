"""A bare file server: the least a download, or an upload, can cost on this machine.

    python -m bench.sendfile_server --root DIR --workers N --port-file P

No framework and no event loop: `workers` forked processes accept on one socket, a thread
per connection reads the request line, answers `GET /<name>` with the file's length and
sends the file with os.sendfile() on a blocking socket, reading ahead with the very
window glance-api uses (glance_lite.server.sendfile.ReadAhead), on a socket set up as
glance-api's (TCP_NODELAY). Whatever glance-api does to send a file faster, this server
does too; it is measured beside nginx, and the faster of the two is the download ceiling.

`POST` (or `PUT`) with a Content-Length or chunked body is the upload floor: the body is
received into two buffers of the file store's size, one filling while a second thread
hashes the other with md5, as glance-api's file store does; nothing is stored. The answer
is glance-api's shape, `{"image": {"id", "size", "checksum", "status"}}`, so that the bench
checks it as it checks an upload. What an upload through glance-api does beyond this
(the registry calls, the disk) is the price of storing the image.

With `--s3-bucket` or `--swift-container`, the server is a store's floor instead (the
store bench's), on the server the store tests use (GLANCE_LITE_TEST_S3_* or
GLANCE_LITE_TEST_SWIFT_*): `GET /<name>` streams that object from the store with its
client library (boto3, python-swiftclient), read in the pieces the store drivers read,
each sent on as it comes; with `--s3-bucket`, an upload goes on to the bucket as one
multipart upload in parts of `--s3-part-mib`, each received into a buffer of its own,
sent by boto3 from a pool of `--s3-parts-in-flight` threads (through the s3 store's own
part reader) while a thread hashes the parts with md5 in order. That is what glance-api
does with an image's bytes in those stores, without glance-api.
"""

import argparse
import concurrent.futures
import hashlib
import json
import os
import queue
import signal
import socket
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

from glance_lite.server.sendfile import ReadAhead
from glance_lite.store import s3, swift
from glance_lite.store.filesystem import BUFFERS, WRITE_BUFFER

HEADER_LIMIT = 16384


def serve_connection(conn: socket.socket, root: Path) -> None:
    with conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        head = b""
        while b"\r\n\r\n" not in head and len(head) < HEADER_LIMIT:
            chunk = conn.recv(4096)
            if not chunk:
                return
            head += chunk
        method, target = [*head.split(b"\r\n", 1)[0].split(b" "), b"", b""][:2]
        if method in (b"POST", b"PUT"):
            receive(conn, head)
            return
        if method not in (b"GET", b"HEAD"):
            conn.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        name = Path(target.decode("latin-1")).name
        if not name:  # the bench's health check
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            return
        if FLOOR is not None:
            relay(conn, *FLOOR.download(name))
            return
        try:
            data = open(root / name, "rb")  # noqa: SIM115 - closed below
        except OSError:
            data = None
        if data is None:
            conn.sendall(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            return
        with data:
            size = os.fstat(data.fileno()).st_size
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                + f"Content-Length: {size}\r\nConnection: close\r\n\r\n".encode()
            )
            if method == b"GET":
                send_file(conn, data.fileno(), size)


def relay(conn: socket.socket, size: int, chunks: Iterator[bytes]) -> None:
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
        + f"Content-Length: {size}\r\nConnection: close\r\n\r\n".encode()
    )
    for chunk in chunks:
        conn.sendall(chunk)


def send_file(conn: socket.socket, fd: int, count: int) -> None:
    ahead = ReadAhead(fd, count)
    out = conn.fileno()
    while count > 0:
        sent = os.sendfile(out, fd, None, ahead.sendable(count))
        if not sent:
            return
        count -= sent
        ahead.moved(sent)


def receive(conn: socket.socket, head: bytes) -> None:
    """Take the body, md5 it, answer with its size and checksum."""
    header_end = head.index(b"\r\n\r\n") + 4
    fields = {}
    for line in head[:header_end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        fields[name.strip().lower()] = value.strip().lower()
    chunked = fields.get(b"transfer-encoding") == b"chunked"
    length = None if chunked else int(fields.get(b"content-length") or 0)
    size, digest = STORE(_Body(conn, head[header_end:], length))
    body = json.dumps({"image": {"id": "", "size": size, "checksum": digest, "status": "active"}})
    conn.sendall(
        b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}".encode()
    )


class _Body:
    """A request body, Content-Length (`length`) or chunked (None), read straight into
    the caller's buffer once what came with the headers is used up."""

    def __init__(self, conn: socket.socket, early: bytes, length: int | None):
        self.conn = conn
        self.pending = early
        self.chunked = length is None
        self.left = length or 0  # of the body, or of the current chunk
        self.done = length == 0
        self.chunks = 0

    def read_into(self, view: memoryview) -> int:
        """Up to len(view) bytes of the body; 0 at its end."""
        if self.done:
            return 0
        if self.left == 0:  # chunked: the next chunk's size line
            if self.chunks:
                self._line()  # the CRLF closing the previous chunk
            self.chunks += 1
            self.left = int(self._line().split(b";")[0], 16)
            if self.left == 0:
                self._line()  # no trailers: the final CRLF
                self.done = True
                return 0
        want = min(len(view), self.left)
        if self.pending:
            n = min(want, len(self.pending))
            view[:n] = self.pending[:n]
            self.pending = self.pending[n:]
        else:
            n = self.conn.recv_into(view[:want])
            if not n:
                raise ConnectionError("the body ended early")
        self.left -= n
        self.done = not self.chunked and self.left == 0
        return n

    def _line(self) -> bytes:
        while b"\r\n" not in self.pending:
            more = self.conn.recv(4096)
            if not more:
                raise ConnectionError("the body ended early")
            self.pending += more
        line, self.pending = self.pending.split(b"\r\n", 1)
        return line


def hash_received(body: _Body) -> tuple[int, str]:
    """Fill BUFFERS buffers of WRITE_BUFFER bytes in turn while a thread hashes the last
    one filled: glance-api's file store without the disk."""
    md5 = hashlib.md5(usedforsecurity=False)
    free: queue.Queue = queue.Queue()
    full: queue.Queue = queue.Queue()
    for _ in range(BUFFERS):
        free.put(memoryview(bytearray(WRITE_BUFFER)))

    def hasher() -> None:
        while (item := full.get()) is not None:
            view, n = item
            md5.update(view[:n])
            free.put(view)

    thread = threading.Thread(target=hasher)
    thread.start()
    size = 0
    try:
        ended = False
        while not ended:
            view = free.get()
            filled = _fill(body, view)
            ended = filled < WRITE_BUFFER
            full.put((view, filled))
            size += filled
    finally:
        full.put(None)
        thread.join()
    return size, md5.hexdigest()


class S3Floor:
    """An upload's body as a multipart upload of boto3, md5'd in order beside the
    sending; a download, the object read as the s3 store reads it."""

    def __init__(self, bucket: str, part_size: int, in_flight: int):
        import boto3  # the bench's extra; only this floor needs it
        import botocore.config

        env = os.environ
        self.client = boto3.client(
            "s3",
            endpoint_url=env["GLANCE_LITE_TEST_S3_URL"],
            aws_access_key_id=env["GLANCE_LITE_TEST_S3_KEY"],
            aws_secret_access_key=env["GLANCE_LITE_TEST_S3_SECRET"],
            region_name="us-east-1",
            config=botocore.config.Config(
                s3={"addressing_style": "path"},
                max_pool_connections=in_flight + 1,
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )
        self.bucket, self.part_size, self.in_flight = bucket, part_size, in_flight

    def download(self, name: str) -> tuple[int, Iterator[bytes]]:
        got = self.client.get_object(Bucket=self.bucket, Key=name)
        body = got["Body"]
        return got["ContentLength"], iter(lambda: body.read(s3.READ_CHUNK), b"")

    def __call__(self, body: _Body) -> tuple[int, str]:
        key = f"floor-{uuid.uuid4()}"
        upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
        md5 = hashlib.md5(usedforsecurity=False)
        hashing: queue.Queue = queue.Queue()
        slots = threading.Semaphore(self.in_flight)  # parts held: not yet sent and hashed

        def hasher() -> None:
            while (item := hashing.get()) is not None:
                md5.update(item[0])
                item[1].set()

        def send(number: int, part: memoryview, hashed: threading.Event) -> dict:
            try:
                etag = self.client.upload_part(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=s3._PartReader(part),
                    ContentLength=len(part),
                )["ETag"]
                hashed.wait()
                return {"ETag": etag, "PartNumber": number}
            finally:
                slots.release()

        thread = threading.Thread(target=hasher)
        thread.start()
        size, sending = 0, []
        try:
            with concurrent.futures.ThreadPoolExecutor(self.in_flight) as pool:
                while True:
                    slots.acquire()
                    part = memoryview(bytearray(self.part_size))
                    filled = _fill(body, part)
                    if not filled:
                        slots.release()
                        break
                    hashed = threading.Event()
                    hashing.put((part[:filled], hashed))
                    sending.append(pool.submit(send, len(sending) + 1, part[:filled], hashed))
                    size += filled
                    if filled < self.part_size:
                        break
                parts = [job.result() for job in sending]
        except BaseException:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise
        finally:
            hashing.put(None)
            thread.join()
        self.client.complete_multipart_upload(
            Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
        return size, md5.hexdigest()


class SwiftFloor:
    """A download: the object read with python-swiftclient as the swift store reads it,
    on connections kept between downloads (as the store's pool keeps them)."""

    def __init__(self, container: str):
        import swiftclient  # the bench's extra; only this floor needs it

        env = os.environ
        self.connect = lambda: swiftclient.Connection(
            *(env[f"GLANCE_LITE_TEST_SWIFT_{k}"] for k in ("AUTH", "USER", "KEY")),
            auth_version="1",
        )
        self.container = container
        self.idle: queue.SimpleQueue = queue.SimpleQueue()

    def download(self, name: str) -> tuple[int, Iterator[bytes]]:
        try:
            conn = self.idle.get_nowait()
        except queue.Empty:
            conn = self.connect()
        headers, body = conn.get_object(self.container, name, resp_chunk_size=swift.READ_CHUNK)

        def chunks() -> Iterator[bytes]:
            yield from body
            self.idle.put(conn)

        return int(headers["content-length"]), chunks()


def _fill(body: _Body, view: memoryview) -> int:
    """Bytes of the body put in `view`: all of it, or fewer at the body's end."""
    filled = 0
    while filled < len(view):
        n = body.read_into(view[filled:])
        if not n:
            break
        filled += n
    return filled


STORE = hash_received  # what an upload's body goes to: main() may choose S3Floor
FLOOR: S3Floor | SwiftFloor | None = None  # where a download comes from, if not a file


def worker(listener: socket.socket, root: Path) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve_connection, args=(conn, root), daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sendfile_server")
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--port-file", type=Path, required=True)
    parser.add_argument("--s3-bucket", help="uploads go to this bucket (the s3 floor)")
    parser.add_argument("--s3-part-mib", type=int, default=10)
    parser.add_argument("--s3-parts-in-flight", type=int, default=10)
    parser.add_argument("--swift-container", help="downloads come from this container")
    args = parser.parse_args(argv)
    listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
    pids = []
    for _ in range(max(1, args.workers)):
        pid = os.fork()
        if pid == 0:
            try:
                global STORE, FLOOR  # each worker its own client, made after the fork
                if args.s3_bucket:
                    part_size = args.s3_part_mib << 20
                    FLOOR = STORE = S3Floor(args.s3_bucket, part_size, args.s3_parts_in_flight)
                elif args.swift_container:
                    FLOOR = SwiftFloor(args.swift_container)
                worker(listener, args.root)
            finally:
                os._exit(0)
        pids.append(pid)
    args.port_file.write_text(f"{listener.getsockname()[1]}\n")

    def stop(*_):
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for pid in pids:
        os.waitpid(pid, 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
