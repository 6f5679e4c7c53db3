"""The real glance-registry console script: serving, signals, workers, limits, secret."""

import concurrent.futures
import json
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.functional.servers import ServerProcess, db_sync, registry_conf, script, wait_for

pytestmark = pytest.mark.functional


# The session of the tests that stop their server with answers still in hand: the stop
# closes its connections first (ServerProcess.sessions), instead of waiting for them.
HTTP = requests.Session()


def start_registry(tmp_path: Path, db_url: str | None = None, **defaults) -> ServerProcess:
    conf = registry_conf(tmp_path, db_url, **defaults)
    db_sync(conf)
    return serving(ServerProcess("glance-registry", conf, tmp_path).start())


def serving(server: ServerProcess) -> ServerProcess:
    server.sessions.append(HTTP)
    return server


@pytest.fixture
def registry(tmp_path):
    server = start_registry(tmp_path)
    yield server
    server.stop()


def create(url, **image):
    image.setdefault("status", "queued")
    resp = requests.post(f"{url}/images", json={"image": image}, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()["image"]


def children(pid: int) -> set[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return {int(p) for p in text.split()}


def open_partial_request(port: int, body: bytes) -> socket.socket:
    """Send a POST /images whose body is cut short: the request is now in flight."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    head = (
        f"POST /images HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock.sendall(head + body[:10])
    return sock


def finish_request(sock: socket.socket, body: bytes) -> bytes:
    sock.sendall(body[10:])
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    sock.close()
    return data


def test_registry_creates_lists_filters_updates_and_deletes_over_http(registry):
    url = registry.url
    assert requests.get(f"{url}/images", timeout=5).text == '{"images": []}'
    a = create(
        url,
        name="alpha",
        disk_format="raw",
        container_format="bare",
        is_public=True,
        properties={"distro": "debian"},
    )
    create(url, name="beta", disk_format="qcow2", container_format="bare", is_public=True)

    listed = requests.get(
        f"{url}/images", params={"sort_key": "name", "sort_dir": "asc"}, timeout=5
    ).json()["images"]
    assert [i["name"] for i in listed] == ["alpha", "beta"]
    assert set(listed[0]) == {"id", "name", "size", "disk_format", "container_format", "checksum"}

    detail = requests.get(
        f"{url}/images/detail", params={"property-distro": "debian"}, timeout=5
    ).json()["images"]
    assert [i["id"] for i in detail] == [a["id"]]
    assert detail[0]["properties"] == {"distro": "debian"}

    resp = requests.put(
        f"{url}/images/{a['id']}",
        json={"image": {"min_ram": 512, "properties": {"arch": "x86_64"}}},
        timeout=5,
    )
    assert resp.status_code == 200
    assert resp.json()["image"]["min_ram"] == 512
    assert resp.json()["image"]["properties"] == {"distro": "debian", "arch": "x86_64"}

    resp = requests.delete(f"{url}/images/{a['id']}", timeout=5)
    assert resp.status_code == 200
    assert resp.json()["image"]["deleted"] is True
    remaining = requests.get(f"{url}/images", timeout=5).json()["images"]
    assert [i["name"] for i in remaining] == ["beta"]


def test_sixteen_concurrent_writers_on_sqlite_all_succeed(tmp_path):
    server = start_registry(tmp_path, workers=2)
    try:

        def one(i):
            return requests.post(
                f"{server.url}/images",
                json={
                    "image": {
                        "name": f"img-{i}",
                        "status": "queued",
                        "properties": {"n": str(i), "k": "v"},
                    }
                },
                timeout=30,
            ).status_code

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(one, range(64)))
        assert codes == [200] * 64
        listed = requests.get(f"{server.url}/images?limit=100&is_public=none", timeout=5).json()[
            "images"
        ]
        assert len(listed) == 64
    finally:
        server.stop()


def test_sighup_rereads_the_config_and_drops_no_in_flight_request(tmp_path):
    server = start_registry(tmp_path, workers=2)
    try:
        for i in range(5):
            create(server.url, name=f"i{i}", is_public=True)
        body = json.dumps({"image": {"name": "in-flight", "status": "queued"}}).encode()
        sock = open_partial_request(server.port, body)
        before = children(server.proc.pid)

        text = server.conf_file.read_text().replace("[DEFAULT]", "[DEFAULT]\napi_limit_max = 2")
        server.conf_file.write_text(text)
        server.signal(signal.SIGHUP)

        def replaced():
            now = children(server.proc.pid)
            return len(now - before) == 2 and now

        wait_for(replaced)
        reply = finish_request(sock, body)
        assert reply.startswith(b"HTTP/1.1 200"), reply

        def limited():
            got = requests.get(f"{server.url}/images?limit=100", timeout=5).json()["images"]
            return len(got) == 2

        wait_for(limited)
        wait_for(lambda: not (before & children(server.proc.pid)))
    finally:
        server.stop()


@pytest.mark.parametrize("workers", [0, 2])
def test_sigterm_lets_the_in_flight_request_finish_then_exits(tmp_path, workers):
    server = start_registry(tmp_path, workers=workers)
    body = json.dumps({"image": {"name": "last", "status": "queued"}}).encode()
    sock = open_partial_request(server.port, body)
    time.sleep(0.2)  # the request is read by a worker
    server.signal(signal.SIGTERM)
    time.sleep(0.3)
    reply = finish_request(sock, body)
    assert reply.startswith(b"HTTP/1.1 200"), reply
    assert server.proc.wait(15) == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{server.url}/images", timeout=2)


def test_a_dead_worker_is_replaced(tmp_path):
    server = start_registry(tmp_path, workers=2)
    try:
        first = wait_for(lambda: len(children(server.proc.pid)) == 2 and children(server.proc.pid))
        victim = min(first)
        subprocess.run(["kill", "-9", str(victim)], check=True)
        wait_for(
            lambda: (
                len(children(server.proc.pid) - first) == 1 and len(children(server.proc.pid)) == 2
            )
        )
        assert requests.get(f"{server.url}/images", timeout=5).status_code == 200
    finally:
        server.stop()


def test_an_over_long_header_line_is_400(tmp_path):
    server = start_registry(tmp_path, max_header_line=200)
    try:
        ok = HTTP.get(f"{server.url}/images", headers={"X-Short": "a" * 50}, timeout=5)
        assert ok.status_code == 200
        resp = HTTP.get(f"{server.url}/images", headers={"X-Long": "a" * 400}, timeout=5)
        assert resp.status_code == 400
    finally:
        server.stop()


def test_a_taken_port_stops_start_up_with_a_clear_message(registry, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    conf = registry_conf(other, bind_port=registry.port)
    result = subprocess.run(
        [script("glance-registry"), "--config-file", str(conf)],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 1
    assert "already in use" in result.stderr


def test_registry_on_a_public_address_refuses_to_start_without_a_secret(tmp_path):
    conf = registry_conf(tmp_path, bind_host="0.0.0.0")
    result = subprocess.run(
        [script("glance-registry"), "--config-file", str(conf)],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 1
    assert "registry_shared_secret" in result.stderr


def test_shared_secret_is_required_from_every_caller(tmp_path):
    server = start_registry(tmp_path, bind_host="0.0.0.0", registry_shared_secret="s3cret-value")
    try:
        url = f"{server.url}/images"
        assert HTTP.get(url, timeout=5).status_code == 401
        wrong = HTTP.get(url, headers={"X-Glance-Registry-Secret": "nope"}, timeout=5)
        assert wrong.status_code == 401
        assert "s3cret-value" not in wrong.text
        right = HTTP.get(url, headers={"X-Glance-Registry-Secret": "s3cret-value"}, timeout=5)
        assert right.status_code == 200
    finally:
        server.stop()


def test_keystone_flavor_without_credentials_fails_at_start_up_naming_them(tmp_path):
    conf = registry_conf(tmp_path)
    conf.write_text(conf.read_text().replace("[paste_deploy]", "[paste_deploy]\nflavor = keystone"))
    result = subprocess.run(
        [script("glance-registry"), "--config-file", str(conf)],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 1
    assert "[keystone_authtoken] auth_type is not set" in result.stderr


def test_trusted_auth_tenants_see_their_own_shared_and_public_images(tmp_path):
    conf = registry_conf(tmp_path)
    conf.write_text(
        conf.read_text().replace("[paste_deploy]", "[paste_deploy]\nflavor = trusted-auth")
    )
    db_sync(conf)
    server = serving(ServerProcess("glance-registry", conf, tmp_path).start())

    def as_tenant(tenant, roles="member"):
        return {
            "X-Identity-Status": "Confirmed",
            "X-User-Id": f"user-{tenant}",
            "X-Tenant-Id": tenant,
            "X-Roles": roles,
        }

    try:
        url = server.url
        assert HTTP.get(f"{url}/images", timeout=5).status_code == 401

        def make(tenant, name, public=False):
            resp = HTTP.post(
                f"{url}/images",
                headers=as_tenant(tenant),
                timeout=5,
                json={"image": {"name": name, "status": "queued", "is_public": public}},
            )
            assert resp.status_code == 200, resp.text
            return resp.json()["image"]["id"]

        make("A", "a-private")
        make("A", "a-public", public=True)
        make("B", "b-private")
        shared = make("B", "b-shared")
        resp = HTTP.put(f"{url}/images/{shared}/members/A", headers=as_tenant("B"), timeout=5)
        assert resp.status_code == 204

        def names(tenant, roles="member", **params):
            resp = HTTP.get(
                f"{url}/images", headers=as_tenant(tenant, roles), params=params, timeout=5
            )
            return sorted(i["name"] for i in resp.json()["images"])

        assert names("A") == ["a-private", "a-public", "b-shared"]
        assert names("B") == ["a-public", "b-private", "b-shared"]
        assert names("C") == ["a-public"]
        assert names("C", roles="admin") == ["a-public"]
        assert names("C", roles="admin", is_public="none") == [
            "a-private",
            "a-public",
            "b-private",
            "b-shared",
        ]
    finally:
        server.stop()


def test_unreachable_database_is_503_with_a_clear_message(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    conf = registry_conf(
        tmp_path,
        db_url=(f"postgresql://glance:glance@127.0.0.1:{closed_port}/glance?connect_timeout=2"),
    )
    server = serving(ServerProcess("glance-registry", conf, tmp_path).start())
    try:
        resp = HTTP.get(f"{server.url}/images", timeout=20)
        assert resp.status_code == 503
        assert "database" in resp.text.lower()
        assert "glance:glance" not in resp.text
    finally:
        server.stop()


def test_a_waiting_postgresql_query_does_not_block_the_worker(tmp_path, postgresql_url):
    """A query stuck behind a lock must leave the worker free to answer other requests
    (psycopg's wait must be green under eventlet)."""
    from glance_lite.db import session

    server = start_registry(tmp_path, postgresql_url, workers=0)
    engine = session.create_engine(postgresql_url)
    try:
        with (
            engine.connect() as conn,
            concurrent.futures.ThreadPoolExecutor(1) as pool,
        ):
            conn.exec_driver_sql("LOCK TABLE images IN ACCESS EXCLUSIVE MODE")
            stuck = pool.submit(HTTP.get, f"{server.url}/images", timeout=60)
            time.sleep(0.5)
            assert not stuck.done()
            other = HTTP.get(f"{server.url}/healthcheck", timeout=10)
            assert other.status_code == 200
            assert not stuck.done()
            conn.rollback()  # releases the lock
            assert stuck.result().status_code == 200
    finally:
        engine.dispose()
        server.stop()
