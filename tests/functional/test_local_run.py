"""The README's run command: tools/local.sh (what `make run` / `make stop` call)."""

import os
import socket
import subprocess

import pytest
import requests

from glance_lite.db import migration
from tests.functional.servers import ROOT

pytestmark = pytest.mark.functional


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def local(command, env):
    return subprocess.run(
        ["bash", str(ROOT / "tools" / "local.sh"), command],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_local_deployment_starts_twice_safely_answers_and_stops(tmp_path):
    port = free_port()
    api_port = free_port()
    env = dict(
        os.environ,
        GLANCE_LITE_STATE=str(tmp_path / "state"),
        GLANCE_REGISTRY_PORT=str(port),
        GLANCE_API_PORT=str(api_port),
    )
    try:
        first = local("start", env)
        assert first.returncode == 0, first.stderr + first.stdout
        assert f"http://127.0.0.1:{port}" in first.stdout
        secret = (tmp_path / "state" / "registry-secret").read_text().strip()
        url = f"http://127.0.0.1:{port}/images"
        assert requests.get(url, timeout=5).status_code == 401
        resp = requests.get(url, headers={"X-Glance-Registry-Secret": secret}, timeout=5)
        assert resp.status_code == 200

        api = f"http://127.0.0.1:{api_port}/v1/images"
        created = requests.post(
            api,
            data=b"hello",
            headers={
                "Content-Type": "application/octet-stream",
                "x-image-meta-name": "demo",
                "x-image-meta-disk_format": "raw",
                "x-image-meta-container_format": "bare",
            },
            timeout=10,
        )
        assert created.status_code == 201, created.text
        image_id = created.json()["image"]["id"]
        assert requests.get(f"{api}/{image_id}", timeout=5).content == b"hello"
        assert (tmp_path / "state" / "images" / image_id).read_bytes() == b"hello"

        second = local("start", env)
        assert second.returncode == 0, second.stderr
        assert "already running" in second.stdout
    finally:
        stopped = local("stop", env)
    assert stopped.returncode == 0
    assert "stopped glance-registry" in stopped.stdout
    assert "stopped glance-api" in stopped.stdout
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=2)


def test_local_deployment_refuses_a_taken_port(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        env = dict(
            os.environ,
            GLANCE_LITE_STATE=str(tmp_path / "state"),
            GLANCE_REGISTRY_PORT=str(s.getsockname()[1]),
        )
        result = local("start", env)
    assert result.returncode == 1
    assert "is taken" in result.stderr


def test_local_tools_overrides_and_ports_survive_a_second_run(tmp_path):
    state = tmp_path / "state"
    api_port = free_port()
    env = dict(
        os.environ,
        GLANCE_LITE_STATE=str(state),
        GLANCE_REGISTRY_PORT=str(free_port()),
        GLANCE_API_PORT=str(api_port),
    )
    api = f"http://127.0.0.1:{api_port}/v1/images"
    try:
        assert local("start", env).returncode == 0
        # the banner's commands: glance and glance-manage reach this deployment
        tools = subprocess.run(
            ["bash", "-c", f"source {state}/env && glance image-list && glance-manage db_version"],
            env={k: v for k, v in env.items() if not k.startswith("OS_")},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert tools.returncode == 0, tools.stderr
        assert "Disk Format" in tools.stdout
        assert tools.stdout.strip().endswith(migration.head())

        # a running api is not moved to another port, nor is its config rewritten
        moved = local("start", dict(env, GLANCE_API_PORT=str(free_port())))
        assert moved.returncode == 1
        assert f"already running on port {api_port}" in moved.stderr
        assert f"bind_port = {api_port}" in (state / "etc" / "glance-api.conf").read_text()

        # the operator's own options survive make run and win over the generated ones
        local_conf = state / "etc" / "glance-api.local.conf"
        local_conf.write_text(local_conf.read_text() + "[DEFAULT]\nimage_size_cap = 3\n")
        assert local("stop", env).returncode == 0
        again = local("start", {k: v for k, v in env.items() if k != "GLANCE_API_PORT"})
        assert again.returncode == 0, again.stderr
        assert "image_size_cap = 3" in local_conf.read_text()
        refused = requests.post(
            api,
            data=b"hello",
            headers={"Content-Type": "application/octet-stream", "x-image-meta-name": "big"},
            timeout=10,
        )
        assert refused.status_code == 400, refused.text
        assert "larger than 3 bytes" in refused.text
    finally:
        local("stop", env)
