"""glance-scrubber against real servers with delayed_delete: scrub, restore, resume."""

import os
import signal
import subprocess
import time

import pytest
import requests

from tests.functional.servers import script, write_conf

pytestmark = pytest.mark.functional


@pytest.fixture(scope="module")
def delayed(deploy):
    return deploy("delayed", delayed_delete="true")


def scrubber_conf(api, tmp_path, **options) -> str:
    defaults = {
        "registry_host": "127.0.0.1",
        "registry_port": api.deployment.registry.port,
        "scrub_time": 0,
    }
    defaults.update(options)
    return str(
        write_conf(
            tmp_path / "glance-scrubber.conf",
            {"DEFAULT": defaults, "glance_store": {"filesystem_store_datadir": api.datadir}},
        )
    )


def scrub(conf: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [script("glance-scrubber"), "--config-file", conf, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def registry_image(api, image_id: str) -> dict:
    url = f"{api.deployment.registry.url}/images/{image_id}"
    return requests.get(url, timeout=10).json()["image"]


def pending(api, data: bytes = b"to be scrubbed") -> str:
    image = api.upload(data)
    assert api.delete(f"/images/{image['id']}").status_code == 200
    assert registry_image(api, image["id"])["status"] == "pending_delete"
    assert api.image_file(image["id"]).exists()  # kept for the scrubber
    return image["id"]


def test_a_pass_removes_the_data_and_marks_the_image_deleted(delayed, tmp_path):
    image_id = pending(delayed)
    later = pending(delayed)
    kept = scrub(scrubber_conf(delayed, tmp_path, scrub_time=3600))
    assert kept.returncode == 0, kept.stderr
    assert delayed.image_file(image_id).exists()  # scrub_time not passed yet
    done = scrub(scrubber_conf(delayed, tmp_path))
    assert done.returncode == 0, done.stderr
    for gone in (image_id, later):
        assert not delayed.image_file(gone).exists()
        assert registry_image(delayed, gone)["status"] == "deleted"
    again = scrub(scrubber_conf(delayed, tmp_path))
    assert again.returncode == 0 and "Nothing to scrub" in again.stderr


def test_a_pass_finishes_what_an_interrupted_one_left(delayed, tmp_path):
    data_gone = pending(delayed)
    delayed.image_file(data_gone).unlink()  # killed after deleting the data
    marked = pending(delayed)
    queue = requests.get(
        f"{delayed.deployment.registry.url}/images/detail",
        params={"deleted": "true", "status": "pending_delete", "is_public": "none"},
        timeout=10,
    ).json()["images"]
    [location] = next(i for i in queue if i["id"] == marked)["location_data"]
    delayed.image_file(marked).unlink()  # killed after marking the location too
    url = f"{delayed.deployment.registry.url}/images/{marked}/locations/{location['id']}"
    assert requests.delete(url, params={"status": "deleted"}, timeout=10).status_code == 204
    done = scrub(scrubber_conf(delayed, tmp_path))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    for image_id in (data_gone, marked):
        assert registry_image(delayed, image_id)["status"] == "deleted"


def test_restore_brings_a_pending_image_back_with_its_data(delayed, tmp_path):
    conf = scrubber_conf(delayed, tmp_path)
    image_id = pending(delayed, b"wanted after all")
    done = scrub(conf, "--restore", image_id)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"Image {image_id} restored: it is active again"
    assert delayed.get(f"/images/{image_id}").content == b"wanted after all"
    again = scrub(conf, "--restore", image_id)
    assert again.returncode == 1
    assert f"ERROR: Image {image_id} could not be restored" in again.stderr
    assert "is active, not pending_delete" in again.stderr


def test_an_unreachable_registry_is_named_and_the_daemon_tries_again(delayed, tmp_path):
    conf = scrubber_conf(delayed, tmp_path, registry_port=9, wakeup_time=1)
    once = scrub(conf)
    assert once.returncode == 1
    assert "ERROR: Could not read the scrubber's queue from the registry" in once.stderr
    assert "unavailable" in once.stderr
    daemon = subprocess.Popen(
        [script("glance-scrubber"), "--config-file", conf, "--daemon"],
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(3.5)
    daemon.send_signal(signal.SIGTERM)
    _, err = daemon.communicate(timeout=20)
    assert daemon.returncode == 0
    assert err.count("trying again in 1 s") >= 2


def test_a_scrubber_killed_mid_pass_is_finished_by_the_next(delayed, tmp_path):
    images = [pending(delayed, b"x" * 4096) for _ in range(30)]
    conf = scrubber_conf(delayed, tmp_path, scrub_pool_size=1)
    proc = subprocess.Popen(
        [script("glance-scrubber"), "--config-file", conf],
        stderr=subprocess.DEVNULL,
    )
    registry = delayed.deployment.registry.proc.pid
    try:
        # Wait for the pass to be under way, then freeze the registry so that the pass
        # is caught between its steps, and kill the scrubber there.
        deadline = time.monotonic() + 30
        while all(delayed.image_file(i).exists() for i in images):
            assert time.monotonic() < deadline and proc.poll() is None, "no progress"
            time.sleep(0.002)
        os.killpg(registry, signal.SIGSTOP)
        proc.kill()
        proc.wait(timeout=10)
    finally:
        os.killpg(registry, signal.SIGCONT)
    left = [i for i in images if registry_image(delayed, i)["status"] == "pending_delete"]
    assert left, "the pass ended before it could be interrupted"
    done = scrub(conf)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    for image_id in images:
        assert not delayed.image_file(image_id).exists()
        assert registry_image(delayed, image_id)["status"] == "deleted"
