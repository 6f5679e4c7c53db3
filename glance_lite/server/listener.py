"""The server's settings, its listening socket, and the port it reports."""

import errno
import logging
import os
import socket

import eventlet

from glance_lite import config

LOG = logging.getLogger(__name__)


class ServerOptions:
    """The server's settings, read from the config each time it (re)loads."""

    def __init__(self, conf, default_port: int):
        self.host = conf.bind_host
        self.port = default_port if conf.bind_port is None else conf.bind_port
        self.backlog = conf.backlog
        self.tcp_keepidle = conf.tcp_keepidle
        self.workers = config.default_workers() if conf.workers is None else conf.workers
        self.max_header_line = conf.max_header_line
        self.keepalive = conf.http_keepalive
        self.client_socket_timeout = conf.client_socket_timeout or None
        self.grace = conf.graceful_shutdown_timeout
        self.discard_limit = conf.upload_discard_limit
        self.header_timeout = conf.client_header_timeout or None
        # the body's timeout never waits longer than the connection's own
        waits = [t for t in (conf.client_body_timeout, conf.client_socket_timeout) if t]
        self.body_timeout = min(waits) if conf.client_body_timeout else None
        self.max_connections = conf.max_client_connections
        self.port_file = conf.port_file

    def binding(self):
        return (self.host, self.port)


def bind(opts: ServerOptions) -> socket.socket:
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
