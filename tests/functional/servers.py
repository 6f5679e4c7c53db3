"""Start the real console scripts as subprocesses on free ports, with real config files."""

import atexit
import configparser
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def script(name: str) -> str:
    return str(BIN / name)


def wait_for(predicate, timeout: float = 15.0, interval: float = 0.05):
    """Poll `predicate` until it returns something true (which is returned), or fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def run_script(script: str, *args: str, timeout: float = 60) -> dict:
    """Run Python `script` in a process of its own (for tests that need eventlet's
    monkey-patching first); the last line it prints, read as JSON."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def write_conf(path: Path, sections: dict[str, dict[str, object]]) -> Path:
    lines = []
    for section, options in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {value}" for key, value in options.items() if value is not None]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


class ServerProcess:
    """One running service. `url` is its base URL; `stop()` sends SIGTERM and waits.

    `sessions`: the test's HTTP sessions with this server, which `stop()` closes first. A
    stopping server gives each idle kept-alive connection two seconds to bring one more
    request; a test that stops it does not wait for them (the tests of that behaviour
    use sockets of their own)."""

    def __init__(self, name: str, conf_file: Path, workdir: Path):
        self.name = name
        self.conf_file = conf_file
        self.port_file = workdir / f"{name}.port"
        self.log_file = workdir / f"{name}.log"
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.sessions: list[requests.Session] = []

    def start(self, timeout: float = 20.0) -> "ServerProcess":
        self.port_file.unlink(missing_ok=True)
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    script(self.name),
                    "--config-file",
                    str(self.conf_file),
                    "--port-file",
                    str(self.port_file),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.port = self.wait_for_port(timeout)
        self.wait_healthy(timeout)
        return self

    def wait_for_port(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.proc.returncode}: {self.log()}")
            if self.port_file.exists():
                text = self.port_file.read_text().strip()
                if text:
                    return int(text)
            time.sleep(0.02)
        raise RuntimeError(f"{self.name} reported no port in {timeout}s: {self.log()}")

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/healthcheck", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not healthy in {timeout}s: {self.log()}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")[-4000:] if self.log_file.exists() else ""

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def stop(self, timeout: float = 20.0) -> int:
        self.terminate()
        return self.wait_stopped(timeout)

    def terminate(self) -> None:
        """The first half of stop(): SIGTERM, unless it exited already."""
        if self.proc is None or self.proc.poll() is not None:
            return
        for session in self.sessions:
            close_connections(session)
        self.signal(signal.SIGTERM)

    def wait_stopped(self, timeout: float = 20.0) -> int:
        """The second half of stop(): its exit status; killed (and raising) when it takes
        longer than `timeout` seconds."""
        if self.proc is None:
            return 0
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise


def stop_together(servers) -> None:
    """Stop `servers` side by side: each gets SIGTERM, then each is waited for (as
    stop() does; the first that outlasts the timeout raises once all were waited for)."""
    servers = [server for server in servers if server is not None]
    for server in servers:
        server.terminate()
    failed = None
    for server in servers:
        try:
            server.wait_stopped()
        except subprocess.TimeoutExpired as exc:
            failed = failed or exc
    if failed is not None:
        raise failed


SQLITE_FILE = "sqlite:///"


def close_connections(session: requests.Session) -> None:
    """Close the kept-alive connections of `session`, which can still be used (it
    connects again). Session.close() alone only forgets urllib3's pools: a connection
    stays open as long as a response that is still referenced holds its pool."""
    for adapter in session.adapters.values():
        pools = adapter.poolmanager.pools
        for key in pools.keys():  # noqa: SIM118 - urllib3's container refuses iter()
            pool = pools.get(key)
            if pool is not None:
                pool.close()
    session.close()


def db_sync(conf_file: Path) -> None:
    """glance-manage db_sync on the database of `conf_file`.

    A SQLite file not made yet is a copy of one that the console script migrated once in
    this process: the same schema and rows, without a glance-manage start (a second or
    two on a busy machine) for every deployment. Any other database, or a file that is
    already there, gets the console script itself."""
    target = _new_sqlite_file(conf_file)
    if target is None:
        _run_db_sync(conf_file)
    else:
        shutil.copyfile(_sqlite_template(), target)


def _run_db_sync(conf_file: Path) -> None:
    subprocess.run(
        [script("glance-manage"), "--config-file", str(conf_file), "db_sync"],
        capture_output=True,
        text=True,
        check=True,
    )


def _new_sqlite_file(conf_file: Path) -> Path | None:
    """The SQLite file `conf_file` names, when it does not exist yet and nothing else in
    the config could change what db_sync makes of it; else None."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(conf_file)
    url = parser.get("database", "connection", fallback="")
    if (
        not url.startswith(SQLITE_FILE)
        or "?" in url
        or parser.has_option("DEFAULT", "migrations_dir")
    ):
        return None
    path = Path(url.removeprefix(SQLITE_FILE))
    return None if path.exists() else path


@functools.cache
def _sqlite_template() -> Path:
    """A SQLite database that `glance-manage db_sync` brought to head, made on first use
    and removed when the process ends."""
    workdir = Path(tempfile.mkdtemp(prefix="glance-lite-db-template-"))
    atexit.register(shutil.rmtree, workdir, True)
    made = workdir / "glance.sqlite"
    _run_db_sync(
        write_conf(workdir / "db.conf", {"database": {"connection": f"{SQLITE_FILE}{made}"}})
    )
    assert not list(workdir.glob("glance.sqlite-*")), "db_sync left a journal behind"
    return made


def registry_conf(workdir: Path, db_url: str | None = None, **defaults) -> Path:
    options = {"bind_host": "127.0.0.1", "bind_port": 0, "workers": 0}
    options.update(defaults)
    return write_conf(
        workdir / "glance-registry.conf",
        {
            "DEFAULT": options,
            "database": {"connection": db_url or f"sqlite:///{workdir / 'glance.sqlite'}"},
            "paste_deploy": {"config_file": ROOT / "etc" / "glance-registry-paste.ini"},
        },
    )


def api_conf(workdir: Path, registry_port: int, **defaults) -> Path:
    """A glance-api config talking to the registry on `registry_port`.

    Keyword arguments go to [DEFAULT]; `flavor`, `store_datadir` and `policy_file` are
    taken out and put into their own sections, and so is `store_options`, a dict of
    further [glance_store] options.
    """
    flavor = defaults.pop("flavor", None)
    datadir = defaults.pop("store_datadir", workdir / "images")
    store_options = defaults.pop("store_options", {})
    policy_file = defaults.pop("policy_file", None)
    options = {
        "bind_host": "127.0.0.1",
        "bind_port": 0,
        "workers": 0,
        "registry_host": "127.0.0.1",
        "registry_port": registry_port,
    }
    options.update(defaults)
    return write_conf(
        workdir / "glance-api.conf",
        {
            "DEFAULT": options,
            "glance_store": {"filesystem_store_datadir": datadir, **store_options},
            "paste_deploy": {
                "config_file": ROOT / "etc" / "glance-api-paste.ini",
                "flavor": flavor,
            },
            "oslo_policy": {"policy_file": policy_file},
        },
    )


class Deployment:
    """A real glance-registry and glance-api pair on free ports, in `workdir`.

    `registry_options` / `api_options` go into each service's [DEFAULT] (plus `flavor`,
    and for the api `store_datadir` and `policy_file`, as in api_conf()).
    """

    def __init__(
        self, workdir: Path, *, registry_options=None, api_options=None, registry_port=None
    ):
        """`registry_port`: where the api reaches the registry (a proxy in front of it);
        by default the registry's own port."""
        self.workdir = workdir
        self.registry_port = registry_port
        self.registry_options = dict(registry_options or {})
        self.api_options = dict(api_options or {})
        self.registry: ServerProcess | None = None
        self.api: ServerProcess | None = None

    def start(self) -> "Deployment":
        reg_dir = self.workdir / "registry"
        api_dir = self.workdir / "api"
        reg_dir.mkdir(parents=True, exist_ok=True)
        api_dir.mkdir(parents=True, exist_ok=True)
        reg_options = dict(self.registry_options)
        reg_flavor = reg_options.pop("flavor", None)
        reg_conf = registry_conf(reg_dir, reg_options.pop("db_url", None), **reg_options)
        if reg_flavor:
            reg_conf.write_text(
                reg_conf.read_text().replace(
                    "[paste_deploy]", f"[paste_deploy]\nflavor = {reg_flavor}"
                )
            )
        db_sync(reg_conf)
        self.registry = ServerProcess("glance-registry", reg_conf, reg_dir).start()
        conf = api_conf(api_dir, self.registry_port or self.registry.port, **self.api_options)
        self.api = ServerProcess("glance-api", conf, api_dir).start()
        return self

    @property
    def url(self) -> str:
        return self.api.url

    @property
    def datadir(self) -> Path:
        return Path(self.api_options.get("store_datadir", self.workdir / "api" / "images"))

    def stop(self) -> None:
        for server in (self.api, self.registry):
            if server is not None:
                server.stop()
