"""The eventlet WSGI server both services run on. The only module that knows eventlet.

`monkey_patch()` is called first thing by the console-script entry points. `serve()` binds
the socket, reports the port it got, and either serves in this process (workers = 0) or
forks `workers` children that share the socket, respawning any that die.

Signals:
- SIGHUP: re-read the config files, load the app again and replace the serving process(es)
  gracefully: the old ones stop accepting and finish their in-flight requests.
- SIGTERM / SIGINT: stop accepting, let in-flight requests finish for up to
  graceful_shutdown_timeout seconds, then exit.
"""

import contextlib
import ctypes
import errno
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable

LOG = logging.getLogger(__name__)

POOL_SIZE = 1000  # green threads per serving process, as Glance
RESPAWN_BACKOFF = 1.0  # seconds before respawning a child that died right after starting


def monkey_patch() -> None:
    import warnings

    with warnings.catch_warnings():
        # eventlet warns that it is deprecated on import; this module is where we keep it.
        warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
        import eventlet

    eventlet.monkey_patch()
    # psycopg 3 waits for PostgreSQL in C unless told otherwise, which would block the
    # whole worker during every query; its select() wait is green once patched.
    os.environ.setdefault("PSYCOPG_WAIT_FUNC", "wait_select")


class ServerOptions:
    """The server's settings, read from the config each time it (re)loads."""

    def __init__(self, conf, default_port: int):
        from glance_lite import config

        self.host = conf.bind_host
        self.port = default_port if conf.bind_port is None else conf.bind_port
        self.backlog = conf.backlog
        self.tcp_keepidle = conf.tcp_keepidle
        self.workers = config.default_workers() if conf.workers is None else conf.workers
        self.max_header_line = conf.max_header_line
        self.keepalive = conf.http_keepalive
        self.client_socket_timeout = conf.client_socket_timeout or None
        self.grace = conf.graceful_shutdown_timeout
        self.port_file = conf.port_file

    def binding(self):
        return (self.host, self.port)


def bind(opts: ServerOptions) -> socket.socket:
    import eventlet

    family = socket.AF_INET6 if ":" in opts.host else socket.AF_INET
    try:
        sock = eventlet.listen((opts.host, opts.port), family=family, backlog=opts.backlog)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise SystemExit(
                f"ERROR: cannot listen on {opts.host}:{opts.port}: the address is already in use"
            ) from None
        raise SystemExit(f"ERROR: cannot listen on {opts.host}:{opts.port}: {exc}") from None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    # Accepted sockets inherit this: eventlet writes headers and a large body separately,
    # and with Nagle on, a kept-alive client waited ~40 ms (delayed ACK) for the body.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if hasattr(socket, "TCP_KEEPIDLE"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, opts.tcp_keepidle)
    return sock


def report_port(sock: socket.socket, opts: ServerOptions, service: str) -> None:
    host, port = sock.getsockname()[:2]
    LOG.info("%s listening on http://%s:%s (pid %d)", service, host, port, os.getpid())
    if opts.port_file:
        tmp = f"{opts.port_file}.tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, opts.port_file)


# Header families whose underscore spellings (python-glanceclient's
# x-image-meta-disk_format) are recovered from eventlet's raw header list.
RECOVERED_PREFIXES = ("x-image-meta-", "x-glance-")
HEADER_CONFLICT = "glance_lite.header_conflict"
# environ key of the Protocol's sendfile(filelike, count), for serving() (not for apps)
SENDFILE = "glance_lite.sendfile"
APP_STATUS = "glance_lite.status"  # the status the app gave, for the access log
SENDFILE_YIELD_EVERY = 16 << 20  # bytes a sendfile loop sends before letting others run
READAHEAD = 8 << 20  # bytes a sendfile loop asks the kernel to read ahead at a time
ACCESS_LOG = "eventlet.wsgi.server"


class ThreadOffload:
    """Blocking work (hashing, writes, fsync) on eventlet's pool of OS threads, so the
    hub keeps serving: `offload(fn, *args)` waits for the result; `offload.start_after(
    previous, fn, *args)` returns at once with a green thread whose wait() gives it."""

    def __call__(self, fn, *args):
        from eventlet import tpool

        return tpool.execute(fn, *args)

    def start_after(self, previous, fn, *args):
        """A green thread that waits for `previous` (one of these, or None), then runs
        fn on the pool; its wait() gives fn's result, or the first error of the chain."""
        import eventlet
        from eventlet import tpool

        def run():
            if previous is not None:
                previous.wait()
            return tpool.execute(fn, *args)

        return eventlet.spawn(run)


thread_offload = ThreadOffload()


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
    import webob.exc

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


def protocol_class():
    import eventlet
    import eventlet.hubs
    import eventlet.wsgi

    from glance_lite import wsgi

    class Protocol(eventlet.wsgi.HttpProtocol):
        """eventlet's protocol, plus the header recovery, a way for the app to say "close
        this connection after the response" instead of draining the body, sendfile()
        for FileWrapper bodies, and the access log line (eventlet's own, which would
        not count the bytes sendfile() sends, is off)."""

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
            counted = _CountingWriter(self.wfile)
            self.wfile = counted
            try:
                super().handle_one_response()
            finally:
                self.wfile = counted.inner
                self._log_access(counted, time.time() - start)

        def _log_access(self, counted: "_CountingWriter", wall: float) -> None:
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
            """Send `count` bytes of `filelike` from where it stands, with sendfile()."""
            sock = self.connection
            out_fd, in_fd = sock.fileno(), filelike.fileno()
            since_yield = 0
            ahead = _ReadAhead(in_fd, count)
            while count > 0:
                try:
                    sent = os.sendfile(out_fd, in_fd, None, ahead.sendable(count))
                except BlockingIOError:
                    eventlet.hubs.trampoline(
                        sock,
                        write=True,
                        timeout=sock.gettimeout(),
                        timeout_exc=TimeoutError("timed out"),
                    )
                    continue
                if not sent:  # the file is shorter than the length announced
                    raise OSError(f"file ended {count} bytes before its Content-Length")
                count -= sent
                ahead.moved(sent)
                self._sent_aside += sent
                since_yield += sent
                if since_yield >= SENDFILE_YIELD_EVERY:
                    since_yield = 0
                    eventlet.sleep(0)

    return Protocol


class _ReadAhead:
    """Keeps the kernel reading a file READAHEAD bytes at a time ahead of a sendfile()
    loop, and each sendfile() within what it was asked to read. An image not in the
    page cache (uploads bypass it) is then read from disk in big requests, instead of
    with the kernel's own 128-256 KiB readahead inside sendfile(). A window whose last
    page is already cached is taken as read; a descriptor that is not a plain file is
    not asked for anything."""

    def __init__(self, fd: int, count: int):
        self.fd = fd
        try:
            self.position: int | None = os.lseek(fd, 0, os.SEEK_CUR)
        except OSError:
            self.position = None
        self.end = (self.position or 0) + count
        self.asked = self.position or 0  # asked to be read up to here
        self._probe = bytearray(1)

    def sendable(self, count: int) -> int:
        """How much of `count` the next sendfile() should send: at most up to where the
        reading was asked for, after asking for more when it is less than a window."""
        if self.position is None:
            return count
        while self.asked - self.position < READAHEAD and self.asked < self.end:
            if not self._cached(min(self.asked + READAHEAD, self.end) - 1):
                try:
                    os.posix_fadvise(self.fd, self.asked, READAHEAD, os.POSIX_FADV_WILLNEED)
                except OSError:
                    self.position = None  # not a file to read ahead in: stop asking
                    return count
            self.asked += READAHEAD
        return max(1, min(count, self.asked - self.position))

    def _cached(self, offset: int) -> bool:
        """Whether the page holding byte `offset` is in the page cache: a one-byte read
        that may not wait (1 us) spares a window already read its WILLNEED, which walks
        the window's pages even when all are cached (120 us for 8 MiB)."""
        try:
            return os.preadv(self.fd, [self._probe], offset, os.RWF_NOWAIT) > 0
        except (OSError, AttributeError):  # not cached, or no RWF_NOWAIT for this file
            return False

    def moved(self, sent: int) -> None:
        if self.position is not None:
            self.position += sent


class _CountingWriter:
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


def run_wsgi(sock: socket.socket, app, opts: ServerOptions, on_hup: Callable | None = None) -> None:
    """Serve `app` on `sock` in this process until SIGTERM/SIGINT (or SIGHUP when no
    `on_hup` is given), then drain."""
    import eventlet
    import eventlet.wsgi

    eventlet.wsgi.MAX_HEADER_LINE = opts.max_header_line
    server = eventlet.spawn(
        eventlet.wsgi.server,
        sock,
        serving(app),
        protocol=protocol_class(),
        custom_pool=eventlet.GreenPool(POOL_SIZE),
        log=logging.getLogger(ACCESS_LOG),
        log_output=False,  # the Protocol writes the access log line
        keepalive=opts.keepalive,
        socket_timeout=opts.client_socket_timeout,
        debug=False,
    )

    def stop(signum):
        LOG.info("signal %d: finishing in-flight requests, then exiting", signum)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        server.kill(SystemExit)
        if opts.grace:
            eventlet.spawn_after(opts.grace, _exit_after_grace, opts.grace)

    handlers = {signal.SIGTERM: stop, signal.SIGINT: stop, signal.SIGHUP: stop}
    if on_hup is not None:
        handlers[signal.SIGHUP] = lambda signum: on_hup()
    dispatch_signals(handlers)
    server.wait()


def dispatch_signals(handlers: dict[int, Callable[[int], None]]) -> None:
    """Run each handler in a green thread of its own when its signal arrives.

    A Python signal handler cannot wake eventlet's hub (its epoll wait is retried after
    the interruption), so the interpreter writes the signal number into a pipe the hub
    watches (signal.set_wakeup_fd); a green thread reads it and runs the real handler.
    """
    import eventlet
    from eventlet.hubs import trampoline

    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    os.set_blocking(write_fd, False)

    def dispatch():
        while True:
            trampoline(read_fd, read=True)
            with contextlib.suppress(BlockingIOError):
                for signum in os.read(read_fd, 64):
                    eventlet.spawn_n(handlers[signum], signum)

    eventlet.spawn_n(dispatch)
    signal.set_wakeup_fd(write_fd)
    for signum in handlers:
        signal.signal(signum, lambda signum, frame: None)


def _exit_after_grace(grace: int) -> None:
    LOG.warning("requests still in flight after %ds; exiting anyway", grace)
    os._exit(0)


# glibc mallopt() parameters: how much free memory the top of the heap keeps when it is
# trimmed (and adds when it grows), and from what size an allocation gets its own mmap.
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3
HEAP_SLACK = 16 << 20
HEAP_ALLOCATIONS_BELOW = 4 << 20


def keep_heap_slack() -> bool:
    """Let glibc's heap keep HEAP_SLACK bytes free at its top instead of 128 KiB, and
    serve every allocation under HEAP_ALLOCATIONS_BELOW from it.

    A request that builds a few hundred KiB (a listing of 1,000 images passes through
    five such buffers) otherwise returns the memory to the kernel as it ends, or gets a
    fresh mmap, and faults new pages in on the next one: half the CPU time of a registry
    listing here (1.30 -> 0.64 ms a call). A fixed mmap threshold (glibc moves its own
    with each free) keeps that from depending on the order of past allocations: 0.58-0.80
    -> 0.57-0.65 ms. The slack is touched once and reused: RSS holds it. False where the
    C library has no mallopt (not glibc)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return (
        mallopt(M_TOP_PAD, HEAP_SLACK) == 1
        and mallopt(M_MMAP_THRESHOLD, HEAP_ALLOCATIONS_BELOW) == 1
    )


class Service:
    """One service: its config, how to load its app, and the process tree serving it."""

    def __init__(self, name: str, conf, load_app: Callable, default_port: int):
        self.name = name
        self.conf = conf
        self.load_app = load_app
        self.default_port = default_port

    def options(self) -> ServerOptions:
        return ServerOptions(self.conf, self.default_port)

    def serve(self) -> None:
        keep_heap_slack()
        opts = self.options()
        app = self.load_app()  # fail early, in the parent, on a bad paste or db config
        sock = bind(opts)
        report_port(sock, opts, self.name)
        if opts.workers == 0:
            self._serve_in_process(sock, app, opts)
        else:
            del app
            Supervisor(self, sock, opts).run()

    def _serve_in_process(self, sock, app, opts) -> None:
        holder = AppHolder(app)

        def reload():
            self.reload_config()
            try:
                holder.app = self.load_app()
            except Exception:
                LOG.exception("reload failed; still serving the previous configuration")
            else:
                LOG.info("configuration reloaded")

        run_wsgi(sock, holder, opts, on_hup=reload)

    def reload_config(self) -> None:
        self.conf.reload_config_files()
        LOG.info("re-read %s", ", ".join(self.conf.config_file or []))


class AppHolder:
    """A WSGI app whose target can be swapped; requests in flight keep the old one."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


class Supervisor:
    """The parent of `workers` forked children: respawns, reloads and stops them."""

    def __init__(self, service: Service, sock, opts: ServerOptions):
        self.service = service
        self.sock = sock
        self.opts = opts
        self.children: dict[int, float] = {}  # pid -> start time, current generation
        self.retiring: set[int] = set()  # old generation, draining
        self.pending: list[int] = []  # signals received, handled in the loop

    def run(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, lambda s, f: self.pending.append(s))
        for _ in range(self.opts.workers):
            self.spawn()
        while True:
            self.reap()
            while self.pending:
                sig = self.pending.pop(0)
                if sig == signal.SIGHUP:
                    self.reload()
                else:
                    self.shutdown(sig)
                    return
            time.sleep(0.05)

    def spawn(self) -> None:
        pid = os.fork()
        if pid:
            self.children[pid] = time.monotonic()
            return
        try:
            self._child()
        except SystemExit as exc:
            os._exit(exc.code if isinstance(exc.code, int) else 1)
        except BaseException:
            LOG.exception("worker failed")
            os._exit(1)
        os._exit(0)

    def _child(self) -> None:
        import eventlet.hubs

        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        eventlet.hubs.use_hub()  # a fresh hub: the parent's epoll must not be shared
        app = self.service.load_app()
        LOG.info("%s worker %d serving", self.service.name, os.getpid())
        run_wsgi(self.sock, app, self.opts)

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in self.retiring:
                self.retiring.discard(pid)
                continue
            started = self.children.pop(pid, None)
            if started is None:
                continue
            LOG.error("worker %d died (status %d); starting another", pid, status)
            if time.monotonic() - started < RESPAWN_BACKOFF:
                time.sleep(RESPAWN_BACKOFF)
            self.spawn()

    def reload(self) -> None:
        try:
            self.service.reload_config()
            opts = self.service.options()
            self.service.load_app()  # refuse a broken configuration before touching workers
        except (Exception, SystemExit):
            LOG.exception("reload failed; still serving the previous configuration")
            return
        if opts.binding() != self.opts.binding():
            old = self.sock
            self.sock = bind(opts)
            report_port(self.sock, opts, self.service.name)
            old.close()
        elif opts.port_file:
            report_port(self.sock, opts, self.service.name)
        self.opts = opts
        old_children = list(self.children)
        self.children = {}
        for _ in range(opts.workers):
            self.spawn()
        for pid in old_children:
            self.retiring.add(pid)
            _signal(pid, signal.SIGHUP)
        LOG.info("configuration reloaded; %d old worker(s) draining", len(old_children))

    def shutdown(self, sig: int) -> None:
        pids = list(self.children) + list(self.retiring)
        LOG.info("signal %d: stopping %d worker(s)", sig, len(pids))
        for pid in pids:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + (self.opts.grace or 3600) + 5
        remaining = set(pids)
        while remaining and time.monotonic() < deadline:
            for pid in list(remaining):
                try:
                    done, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    done = pid
                if done:
                    remaining.discard(pid)
            time.sleep(0.05)
        for pid in remaining:
            _signal(pid, signal.SIGKILL)
        self.sock.close()


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def fail(message: str) -> None:
    """Stop a console script at start-up the way Glance's do: `ERROR: <message>`, status 1."""
    sys.exit(f"ERROR: {message}")
