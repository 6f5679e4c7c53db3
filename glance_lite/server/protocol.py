"""One HTTP connection: eventlet's protocol with what glance-lite adds to it, and the
wrapping that lets an app's file answer go out by sendfile().

The additions: a request whose body framing is ambiguous (see framing_problem()) is
refused and its connection closed, so that nothing after its headers is ever read as
another request; x-image-meta-* / x-glance-* headers spelled with `_` are recovered; a
request body the app left unread is not read to its end when it is large (see
Protocol.settle_body()); a FileWrapper body of declared length goes by sendfile(), and
the access log line counts the bytes so sent (eventlet's own line, which would not, is
off). When its worker goes away (retire()), a connection finishes the request it has
read, serves at most one more with "Connection: close", and closes; one that waits for a
request, of which nothing has come, is closed and refuses anything that comes after.
"""

import contextlib
import dataclasses
import logging
import re
import socket
import time
from collections.abc import Callable

import eventlet
import eventlet.wsgi
import webob.exc
from eventlet import greenio
from eventlet.hubs import trampoline

from glance_lite import wsgi
from glance_lite.server import request_body, sendfile

# Header families whose underscore spellings (python-glanceclient's
# x-image-meta-disk_format) are recovered from eventlet's raw header list.
RECOVERED_PREFIXES = ("x-image-meta-", "x-glance-")
HEADER_CONFLICT = "glance_lite.header_conflict"
FRAMING_PROBLEM = "glance_lite.framing_problem"  # (status, explanation), from the Protocol
SETTLE_BODY = "glance_lite.settle_body"  # the Protocol's settle_body, for serving()
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


# Transfer codings a client may name (RFC 9110's registry); only a single final
# "chunked" is served. Any other name is a coding this server does not know: 501.
KNOWN_CODINGS = frozenset(
    {"chunked", "compress", "deflate", "gzip", "identity", "trailers", "x-compress", "x-gzip"}
)
DIGITS = re.compile(r"[0-9]+")


def framing_problem(headers, request_version: str) -> tuple[int, str] | None:
    """Why the body of a request with these headers (an email.message.Message, as
    eventlet parsed them) cannot be framed without doubt, as (status, explanation);
    None when it can.

    Two readers of one request must never disagree on where its body ends, or the bytes
    after it can pass as a request of their own (request smuggling). So the only framings
    taken are a single Content-Length of plain digits, or a Transfer-Encoding that is
    exactly one "chunked" (eventlet refuses the two together). A header line the parser
    could not read hides every header after it: that is refused too.
    """
    if headers.defects:
        return 400, "Malformed header line: a header name must be followed by ':'."
    lengths = headers.get_all("Content-Length")
    if lengths is not None:
        if len(lengths) > 1:
            return 400, "Content-Length was sent more than once."
        value = lengths[0].strip(" \t")
        if not DIGITS.fullmatch(value):
            return 400, f"Content-Length must be a number of plain digits, not '{value}'."
    encodings = headers.get_all("Transfer-Encoding")
    if encodings is not None:
        codings = [c.strip(" \t").lower() for c in ",".join(encodings).split(",")]
        unknown = [c for c in codings if c and c not in KNOWN_CODINGS]
        if unknown:
            return 501, f"Transfer-Encoding '{unknown[0]}' is not implemented."
        if codings != ["chunked"] or request_version != "HTTP/1.1":
            return 400, (
                f"Transfer-Encoding '{', '.join(encodings)}' is not supported: send the "
                f"body with a Content-Length, or with 'Transfer-Encoding: chunked' "
                f"alone (HTTP/1.1)."
            )
    return None


HEX = re.compile(rb"[0-9a-fA-F]+")


def chunked_body_end(data: bytes) -> int | None:
    """Where a whole chunked body that starts `data` ends, or None when `data` holds no
    whole one in the plainest spelling (CRLF line ends, no spaces), which eventlet reads
    alike."""
    pos = 0
    size = None
    while size != 0:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            return None
        line = data[pos:eol].split(b";", 1)[0]
        if not HEX.fullmatch(line):
            return None
        size = int(line, 16)
        pos = eol + 2
        if size:
            if data[pos + size : pos + size + 2] != b"\r\n":
                return None
            pos += size + 2
    while True:  # trailer lines, up to an empty one
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            return None
        if eol == pos:
            return pos + 2
        pos = eol + 2


def serving(app):
    """`app` as the server runs it: a request whose framing the Protocol refused gets its
    400 (or 501), one recover_underscore_headers() marked its 400, before any filter; a
    FileWrapper answer with a Content-Length is told it may send its body with
    sendfile() (see FileWrapper)."""

    def call(environ, start_response):
        refusal = _refusal(environ)
        if refusal is not None:
            result = refusal(environ, start_response)
        else:
            result = answer_with_sendfile(environ, start_response)
        settle = environ.get(SETTLE_BODY)
        if settle is not None:
            settle()
        return result

    def answer_with_sendfile(environ, start_response):
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


def _refusal(environ) -> webob.exc.HTTPException | None:
    refused = environ.get(FRAMING_PROBLEM)
    if refused:
        status, explanation = refused
        return webob.exc.status_map[status](explanation=explanation)
    problem = environ.get(HEADER_CONFLICT)
    if problem:
        return webob.exc.HTTPBadRequest(explanation=problem)
    return None


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


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one connection may take of the server (ServerOptions has the options).

    discard_limit: bytes of a refused request's body read while its connection closes;
    header_timeout: seconds from when a request is awaited to the end of its headers;
    body_timeout: seconds a read of a request body may wait without a byte arriving.
    None: no limit of that kind.
    """

    discard_limit: int = 16 << 20
    header_timeout: float | None = None
    body_timeout: float | None = None


# Connections awaiting a request's line and headers: id(protocol) -> (deadline, socket).
# One green thread per serving process (enforce_header_deadlines) shuts down those past
# their deadline; a request pays two dict operations, not a timer of the hub's (a timer
# per request, cancelled but kept in the hub's heap for its 60 s, cost the registry and
# the api a quarter of a HEAD's time).
_awaiting: dict[int, tuple[float, socket.socket]] = {}
DEADLINE_SWEEP = 0.5  # seconds between two looks at _awaiting


def enforce_header_deadlines(interval: float = DEADLINE_SWEEP) -> None:
    """Forever, in a green thread of a serving process: shut down each connection whose
    request line and headers have not all arrived by their deadline. Its thread then
    reads the end of the stream and the connection closes, quietly."""
    while True:
        eventlet.sleep(interval)
        now = time.monotonic()
        for key, (deadline, sock) in list(_awaiting.items()):
            if now >= deadline:
                _awaiting.pop(key, None)
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


# A body the app left unread is read to its end after the answer (the connection then
# stays open) when at most this much of it is left; a larger one closes the connection.
SMALL_BODY = 64 << 10
LINGER_SECONDS = 2.0  # how long a closing connection goes on reading (discarding)


def request_waiting(sock) -> bool:
    """Whether bytes of a request have arrived on a connection that its thread has not
    read yet (closing it then would lose a request its client has sent)."""
    try:
        return bool(sock.fd.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return False  # broken already: as good as idle


class Protocol(eventlet.wsgi.HttpProtocol):
    """eventlet's protocol, plus the framing checks, the header recovery, the settling of
    a body the app left unread, sendfile() for FileWrapper bodies, and the access log
    line. `configured(limits)` gives the class a server runs.

    Its instance appends itself to eventlet's state of the connection ([address, socket,
    state]), so that whoever holds that state (connections.ConnectionPool) can retire()
    the connection or close it when idle (close_if_idle())."""

    limits = Limits()
    retiring: type  # the class a connection takes when its worker goes away (Retiring)
    _linger = False  # close by way of linger(): set for one request, ends the connection
    _body_timeout_set = False  # the socket's timeout is the body's until the next request

    @classmethod
    def configured(cls, limits: Limits) -> type:
        configured = type(cls.__name__, (cls,), {"limits": limits})
        configured.retiring = type(f"Retiring{cls.__name__}", (Retiring, configured), {})
        return configured

    def setup(self):
        super().setup()
        self.conn_state.append(self)

    def retire(self) -> bool:
        """Its worker is going away: this connection serves no request after the one it
        is reading or answering, if any, or after the next one when that answer already
        went out saying "keep-alive" (see Retiring). True when it waits for a request of
        which nothing has been read: then the caller closes it with close_if_idle() if
        none comes.

        The class changes, not a flag: a request served before pays for no check."""
        self.__class__ = self.retiring
        state = self.conn_state[2]
        if state == eventlet.wsgi.STATE_REQUEST:
            if getattr(self.wfile, "status", None) is None:  # no byte of its answer yet
                self._close_after_response()
            return False
        return state == eventlet.wsgi.STATE_IDLE

    def close_if_idle(self) -> bool:
        """Close the connection if it is waiting for a request and no byte of one has
        arrived: whether it did. A request that arrives from now on is refused before
        anything is done with it (its client sees the connection closed, with no answer),
        never served behind a closed connection."""
        if self.conn_state[2] != eventlet.wsgi.STATE_IDLE or request_waiting(self.connection):
            return False
        self.__class__ = self.retiring
        self.refused = True
        self.conn_state[2] = eventlet.wsgi.STATE_CLOSE
        greenio.shutdown_safe(self.connection)  # its thread reads the end, or a late request
        return True

    def handle_one_request(self):
        """One request, its line and headers within limits.header_timeout (eventlet's
        own timeout applies to each read, so a client sending a byte now and then was
        never dropped). enforce_header_deadlines() watches the deadline."""
        if self._body_timeout_set:
            self.connection.settimeout(self.server.socket_timeout)
            self._body_timeout_set = False
        if self.limits.header_timeout is None:
            return super().handle_one_request()
        key = id(self)
        _awaiting[key] = (time.monotonic() + self.limits.header_timeout, self.connection)
        try:
            return super().handle_one_request()
        finally:
            _awaiting.pop(key, None)

    def get_environ(self, *args, **kwargs):
        _awaiting.pop(id(self), None)  # the headers are in
        environ = super().get_environ(*args, **kwargs)
        environ["wsgi.input"].__class__ = request_body.Input  # eventlet's, with readinto()
        body_timeout = self.limits.body_timeout
        if body_timeout is not None and (
            self.headers.get("Transfer-Encoding") or self.headers.get("Content-Length")
        ):
            # reads of the body (and the short answer to a request with one) wait at most
            # this long for each piece; the next request gets the usual timeout back
            self.connection.settimeout(body_timeout)
            self._body_timeout_set = True
        problem = framing_problem(self.headers, self.request_version)
        if problem is not None:
            environ[FRAMING_PROBLEM] = problem
            self._close_after_response()
        recover_underscore_headers(environ)
        environ[wsgi.CLOSE_CONNECTION_HOOK] = self._close_after_response
        environ["wsgi.file_wrapper"] = FileWrapper
        environ[SENDFILE] = self._sendfile
        environ[SETTLE_BODY] = self.settle_body
        return environ

    def _close_after_response(self):
        self.close_connection = 1
        self._linger = True

    def settle_body(self) -> None:
        """Called by serving() once the app has answered, before the answer goes out:
        what becomes of the request body the app did not read.

        A body read to its end, or one of at most SMALL_BODY bytes still to come, keeps
        the connection (eventlet reads the rest after the answer). Any other (a large
        declared length, a chunked body not at its end, one whose client still waits
        for "100 Continue") is never read: the answer says "Connection: close" and goes
        out at once, and linger() then ends the connection. A client that sent headers
        and a little of a huge body gets its refusal at once, not when its socket times
        out.
        """
        body = self.environ["eventlet.input"]
        if body.chunked_input:
            if body.chunk_length == 0 or self._read_buffered_chunks(body):
                return  # read to its last chunk
        else:
            left = (body.content_length or 0) - body.position
            if left <= 0 or (left <= SMALL_BODY and not body.should_send_hundred_continue):
                return
        self._close_after_response()

    def _read_buffered_chunks(self, body) -> bool:
        """Read a chunked body the app never touched when all of it has already arrived
        (a small refused body, and maybe a request pipelined after it): whether it was.
        Only what the connection holds without waiting is looked at."""
        if body.chunk_length != -1 or body.should_send_hundred_continue:
            return False
        sock = self.connection
        timeout = sock.gettimeout()
        sock.settimeout(0.0)
        try:
            arrived = self.rfile.peek(SMALL_BODY)
        except OSError:
            return False
        finally:
            sock.settimeout(timeout)
        if chunked_body_end(arrived[:SMALL_BODY]) is None:
            return False
        while body.read(SMALL_BODY):
            pass
        return body.chunk_length == 0

    def finish(self):
        self.conn_state[2] = eventlet.wsgi.STATE_CLOSE  # no longer waits for a request
        if self._linger:
            self.linger()
        super().finish()

    def linger(self) -> None:
        """End the connection so that the client reads the whole answer: tell it no more
        is coming (shutdown for writing), then read and drop what it still sends, at most
        limits.discard_limit bytes for at most LINGER_SECONDS, before closing. Closing
        at once with unread bytes would reset the connection, and a reset can destroy
        the answer before the client reads it."""
        sock = self.connection
        left = self.limits.discard_limit
        buffer = bytearray(min(left, 64 << 10) or 1)
        with contextlib.suppress(OSError), eventlet.Timeout(LINGER_SECONDS, False):
            self.wfile.flush()
            sock.shutdown(socket.SHUT_WR)
            while left > 0:
                got = sock.recv_into(buffer, min(left, len(buffer)))
                if not got:
                    return
                left -= got

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


# How long a connection of a worker going away waits for a request, once idle: a client
# that keeps its connection open for the next request gets it served (with "Connection:
# close") rather than the connection closed under it as it sends.
RETIRE_WAIT = 2.0


class Retiring(Protocol):
    """A connection whose worker is going away (Protocol.retire()): the request it reads
    is answered with "Connection: close"; when it waits for one, it waits at most
    RETIRE_WAIT seconds, then closes. One closed by close_if_idle() refuses what comes."""

    refused = False

    def handle_one_request(self):
        if not self._request_arrives(RETIRE_WAIT):
            self.close_connection = 1
            return None
        return super().handle_one_request()

    def parse_request(self):
        if self.refused:
            self.close_connection = 1
            return False
        return super().parse_request()

    def get_environ(self, *args, **kwargs):
        environ = super().get_environ(*args, **kwargs)
        self._close_after_response()
        return environ

    def _request_arrives(self, wait: float) -> bool:
        """Whether a byte of a request is here, or arrives within `wait` seconds (or the
        client closes: the read then finds the end)."""
        sock = self.connection
        timeout = sock.gettimeout()
        sock.settimeout(0.0)
        try:
            if self.rfile.peek(1):
                return True
        except OSError:
            return True  # the read will meet the same error
        finally:
            sock.settimeout(timeout)
        try:
            trampoline(sock, read=True, timeout=wait, timeout_exc=TimeoutError)
        except TimeoutError:
            return False
        return True


Protocol.retiring = Retiring


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
