"""Start the real console scripts as subprocesses on free ports, with real config files."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def script(name: str) -> str:
    return str(BIN / name)


def write_conf(path: Path, sections: dict[str, dict[str, object]]) -> Path:
    lines = []
    for section, options in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {value}" for key, value in options.items() if value is not None]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


class ServerProcess:
    """One running service. `url` is its base URL; `stop()` sends SIGTERM and waits."""

    def __init__(self, name: str, conf_file: Path, workdir: Path):
        self.name = name
        self.conf_file = conf_file
        self.port_file = workdir / f"{name}.port"
        self.log_file = workdir / f"{name}.log"
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None

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
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise


def db_sync(conf_file: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [script("glance-manage"), "--config-file", str(conf_file), "db_sync"],
        capture_output=True,
        text=True,
        check=True,
    )


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
