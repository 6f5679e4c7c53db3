"""Serving a service: in this process, or in forked workers under a supervisor.

`Service.serve()` binds the socket, reports the port it got, and either serves in this
process (workers = 0) or forks `workers` children that share the socket, respawning any
that die.

Signals:
- SIGHUP: re-read the config files, load the app again and replace the serving process(es)
  gracefully: once the new workers accept, the old ones stop accepting and finish what
  their connections hold (run_wsgi).
- SIGTERM / SIGINT: close the listening socket, let in-flight requests finish for up to
  graceful_shutdown_timeout seconds, then exit.
"""

import contextlib
import ctypes
import errno
import logging
import os
import signal
import socket
import struct
import time
from collections.abc import Callable

import eventlet
import eventlet.event
import eventlet.hubs
import eventlet.patcher
import eventlet.wsgi
import greenlet
from eventlet import greenio
from eventlet.hubs import trampoline

from glance_lite import background
from glance_lite.server import protocol
from glance_lite.server.connections import ConnectionPool
from glance_lite.server.listener import ServerOptions, bind, report_port

LOG = logging.getLogger(__name__)

RESPAWN_BACKOFF = 1.0  # seconds before respawning a child that died right after starting
READY_WAIT = 30  # on a reload, the longest the old workers wait for the new ones to accept
READY = struct.Struct("=i")  # what a worker writes to say it accepts: its pid
CONTROL_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


def run_wsgi(sock: socket.socket, app, opts: ServerOptions, on_hup: Callable | None = None) -> None:
    """Serve `app` on `sock` in this process until SIGTERM/SIGINT (or SIGHUP when no
    `on_hup` is given), then retire: stop accepting and close this process's copy of the
    listening socket at once (the supervisor's and the other workers' copies keep it open
    on a reload; on a stop, once the supervisor has closed its own, new connections are
    refused, not left waiting), and let each connection finish what it has
    (ConnectionPool.retire)."""
    eventlet.wsgi.MAX_HEADER_LINE = opts.max_header_line
    if opts.header_timeout is not None:
        eventlet.spawn_n(protocol.enforce_header_deadlines)
    server = eventlet.wsgi.Server(
        sock,
        sock.getsockname(),
        protocol.serving(app),
        log=logging.getLogger(protocol.ACCESS_LOG),
        log_output=False,  # the Protocol writes the access log line
        protocol=protocol.Protocol.configured(
            protocol.Limits(
                discard_limit=opts.discard_limit,
                header_timeout=opts.header_timeout,
                body_timeout=opts.body_timeout,
            )
        ),
        keepalive=opts.keepalive,
        socket_timeout=opts.client_socket_timeout,
        debug=False,
    )
    pool = ConnectionPool(opts.max_connections)
    acceptor = eventlet.spawn(accept_connections, sock, server, pool)
    stopping = eventlet.event.Event()

    stopped_at = time.monotonic()

    def stop(signum):
        nonlocal stopped_at
        stopped_at = time.monotonic()
        LOG.info("signal %d: finishing in-flight requests, then exiting", signum)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        if not stopping.ready():
            stopping.send()
        if opts.grace:
            eventlet.spawn_after(opts.grace, _exit_after_grace, opts.grace)

    handlers = {signal.SIGTERM: stop, signal.SIGINT: stop, signal.SIGHUP: stop}
    if on_hup is not None:
        handlers[signal.SIGHUP] = lambda signum: on_hup()
    dispatch_signals(handlers)
    acceptor.link(lambda _: stopping.ready() or stopping.send())  # it failed: end too
    stopping.wait()
    acceptor.kill()
    sock.close()
    # Work the requests started (copy-froms) is waited for beside the connections,
    # within the same grace and a little before the hard exit, so that what cannot
    # finish is ended cleanly, not dropped.
    left = opts.grace - (time.monotonic() - stopped_at) - 0.5 if opts.grace else None
    drainer = eventlet.spawn(background.drain, None if left is None else max(0.0, left))
    server.protocol = server.protocol.retiring  # for connections whose thread is to start
    pool.retire(protocol.RETIRE_WAIT)
    pool.waitall()
    drainer.wait()
    with contextlib.suppress(greenlet.GreenletExit):
        acceptor.wait()  # raises what made the accepting fail, if anything did


def accept_connections(sock: socket.socket, server: eventlet.wsgi.Server, pool) -> None:
    """Accept connections on `sock` and serve each in a thread of `pool`, until killed
    (as eventlet.wsgi.server() does, without what it does to the open connections when
    it stops: retiring them is run_wsgi()'s business)."""
    while True:
        try:
            client, address = sock.accept()
        except OSError as exc:
            if exc.errno in ACCEPT_GONE:
                continue
            raise
        client.settimeout(server.socket_timeout)
        connection = [address, client, eventlet.wsgi.STATE_IDLE]
        pool.spawn(server.process_request, connection).link(_closed, connection)


# accept() errors that only mean a client went away before it was accepted
ACCEPT_GONE = frozenset({errno.ECONNABORTED, errno.ECONNRESET, errno.EPIPE, errno.EPROTO})


def _closed(_thread, connection: list) -> None:
    connection[2] = eventlet.wsgi.STATE_CLOSE
    greenio.shutdown_safe(connection[1])
    connection[1].close()


def dispatch_signals(handlers: dict[int, Callable[[int], None]]) -> None:
    """Run each handler in a green thread of its own when its signal arrives.

    A Python signal handler cannot wake eventlet's hub (its epoll wait is retried after
    the interruption), so the interpreter writes the signal number into a pipe the hub
    watches (signal.set_wakeup_fd); a green thread reads it and runs the real handler.
    """
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

    def __init__(
        self,
        name: str,
        conf,
        load_app: Callable,
        default_port: int,
        background: Callable[[], None] | None = None,
    ):
        """`background`: work that runs beside the app, in a green thread of each
        serving process (each worker, or the one process), from its start."""
        self.name = name
        self.conf = conf
        self.load_app = load_app
        self.default_port = default_port
        self.background = background

    def start_background(self):
        """The background work started in a green thread of its own (None without)."""
        return None if self.background is None else eventlet.spawn(self.background)

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
        background = self.start_background()

        def reload():
            nonlocal background
            self.reload_config()
            try:
                holder.app = self.load_app()
            except Exception:
                LOG.exception("reload failed; still serving the previous configuration")
            else:
                LOG.info("configuration reloaded")
                # the background work (the upload sweeper) of the new configuration too,
                # as new workers would have it
                if background is not None:
                    background.kill()
                    background = self.start_background()

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
    """The parent of `workers` forked children: respawns, reloads and stops them.

    A stop (SIGTERM, SIGINT) never starts a worker. systemd and glance-control signal the
    whole process group, so the workers get the signal with the supervisor and exit on
    their own: the handler marks the stop at once (`stopping`), before the loop could take
    those exits for deaths to make up for. Signals are blocked around each fork, so that a
    new child cannot take one meant for it while it still runs the supervisor's handlers;
    it gets it once its own are in place.
    """

    def __init__(self, service: Service, sock, opts: ServerOptions):
        self.service = service
        self.sock = sock
        self.opts = opts
        self.children: dict[int, float] = {}  # pid -> start time, current generation
        self.retiring: set[int] = set()  # old generation, draining
        self.pending: list[int] = []  # signals received, handled in the loop
        # each worker writes its pid here once its app is loaded, just before it accepts
        self.ready_read, self.ready_write = os.pipe()
        os.set_blocking(self.ready_read, False)
        self.ready: set[int] = set()
        self.stopping = False

    def _on_signal(self, signum: int, frame) -> None:
        if signum in STOP_SIGNALS:
            self.stopping = True
        self.pending.append(signum)

    def run(self) -> None:
        for sig in CONTROL_SIGNALS:
            signal.signal(sig, self._on_signal)
        for _ in range(self.opts.workers):
            self.spawn()
        while True:
            while self.pending:
                sig = self.pending.pop(0)
                if sig in STOP_SIGNALS:
                    self.shutdown(sig)
                    return
                self.reload()
            self.reap()
            time.sleep(0.05)

    def spawn(self) -> None:
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, CONTROL_SIGNALS)
        try:
            pid = None if self.stopping else os.fork()
        except BaseException:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            raise
        if pid != 0:  # the supervisor, stopping or with a new child
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            if pid:
                self.children[pid] = time.monotonic()
            return
        try:
            for sig in CONTROL_SIGNALS:
                signal.signal(sig, signal.SIG_DFL)
            # A stop that came during the fork ends this worker now, as it would later.
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            self._child()
        except SystemExit as exc:
            os._exit(exc.code if isinstance(exc.code, int) else 1)
        except BaseException:
            LOG.exception("worker failed")
            os._exit(1)
        os._exit(0)

    def _child(self) -> None:
        eventlet.hubs.use_hub()  # a fresh hub: the parent's epoll must not be shared
        app = self.service.load_app()
        self.service.start_background()
        LOG.info("%s worker %d serving", self.service.name, os.getpid())
        os.write(self.ready_write, READY.pack(os.getpid()))
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
            if self.stopping:
                continue
            LOG.error("worker %d died (status %d); starting another", pid, status)
            if time.monotonic() - started < RESPAWN_BACKOFF:
                time.sleep(RESPAWN_BACKOFF)
            self.spawn()  # which a stop during the sleep turns into nothing

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
        self._read_ready()
        self.ready.clear()  # from here on, only the new workers report
        for _ in range(opts.workers):
            self.spawn()
        self._wait_ready()
        for pid in old_children:
            self.retiring.add(pid)
            _signal(pid, signal.SIGHUP)
        LOG.info("configuration reloaded; %d old worker(s) draining", len(old_children))

    def _read_ready(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while data := _read_now(self.ready_read, READY.size * 64):
                self.ready.update(pid for (pid,) in READY.iter_unpack(data))

    def _wait_ready(self) -> None:
        """Wait until every worker of the new generation accepts (at most READY_WAIT
        seconds, and not through a stop), replacing any that dies meanwhile: the old
        generation keeps accepting until then, so that a new connection never waits for
        a worker still loading its app."""
        deadline = time.monotonic() + READY_WAIT
        while not self.stopping and time.monotonic() < deadline:
            self._read_ready()
            if self.children.keys() <= self.ready:
                return
            self.reap()
            time.sleep(0.01)
        LOG.warning("the new workers are not all serving after %ds", READY_WAIT)

    def shutdown(self, sig: int) -> None:
        # The workers close their copies as they stop: then no one holds the listening
        # socket, and a new connection is refused at once instead of waiting unaccepted.
        self.sock.close()
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


# os.read that raises BlockingIOError when nothing is there (the monkey-patched one
# would wait for something to come)
_read_now = eventlet.patcher.original("os").read


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
