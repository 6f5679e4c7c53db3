"""glance-control: start, stop, reload and watch the glance-lite servers by pid file.

    glance-control [options] <SERVER> <COMMAND> [CONFPATH]

SERVER is api, registry, scrubber (or their glance- names) or all; COMMAND is one of
COMMANDS. A server's pid file is `<run-dir>/<server>.pid` (run dir /var/run/glance, or a
temporary one with a hint when that cannot be written) unless --pid-file names one.

Where Glance's tool did not do what it said, this one does (docs/differences.md): `start`
waits until the server listens (or reports why it could not start, leaving no pid file),
`stop` waits for the server to exit and kills it after --stop-timeout, `shutdown` lets
it finish its requests without a deadline of its own, and `status` checks the process
and answers with its exit status.
"""

import argparse
import contextlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SERVERS = ("api", "registry", "scrubber")
COMMANDS = ("start", "status", "stop", "shutdown", "restart", "reload", "force-reload")
RELOADABLE = ("glance-api", "glance-registry")
LISTENING = ("glance-api", "glance-registry")  # servers that report a port when ready
DEFAULT_RUN_DIR = "/var/run/glance"
MAX_DESCRIPTORS = 32768
MAX_DATA = 2 << 30
RESPAWN_BACKOFF_MAX = 60.0  # seconds between respawns of a server that keeps dying
STABLE_AFTER = 30.0  # seconds a respawned server must live for its backoff to reset
RESPAWN_POLL = 0.2  # seconds between looks at the servers --respawn keeps

USAGE = f"""%(prog)s [options] <SERVER> <COMMAND> [CONFPATH]

Where <SERVER> is one of:

    all, {", ".join(SERVERS)}

And command is one of:

    {", ".join(COMMANDS)}

And CONFPATH is the optional configuration file to use."""


class ControlError(Exception):
    """A refusal or failure to report on stderr, with exit status `code`."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


@dataclass
class Options:
    servers: list[str]
    command: str
    config_files: list[str]
    pid_file: str | None
    run_dir: str
    await_child: int
    capture_output: bool
    respawn: bool
    stop_timeout: float
    start_timeout: float
    stdout_file: str | None
    stderr_file: str | None


def parse(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(prog="glance-control", usage=USAGE)
    parser.add_argument("server", metavar="SERVER")
    parser.add_argument("command", metavar="COMMAND")
    parser.add_argument("confpath", nargs="?", metavar="CONFPATH")
    parser.add_argument("--pid-file", metavar="PATH", help="pid file (one server only)")
    parser.add_argument(
        "--run-dir",
        default=DEFAULT_RUN_DIR,
        metavar="DIR",
        help=f"where pid files go (default {DEFAULT_RUN_DIR})",
    )
    parser.add_argument(
        "--config-file",
        action="append",
        default=[],
        metavar="PATH",
        help="passed on to the server; may be repeated",
    )
    parser.add_argument(
        "--await-child",
        type=int,
        default=0,
        metavar="DELAY",
        help="seconds to wait for the server to exit, to report its exit status",
    )
    parser.add_argument(
        "--capture-output",
        action="store_true",
        help="send the server's output to syslog (logger) instead of the output files",
    )
    parser.add_argument("--respawn", action="store_true", help="restart a server that dies")
    parser.add_argument(
        "--stop-timeout",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="how long stop waits for a server to exit before killing it (default 15)",
    )
    parser.add_argument(
        "--start-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long start waits for a server to listen (default 30)",
    )
    parser.add_argument(
        "--stdout-file", metavar="PATH", help="the server's output (default: discarded)"
    )
    parser.add_argument(
        "--stderr-file",
        metavar="PATH",
        help="the server's error output (default: <run-dir>/<server>.stderr)",
    )
    args = parser.parse_intermixed_args(argv)
    name = args.server.removeprefix("glance-")
    if args.server == "all":
        servers = [f"glance-{s}" for s in SERVERS]
    elif name in SERVERS:
        servers = [f"glance-{name}"]
    else:
        parser.error(f"unknown server '{args.server}'")
    if args.command not in COMMANDS:
        parser.error(f"unknown command '{args.command}'")
    if args.await_child and args.respawn:
        raise ControlError("--await-child and --respawn are mutually exclusive")
    if args.pid_file and len(servers) > 1:
        parser.error("--pid-file names the pid file of one server, not of all")
    config_files = list(args.config_file)
    if args.confpath:
        if not os.path.exists(args.confpath):
            parser.error(f"CONFPATH {args.confpath} does not exist")
        config_files.append(os.path.abspath(os.path.expanduser(args.confpath)))
    return Options(
        servers=servers,
        command=args.command,
        config_files=[os.path.abspath(f) for f in config_files],
        pid_file=args.pid_file,
        run_dir=args.run_dir,
        await_child=args.await_child,
        capture_output=args.capture_output,
        respawn=args.respawn,
        stop_timeout=args.stop_timeout,
        start_timeout=args.start_timeout,
        stdout_file=args.stdout_file,
        stderr_file=args.stderr_file,
    )


class Server:
    """One server as glance-control sees it: its pid file and the process it names."""

    def __init__(self, name: str, opts: Options):
        self.name = name
        self.opts = opts
        self.pid_file = self._pid_file()
        self.proc: subprocess.Popen | None = None  # the process this run started

    def _pid_file(self) -> Path:
        wanted = Path(self.opts.pid_file or Path(self.opts.run_dir) / f"{self.name}.pid")
        wanted = wanted.absolute()
        with contextlib.suppress(OSError):
            wanted.parent.mkdir(parents=True, exist_ok=True)
        if os.access(wanted.parent, os.W_OK):
            return wanted
        fallback = Path(tempfile.mkdtemp()) / f"{self.name}.pid"
        print(
            f"Unable to create pid file {wanted}.  Running as non-root?\n"
            f"Falling back to a temp file, you can stop {self.name} service using:\n"
            f"  glance-control {self.name} stop --pid-file {fallback}"
        )
        return fallback

    @property
    def port_file(self) -> Path:
        return self.pid_file.with_suffix(".port")

    def pid(self) -> int | None:
        """The pid in the pid file, or None (no file, or not a number)."""
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def running_pid(self) -> int | None:
        pid = self.pid()
        return pid if pid is not None and alive(pid) else None

    # --- commands ------------------------------------------------------------------

    def start(self, verb: str = "Start") -> int | None:
        pid = self.pid()
        if pid is not None and alive(pid):
            print(f"{self.name} appears to already be running: {self.pid_file}")
            return None
        if self.pid_file.exists():
            print(f"Removing stale pid file {self.pid_file}")
            self.pid_file.unlink()
        raise_limits()
        argv = [executable(self.name)]
        for path in self.opts.config_files:
            argv += ["--config-file", path]
        with_conf = f" with {', '.join(self.opts.config_files)}" if self.opts.config_files else ""
        print(f"{verb}ing {self.name}{with_conf}")
        if self.name in LISTENING:
            self.port_file.unlink(missing_ok=True)
            argv += ["--port-file", str(self.port_file)]
        proc = self.proc = self._launch(argv)
        self.pid_file.write_text(f"{proc.pid}\n")
        self._wait_started(proc)
        return proc.pid

    def _launch(self, argv: list[str]) -> subprocess.Popen:
        stdout, stderr = self._outputs()
        try:
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,  # the server survives glance-control and its terminal
            )
        except OSError as err:
            raise ControlError(f"unable to launch {self.name}. Got error: {err}") from None
        finally:
            for out in (stdout, stderr):
                if hasattr(out, "close"):
                    out.close()

    def _outputs(self):
        if self.opts.capture_output:
            logger = subprocess.Popen(
                ["logger", "-t", f"{self.name}[{os.getpid()}]"], stdin=subprocess.PIPE
            )
            return logger.stdin, subprocess.STDOUT
        stdout = open(self.opts.stdout_file or os.devnull, "ab")  # noqa: SIM115 - closed by _launch
        err_path = self.stderr_path
        err_path.parent.mkdir(parents=True, exist_ok=True)
        return stdout, open(err_path, "ab")

    @property
    def stderr_path(self) -> Path:
        return Path(self.opts.stderr_file or self.pid_file.with_suffix(".stderr"))

    def _wait_started(self, proc: subprocess.Popen) -> None:
        """Until the server listens (it writes its port file), or it exits: then the pid
        file goes and its error output is the reason given."""
        wait_for = self.opts.await_child or self.opts.start_timeout
        deadline = time.monotonic() + wait_for
        while time.monotonic() < deadline:
            if not self.opts.await_child and self.port_file.exists():
                return  # it listened: a death from now on is the respawn loop's to see
            code = proc.poll()
            if code is not None:
                self.pid_file.unlink(missing_ok=True)
                if code == 0 and self.opts.await_child:
                    return
                why = self._why()
                raise ControlError(f"{self.name} failed to start (exit status {code}){why}", code)
            if not self.opts.await_child and self.name not in LISTENING:
                return  # nothing to wait for: it did not exit at once
            time.sleep(0.05)
        if self.opts.await_child:
            return  # still running after the wait: started
        raise ControlError(
            f"{self.name} did not start listening within {wait_for:g} s{self._why()}"
        )

    def _why(self) -> str:
        if self.opts.capture_output:
            return "; its output went to syslog"
        try:
            lines = self.stderr_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return f": {lines[-1]}" if lines else ""

    def status(self) -> bool:
        pid = self.pid()
        if pid is not None and alive(pid):
            print(f"{self.name} (pid {pid}) is running...")
            return True
        if pid is not None:
            print(f"{self.name} is stopped (stale pid file {self.pid_file})")
        else:
            print(f"{self.name} is stopped")
        return False

    def stop(self, *, graceful: bool = False) -> None:
        """SIGTERM: the server stops accepting and finishes its requests. stop kills it
        after --stop-timeout; shutdown waits for it as long as it takes."""
        pid = self.pid()
        if pid is None or not alive(pid):
            self.pid_file.unlink(missing_ok=True)
            print(f"{self.name} is already stopped")
            return
        # the pid file goes first: a respawning glance-control then knows it was meant
        self.pid_file.unlink(missing_ok=True)
        print(f"Stopping {self.name} (pid {pid}) with signal({int(signal.SIGTERM)})")
        _kill(pid, signal.SIGTERM)
        deadline = None if graceful else time.monotonic() + self.opts.stop_timeout
        while alive(pid):
            if deadline is not None and time.monotonic() >= deadline:
                print(
                    f"Waited {self.opts.stop_timeout:g} seconds for pid {pid} "
                    f"({self.pid_file}) to die; killing it"
                )
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)  # the server and its workers
                _kill(pid, signal.SIGKILL)
                _wait_gone(pid, 5.0)
                break
            time.sleep(0.05)
        self.port_file.unlink(missing_ok=True)

    def reload(self) -> None:
        if self.name not in RELOADABLE:
            raise ControlError(f"Reload of {self.name} not supported")
        pid = self.pid()
        if pid is None or not alive(pid):
            raise ControlError(f"Server {self.name} is stopped")
        print(f"Reloading {self.name} (pid {pid}) with signal({int(signal.SIGHUP)})")
        _kill(pid, signal.SIGHUP)


def executable(name: str) -> str:
    """The server's console script: beside glance-control's own (one installation), or
    else found on PATH, as Glance's tool finds it."""
    here = str(Path(sys.executable).parent)
    return shutil.which(name, path=os.pathsep.join([here, os.environ.get("PATH", "")])) or name


def alive(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie child of ours is reaped, not alive)."""
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def raise_limits() -> None:
    """More file descriptors and data for the server, as Glance's tool asks for; where
    the hard limit is lower and cannot be raised (not root), up to that limit."""
    wanted = ((resource.RLIMIT_NOFILE, MAX_DESCRIPTORS), (resource.RLIMIT_DATA, MAX_DATA))
    for limit, value in wanted:
        soft, hard = resource.getrlimit(limit)
        if soft == resource.RLIM_INFINITY or soft >= value:
            continue
        try:
            resource.setrlimit(limit, (value, max(value, hard)))
        except (ValueError, OSError):
            try:
                resource.setrlimit(limit, (hard, hard))
            except (ValueError, OSError):
                print("Unable to increase file descriptor limit.  Running as non-root?")
                return


def respawn(servers: list[Server]) -> None:
    """Stay in the foreground and start again each server that dies while its pid file
    still names it; one that dies again soon after waits longer each time (up to
    RESPAWN_BACKOFF_MAX). A server stopped through glance-control is left stopped.

    Each server's process is watched through the Popen that started it (never
    os.wait(), which would race with that object reaping its own child)."""
    backoff = dict.fromkeys(servers, 0.0)
    started = dict.fromkeys(servers, time.monotonic())
    watched = list(servers)
    while watched:
        time.sleep(RESPAWN_POLL)
        for server in list(watched):
            if server.proc is None or server.proc.poll() is None:
                continue
            pid = server.proc.pid
            if server.pid() != pid:
                print(f"Suppressed respawn as {server.name} was deliberately stopped.")
                watched.remove(server)
                continue
            if time.monotonic() - started[server] > STABLE_AFTER:
                backoff[server] = 0.0
            if backoff[server]:
                print(f"{server.name} keeps dying: respawning it in {backoff[server]:g} s")
                time.sleep(backoff[server])
                if server.pid() != pid:  # stopped while we waited
                    print(f"Suppressed respawn as {server.name} was deliberately stopped.")
                    watched.remove(server)
                    continue
            backoff[server] = min(max(1.0, backoff[server] * 2), RESPAWN_BACKOFF_MAX)
            server.pid_file.unlink(missing_ok=True)
            try:
                server.start("Respawn")
            except ControlError as err:
                print(err, file=sys.stderr)
                # still wanted: the next look finds it dead again, and waits longer
                server.pid_file.write_text(f"{server.proc.pid}\n")
            started[server] = time.monotonic()


def run(opts: Options) -> int:
    servers = [Server(name, opts) for name in opts.servers]
    code = 0
    if opts.command == "start":
        started = [server for server in servers if server.start() is not None]
        if opts.respawn:
            respawn(started)
    elif opts.command == "status":
        code = 0 if all([server.status() for server in servers]) else 3
    elif opts.command in ("stop", "shutdown"):
        for server in servers:
            server.stop(graceful=opts.command == "shutdown")
    elif opts.command == "restart":
        for server in servers:
            server.stop()
        for server in servers:
            server.start("Restart")
    else:  # reload, force-reload
        for server in servers:
            server.reload()
    return code


def main(argv: list[str] | None = None) -> None:
    # a line at a time, also into a pipe or a log: --respawn runs for as long as the server
    sys.stdout.reconfigure(line_buffering=True)
    try:
        opts = parse(sys.argv[1:] if argv is None else argv)
        code = run(opts)
    except ControlError as err:
        print(err, file=sys.stderr)
        sys.exit(err.code)
    sys.exit(code)


if __name__ == "__main__":
    main()
