"""glance-control driving the real glance-registry and glance-api by pid file."""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.functional.servers import api_conf, db_sync, registry_conf, script, wait_for

pytestmark = pytest.mark.functional


def control(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [script("glance-control"), *args], capture_output=True, text=True, timeout=timeout
    )


class Site:
    """Config files for a registry and an api, and glance-control run in `run_dir`."""

    def __init__(self, tmp: Path, **api_options):
        self.run_dir = tmp / "run"
        self.registry_conf = registry_conf(tmp)
        db_sync(self.registry_conf)
        # the api's registry port is only known once the registry runs
        self.tmp = tmp
        self.api_options = api_options

    def __call__(self, server: str, command: str, *extra: str, conf: Path | None = None):
        args = [server, command, "--run-dir", str(self.run_dir), *extra]
        if conf is not None:
            args.append(str(conf))
        return control(*args)

    def start_registry(self):
        done = self("registry", "start", conf=self.registry_conf)
        assert done.returncode == 0, done.stderr
        return done

    def api_conf(self) -> Path:
        port = int((self.run_dir / "glance-registry.port").read_text())
        return api_conf(self.tmp, port, **self.api_options)

    def pid(self, server: str) -> int:
        return int((self.run_dir / f"glance-{server}.pid").read_text())

    def pid_or_none(self, server: str) -> int | None:
        try:
            return self.pid(server)
        except (OSError, ValueError):
            return None

    def url(self, server: str) -> str:
        return f"http://127.0.0.1:{(self.run_dir / f'glance-{server}.port').read_text().strip()}"

    def healthy(self, server: str) -> bool:
        try:
            return requests.get(f"{self.url(server)}/healthcheck", timeout=5).status_code == 200
        except (OSError, requests.ConnectionError):  # no port file yet, or not listening
            return False


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def site(tmp_path):
    site = Site(tmp_path)
    yield site
    for server in ("api", "registry"):
        site(server, "stop", "--stop-timeout", "5")


def test_start_status_reload_restart_stop(site):
    started = site.start_registry()
    assert "Starting glance-registry with " in started.stdout
    assert site.healthy("registry")
    conf = site.api_conf()
    assert site("api", "start", conf=conf).returncode == 0
    assert site.healthy("api")
    status = site("all", "status")
    assert status.returncode == 3  # no scrubber runs
    assert f"glance-api (pid {site.pid('api')}) is running..." in status.stdout
    assert "glance-scrubber is stopped" in status.stdout
    assert site("api", "status").returncode == 0

    first = site.pid("api")
    again = site("api", "start", conf=conf)
    assert again.returncode == 0
    assert "glance-api appears to already be running" in again.stdout
    assert site.pid("api") == first

    reloaded = site("api", "reload")
    assert reloaded.stdout.strip() == f"Reloading glance-api (pid {first}) with signal(1)"
    assert site.pid("api") == first and site.healthy("api")
    assert site("api", "force-reload").returncode == 0

    restarted = site("api", "restart", conf=conf)
    assert restarted.returncode == 0, restarted.stderr
    assert "Restarting glance-api" in restarted.stdout
    assert gone(first)
    assert site.pid("api") != first and site.healthy("api")

    last = site.pid("api")
    stopped = site("api", "stop")
    assert stopped.stdout.startswith(f"Stopping glance-api (pid {last}) with signal(15)")
    assert gone(last)
    assert not (site.run_dir / "glance-api.pid").exists()
    status = site("api", "status")
    assert (status.returncode, status.stdout.strip()) == (3, "glance-api is stopped")
    assert site("api", "stop").stdout.strip() == "glance-api is already stopped"


def test_a_stale_pid_file_is_removed_and_the_server_started(site):
    dead = subprocess.Popen(["true"])
    dead.wait()
    site.run_dir.mkdir(parents=True)
    (site.run_dir / "glance-registry.pid").write_text(f"{dead.pid}\n")
    started = site.start_registry()
    assert f"Removing stale pid file {site.run_dir / 'glance-registry.pid'}" in started.stdout
    assert site.pid("registry") != dead.pid and site.healthy("registry")


def test_a_broken_config_fails_with_its_reason_and_leaves_no_pid_file(site, tmp_path):
    (tmp_path / "broken").mkdir()
    conf = api_conf(tmp_path / "broken", registry_port=9, flavor="keystone")
    done = site("api", "start", conf=conf)
    assert done.returncode != 0
    assert "glance-api failed to start" in done.stderr
    assert "keystone" in done.stderr
    assert not (site.run_dir / "glance-api.pid").exists()


def test_stop_kills_a_server_that_outlasts_the_timeout_and_shutdown_waits(tmp_path):
    site = Site(tmp_path, graceful_shutdown_timeout=120)
    site.start_registry()
    try:
        assert site("api", "start", conf=site.api_conf()).returncode == 0
        pid = site.pid("api")
        # an upload that never finishes keeps a request in flight
        port = int(site.url("api").rsplit(":", 1)[1])
        hold = socket.create_connection(("127.0.0.1", port))
        hold.sendall(
            b"POST /v1/images HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
            b"x-image-meta-name: held\r\nContent-Length: 1000000\r\n\r\nabc"
        )
        time.sleep(0.5)
        began = time.monotonic()
        stopped = site("api", "stop", "--stop-timeout", "1")
        assert time.monotonic() - began < 15
        assert "to die; killing it" in stopped.stdout
        assert gone(pid)
        hold.close()
        # shutdown: an idle server exits by itself, without a kill
        assert site("api", "start", conf=site.api_conf()).returncode == 0
        pid = site.pid("api")
        done = site("api", "shutdown")
        assert done.returncode == 0 and "killing" not in done.stdout
        assert gone(pid)
    finally:
        site("api", "stop", "--stop-timeout", "2")
        site("registry", "stop")


def test_respawn_starts_a_killed_server_again_until_it_is_stopped(site):
    site.start_registry()
    conf = site.api_conf()
    keeper = subprocess.Popen(
        [script("glance-control"), "api", "start", "--respawn", "--run-dir", str(site.run_dir),
         str(conf)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        first = wait_for(lambda: site.healthy("api") and site.pid_or_none("api"), timeout=30)
        os.kill(first, signal.SIGKILL)
        second = wait_for(
            lambda: (
                (pid := site.pid_or_none("api")) not in (None, first)
                and site.healthy("api")
                and pid
            ),
            timeout=30,
        )
        assert second != first
        assert site("api", "stop").returncode == 0
        out, _ = keeper.communicate(timeout=30)
        assert "Respawning glance-api" in out
        assert "Suppressed respawn as glance-api was deliberately stopped." in out
        assert gone(second)
    except AssertionError:
        keeper.kill()
        out, _ = keeper.communicate()
        raise AssertionError(f"glance-control --respawn said: {out}") from None
    finally:
        if keeper.poll() is None:
            keeper.kill()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nova", "start"], "unknown server 'nova'"),
        (["api", "explode"], "unknown command 'explode'"),
        (["api"], "the following arguments are required"),
    ],
)
def test_unknown_servers_and_commands_print_the_usage(args, message):
    done = control(*args)
    assert done.returncode == 2
    assert "<SERVER> <COMMAND> [CONFPATH]" in done.stderr
    assert message in done.stderr


def test_refusals(tmp_path):
    run = ["--run-dir", str(tmp_path)]
    both = control("api", "start", "--await-child", "3", "--respawn", *run)
    assert (both.returncode, both.stderr.strip()) == (
        1,
        "--await-child and --respawn are mutually exclusive",
    )
    scrub = control("scrubber", "reload", *run)
    assert (scrub.returncode, scrub.stderr.strip()) == (
        1,
        "Reload of glance-scrubber not supported",
    )
    stopped = control("api", "reload", *run)
    assert (stopped.returncode, stopped.stderr.strip()) == (1, "Server glance-api is stopped")
