"""A bare sendfile() file server: the least a download of a file can cost on this machine.

    python -m bench.sendfile_server --root DIR --workers N --port-file P

No framework and no event loop: `workers` forked processes accept on one socket, a thread
per connection reads the request line, answers `GET /<name>` with the file's length and
sends the file with os.sendfile() on a blocking socket, reading ahead with the very
window glance-api uses (glance_lite.server.sendfile.ReadAhead), on a socket set up as
glance-api's (TCP_NODELAY). Whatever glance-api does to send a file faster, this server
does too; it is measured beside nginx, and the faster of the two is the download ceiling.
"""

import argparse
import os
import signal
import socket
import sys
import threading
from pathlib import Path

from glance_lite.server.sendfile import ReadAhead

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
        if method not in (b"GET", b"HEAD"):
            conn.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        name = Path(target.decode("latin-1")).name
        if not name:  # the bench's health check
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
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


def send_file(conn: socket.socket, fd: int, count: int) -> None:
    ahead = ReadAhead(fd, count)
    out = conn.fileno()
    while count > 0:
        sent = os.sendfile(out, fd, None, ahead.sendable(count))
        if not sent:
            return
        count -= sent
        ahead.moved(sent)


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
    args = parser.parse_args(argv)
    listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
    pids = []
    for _ in range(max(1, args.workers)):
        pid = os.fork()
        if pid == 0:
            try:
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
