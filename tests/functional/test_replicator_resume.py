"""An interrupted glance-replicator livecopy, run again, finishes the job: the replicator
is SIGKILLed while it streams an image (its source slowed down by a throttling proxy),
the target's api kills that upload, and the next run uploads the data to the same id."""

import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import threading
import time

import pytest
import requests

from tests.functional.servers import script, wait_for
from tests.functional.test_replicator import assert_in_step, at, images_of, replicator

pytestmark = pytest.mark.functional

BIG = bytes(range(256)) * 4096 * 4  # 4 MiB
RATE = 1 << 20  # bytes a second through the proxy: the big image takes 4 s


class SlowProxy:
    """A TCP proxy on a free port to 127.0.0.1:`port` that passes the server's answers
    on at `rate` bytes a second (the requests go through at once)."""

    def __init__(self, port: int, rate: int):
        self.upstream = port
        self.rate = rate
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            threading.Thread(target=self._pump, args=(client, server, None), daemon=True).start()
            threading.Thread(
                target=self._pump, args=(server, client, self.rate), daemon=True
            ).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, rate: int | None) -> None:
        piece = 16 * 1024
        try:
            while data := src.recv(piece):
                dst.sendall(data)
                if rate:
                    time.sleep(len(data) / rate)
        except OSError:
            pass
        finally:
            # closed, not only shut down: a socket merely shut down keeps its connection
            # open with a closed window, and the server's send of what was left waits
            # for it (up to its graceful shutdown timeout when it is stopped)
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def close(self) -> None:
        self.closed = True
        self.listener.close()


def registry_status(api, image_id: str) -> str | None:
    resp = requests.get(f"{api.deployment.registry.url}/images/{image_id}", timeout=10)
    return resp.json()["image"]["status"] if resp.status_code == 200 else None


@pytest.fixture(scope="module")
def source(deploy):
    api = deploy("resume-source")
    api.upload(BIG, name="big", is_public="true", properties={"distro": "debian"})
    api.upload(b"small bytes", name="small", properties={"os": "linux"})
    return api


def test_a_killed_livecopy_run_again_copies_every_image_once(source, deploy):
    target = deploy("resume-target")
    big_id = next(i for i, img in images_of(source).items() if img["name"] == "big")
    proxy = SlowProxy(source.port, RATE)
    try:
        proc = subprocess.Popen(
            [script("glance-replicator"), "livecopy", f"127.0.0.1:{proxy.port}", at(target)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(lambda: registry_status(target, big_id) == "saving", timeout=20)
            time.sleep(0.5)  # well into the stream
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
    finally:
        proxy.close()
    # the target's api sees the upload cut short and kills the image, as for any client
    wait_for(lambda: registry_status(target, big_id) == "killed", timeout=10)

    again = replicator("livecopy", at(source), at(target))
    assert again.returncode == 0, again.stderr
    assert f"Image {big_id} (big) ({len(BIG)} bytes) is killed on the target" in again.stderr

    mine, theirs = images_of(source), images_of(target)
    assert sorted(theirs) == sorted(mine)  # every image once, under its own id
    for image_id, image in mine.items():
        copy = theirs[image_id]
        assert copy["status"] == "active"
        for key in ("name", "size", "checksum", "is_public", "properties"):
            assert copy[key] == image[key], key
        data = target.get(f"/images/{image_id}").content
        assert hashlib.md5(data).hexdigest() == image["checksum"]
    # no partial or orphan file of the interrupted upload is left in the store
    assert sorted(f for f in target.files() if not f.startswith(big_id)) == sorted(
        i for i in mine if i != big_id
    )
    assert len([f for f in target.files() if f.startswith(big_id)]) == 1
    assert not any(f.startswith(".") for f in target.files())

    assert_in_step(at(source), at(target))


def test_a_target_that_refuses_data_to_a_killed_image_is_named_and_the_run_goes_on(source, deploy):
    """A Glance target answers 409 to data for a killed image: here a glance-lite one
    whose killed image has a location (as it refuses too)."""
    target = deploy("resume-refusing")
    big_id = next(i for i, img in images_of(source).items() if img["name"] == "big")
    reserved = target.post(
        "/images",
        headers={
            "x-image-meta-id": big_id,
            "x-image-meta-name": "big",
            "x-image-meta-disk-format": "raw",
            "x-image-meta-container-format": "bare",
        },
    )
    assert reserved.status_code == 201, reserved.text
    registry = target.deployment.registry.url
    killed = requests.put(
        f"{registry}/images/{big_id}",
        json={"image": {"status": "killed", "location": "file:///nowhere/x"}},
        timeout=10,
    )
    assert killed.status_code == 200, killed.text

    done = replicator("livecopy", at(source), at(target))
    assert done.returncode == 0, done.stderr
    assert f"Image {big_id} is killed on the target, which refuses its data" in done.stderr
    assert "Cannot upload to an unqueued image" in done.stderr
    assert "Traceback" not in done.stderr
    theirs = images_of(target)
    small_id = next(i for i, img in images_of(source).items() if img["name"] == "small")
    assert theirs[small_id]["status"] == "active"
    assert registry_status(target, big_id) == "killed"


def cut_upload_head(image_id: str, name: str, size: int) -> bytes:
    return (
        f"POST /v1/images HTTP/1.1\r\nHost: test\r\nContent-Type: application/octet-stream\r\n"
        f"x-image-meta-id: {image_id}\r\nx-image-meta-name: {name}\r\n"
        "x-image-meta-disk-format: raw\r\nx-image-meta-container-format: bare\r\n"
        f"Content-Length: {size}\r\n\r\n"
    ).encode()


def test_load_run_again_finishes_images_left_killed_and_waits_for_one_still_saving(
    source, deploy, tmp_path
):
    assert replicator("dump", at(source), str(tmp_path)).returncode == 0
    mine = images_of(source)
    big_id, small_id = sorted(mine, key=lambda i: mine[i]["name"])  # "big" < "small"
    target = deploy("resume-load")
    # big: an upload cut short (killed); small: an upload still streaming (saving)
    for image_id, keep_open in ((big_id, False), (small_id, True)):
        sock = target.connect()
        sock.sendall(cut_upload_head(image_id, mine[image_id]["name"], 10_000) + b"x" * 100)
        wait_for(lambda image_id=image_id: registry_status(target, image_id) == "saving")
        if keep_open:
            held = sock
        else:
            sock.close()
    wait_for(lambda: registry_status(target, big_id) == "killed")

    first = replicator("load", at(target), str(tmp_path))
    assert first.returncode == 0, first.stderr
    assert f"Image {big_id} (big) ({len(BIG)} bytes) is killed on the target" in first.stderr
    assert f"Image {small_id} is being uploaded on the target (saving)" in first.stderr
    assert registry_status(target, big_id) == "active"

    held.close()  # that upload fails: killed, and the next run finishes it
    wait_for(lambda: registry_status(target, small_id) == "killed")
    second = replicator("load", at(target), str(tmp_path))
    assert second.returncode == 0, second.stderr
    assert f"Image {small_id} (small) (11 bytes) is killed on the target" in second.stderr
    theirs = images_of(target)
    assert sorted(theirs) == sorted(mine)
    for image_id, image in mine.items():
        assert (theirs[image_id]["status"], theirs[image_id]["checksum"]) == (
            "active",
            image["checksum"],
        )
    assert_in_step(at(source), at(target))
