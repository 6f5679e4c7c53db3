"""nginx serving glance's image directory, one of the two download ceilings (with
bench/sendfile_server.py): the faster of them in each repeat is what a download of the
same file is divided by.

Installed from Debian (nginx-light) when missing and we are root; when it cannot be had,
`find_or_install()` says why and the bench reports the nginx ceilings as missing.
"""

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import requests


def find_or_install() -> tuple[str | None, str]:
    """The nginx binary and a note on how it was found (or why there is none)."""
    found = _which()
    if found:
        return found, "found"
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None, "nginx is not installed and apt-get cannot be run as root here"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "-o", "DPkg::Lock::Timeout=300", "install", "-y", "-qq"]
    install += ["--no-install-recommends", "nginx-light"]
    done = subprocess.run(install, capture_output=True, text=True, env=env, check=False)
    if done.returncode:  # a stale package list: refresh it once and try again
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, env=env, check=False)
        done = subprocess.run(install, capture_output=True, text=True, env=env, check=False)
    found = _which()
    if found:
        return found, "installed nginx-light"
    return None, f"apt-get install nginx-light failed: {done.stderr.strip()[-300:]}"


def _which() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


def version(binary: str) -> str:
    done = subprocess.run([binary, "-v"], capture_output=True, text=True, check=False)
    return done.stderr.strip().removeprefix("nginx version: ")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Nginx:
    """nginx with `workers` worker processes serving `root` read-only on a free port."""

    def __init__(self, binary: str, workdir: Path, root: Path, workers: int):
        self.binary = binary
        self.workdir = workdir
        self.root = root
        self.workers = workers
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> "Nginx":
        (self.workdir / "tmp").mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        conf = self.workdir / "nginx.conf"
        conf.write_text(self._conf())
        argv = [self.binary, "-p", str(self.workdir), "-c", str(conf), "-e", "stderr"]
        with open(self.workdir / "nginx.out", "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {(self.workdir / 'nginx.out').read_text()}")
            try:
                requests.get(self.url + "/", timeout=1)
                return self
            except requests.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not answer")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful shutdown of master and workers
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def _conf(self) -> str:
        # As root, workers run as root too: glance's image files need no extra permission.
        user = "user root;" if os.geteuid() == 0 else ""
        tmp = self.workdir / "tmp"
        return f"""{user}
worker_processes {self.workers};
daemon off;
master_process on;
pid {self.workdir / "nginx.pid"};
error_log stderr warn;
events {{ worker_connections 1024; }}
http {{
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    # tuned to send as glance-api does: no 2 MiB cap on each sendfile() call (nginx's
    # default since 1.21.4), and the kernel told the file is read in order
    # (POSIX_FADV_SEQUENTIAL: a larger readahead window; the size is ignored on Linux)
    sendfile_max_chunk 0;
    read_ahead 1m;
    tcp_nopush on;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{self.port};
        root {self.root};
        location / {{ limit_except GET HEAD {{ deny all; }} }}
    }}
}}
"""
