"""One HTTP connection: eventlet's protocol with what glance-lite adds to it, and the
wrapping that lets an app's file answer go out by sendfile().

The additions: x-image-meta-* / x-glance-* headers spelled with `_` are recovered, an
app may ask for the connection to close after its answer instead of draining the rest
of the request body, a FileWrapper body of declared length goes by sendfile(), and the
access log line counts the bytes so sent (eventlet's own line, which would not, is off).
"""

import contextlib
import logging
import time
from collections.abc import Callable

import eventlet.wsgi
import webob.exc

from glance_lite import wsgi
from glance_lite.server import sendfile

# Header families whose underscore spellings (python-glanceclient's
# x-image-meta-disk_format) are recovered from eventlet's raw header list.
RECOVERED_PREFIXES = ("x-image-meta-", "x-glance-")
HEADER_CONFLICT = "glance_lite.header_conflict"
# environ key of the Protocol's sendfile(filelike, count), for serving() (not for apps)
SENDFILE = "glance_lite.sendfile"
APP_STATUS = "glance_lite.status"  # the status the app gave, for the access log
ACCESS_LOG = "eventlet.wsgi.server"


def recover_underscore_headers(environ) -> None:
    """Put x-image-meta-* / x-glance-* headers spelled with `_` back into the environ.

    eventlet drops every header whose name holds an underscore (a defence against header
    smuggling) but keeps the raw list in environ["headers_raw"]. For the two families
    above, `_` and `-` mean the same; both spellings of one name with different values
    mark the request for a 400. Every other underscore header stays dropped.
    """
    raw = environ.get("headers_raw") or ()
    for name, value in raw:
        if "_" not in name or not name.lower().startswith(RECOVERED_PREFIXES):
            continue
        key = "HTTP_" + name.upper().replace("-", "_")
        present = environ.get(key)
        if present is None:
            environ[key] = value
        elif present != value:
            environ[HEADER_CONFLICT] = (
                f"Conflicting values for header {name.lower().replace('_', '-')}: "
                f"it was sent more than once, with '-' and '_' spellings"
            )


def serving(app):
    """`app` as the server runs it: a request recover_underscore_headers() marked gets
    its 400 before any filter; a FileWrapper answer with a Content-Length is told it may
    send its body with sendfile() (see FileWrapper)."""

    def call(environ, start_response):
        problem = environ.get(HEADER_CONFLICT)
        if problem:
            return webob.exc.HTTPBadRequest(explanation=problem)(environ, start_response)
        answer: list = []

        def noting_start_response(status, headers, exc_info=None):
            answer[:] = [status, headers]
            environ[APP_STATUS] = status
            return start_response(status, headers, exc_info)

        result = app(environ, noting_start_response)
        sender = environ.get(SENDFILE)
        if isinstance(result, FileWrapper) and sender is not None and answer:
            length = _sendable_length(environ, *answer)
            if length is not None:
                result.send_rest = lambda filelike, sent: sender(filelike, length - sent)
        return result

    return call


def _sendable_length(environ, status: str, headers) -> int | None:
    """The declared body length, when the body goes out as plain bytes of that length."""
    if environ["REQUEST_METHOD"] == "HEAD" or status[:3] in ("204", "304"):
        return None
    for name, value in headers:
        if name.lower() == "content-length":
            with contextlib.suppress(ValueError):
                return int(value)
    return None  # chunked: the server frames each block itself


class FileWrapper:
    """environ["wsgi.file_wrapper"] (PEP 3333): the body read from `filelike` (read(n),
    close()) in blocks of `block_size`. When the answer reaches the server unchanged and
    declares its Content-Length, the server (serving()) lets it send what follows the
    first block with os.sendfile(): the bytes then go from the page cache to the socket
    without being copied through Python. `filelike` must then have fileno(), its
    position being where read() stopped."""

    def __init__(self, filelike, block_size: int = 1 << 20):
        self.filelike = filelike
        self.block_size = block_size
        self.send_rest: Callable | None = None  # (filelike, bytes sent so far), by serving()

    def __iter__(self):
        # The first block goes the usual way, with the status line and headers; then,
        # when allowed, the rest goes straight to the socket.
        sent = 0
        while True:
            if sent and self.send_rest is not None and hasattr(self.filelike, "fileno"):
                self.send_rest(self.filelike, sent)
                return
            block = self.filelike.read(self.block_size)
            if not block:
                return
            sent += len(block)
            yield block

    def close(self) -> None:
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()


class Protocol(eventlet.wsgi.HttpProtocol):
    """eventlet's protocol, plus the header recovery, a way for the app to say "close
    this connection after the response" instead of draining the body, sendfile() for
    FileWrapper bodies, and the access log line."""

    def get_environ(self, *args, **kwargs):
        environ = super().get_environ(*args, **kwargs)
        recover_underscore_headers(environ)
        environ[wsgi.CLOSE_CONNECTION_HOOK] = self._close_after_response
        environ["wsgi.file_wrapper"] = FileWrapper
        environ[SENDFILE] = self._sendfile
        return environ

    def _close_after_response(self):
        self.close_connection = 1

    def handle_one_response(self):
        start = time.time()
        self._sent_aside = 0
        counted = CountingWriter(self.wfile)
        self.wfile = counted
        try:
            super().handle_one_response()
        finally:
            self.wfile = counted.inner
            self._log_access(counted, time.time() - start)

    def _log_access(self, counted: "CountingWriter", wall: float) -> None:
        client_ip, client_port = eventlet.wsgi.addr_to_host_port(self.client_address)
        line = self.server.log_format % {
            "client_ip": client_ip,
            "client_port": client_port,
            "date_time": self.log_date_time_string(),
            "request_line": self.requestline,
            "status_code": counted.status or self._app_status(),
            "body_length": counted.count + self._sent_aside,
            "wall_seconds": wall,
        }
        logging.getLogger(ACCESS_LOG).info(line)

    def _app_status(self) -> str:
        status = getattr(self, "environ", {}).get(APP_STATUS) or "500"
        return status.split(" ", 1)[0]

    def _sendfile(self, filelike, count: int) -> None:
        sendfile.send(self.connection, filelike, count, self._count_aside)

    def _count_aside(self, sent: int) -> None:
        self._sent_aside += sent


class CountingWriter:
    """The connection's write file, counting the bytes written through it and noting
    the status of the first status line, for the access log."""

    def __init__(self, inner):
        self.inner = inner
        self.count = 0
        self.status: int | None = None

    def writelines(self, parts) -> None:
        parts = list(parts)
        if self.status is None and parts and parts[0].startswith(b"HTTP/"):
            with contextlib.suppress(IndexError, ValueError):
                self.status = int(parts[0].split(b" ", 2)[1])
        self.count += sum(map(len, parts))
        self.inner.writelines(parts)

    def write(self, data) -> int:
        self.count += len(data)
        return self.inner.write(data)

    def __getattr__(self, name):
        return getattr(self.inner, name)
