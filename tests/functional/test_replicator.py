"""glance-replicator between real deployments: livecopy, compare, dump, load, size."""

import hashlib
import json
import subprocess

import pytest

from tests.functional.servers import script

pytestmark = pytest.mark.functional


def replicator(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [script("glance-replicator"), *args], capture_output=True, text=True, timeout=120
    )


def at(api) -> str:
    return f"127.0.0.1:{api.port}"


@pytest.fixture(scope="module")
def source(deploy):
    api = deploy("replica-source")
    big = bytes(range(256)) * 4096 * 3  # 3 MiB: many chunks
    api.upload(big, name="big", is_public="true", properties={"distro": "debian"})
    api.upload(b"private bytes", name="private", properties={"os": "linux", "empty": ""})
    api.reserve(name="queued-only", disk_format="raw", container_format="bare")
    return api


def images_of(api) -> dict[str, dict]:
    listed = api.get("/images/detail?is_public=None").json()["images"]
    return {image["id"]: image for image in listed}


def assert_in_step(source_at: str, target_at: str, *options: str) -> None:
    """`compare` finds no difference, and `livecopy` run again copies and updates nothing."""
    compared = replicator(*options, "compare", source_at, target_at)
    assert compared.returncode == 0, compared.stderr
    assert "differs" not in compared.stderr and "missing" not in compared.stderr
    again = replicator(*options, "livecopy", source_at, target_at)
    assert again.returncode == 0, again.stderr
    for line in ("is being synced", "has changed", "uploading its data"):
        assert line not in again.stderr


def test_livecopy_copies_active_images_and_compare_finds_no_difference(source, deploy):
    target = deploy("replica-target")
    done = replicator("livecopy", at(source), at(target))
    assert done.returncode == 0, done.stderr
    mine, theirs = images_of(source), images_of(target)
    active = {i: img for i, img in mine.items() if img["status"] == "active"}
    assert set(theirs) == set(active)  # the queued image is not copied
    for image_id, image in active.items():
        copy = theirs[image_id]
        for key in ("name", "size", "checksum", "is_public", "disk_format", "properties"):
            assert copy[key] == image[key], key
        data = target.get(f"/images/{image_id}").content
        assert hashlib.md5(data).hexdigest() == image["checksum"]

    assert_in_step(at(source), at(target))
    assert set(images_of(target)) == set(active)

    # a metadata change on the source is carried over
    big_id = next(i for i, img in active.items() if img["name"] == "big")
    assert source.update(big_id, properties={"distro": "trixie"}).status_code == 200
    assert "differs" in replicator("compare", at(source), at(target)).stderr
    changed = replicator("livecopy", at(source), at(target))
    assert f"Image {big_id} (big) metadata has changed" in changed.stderr
    assert images_of(target)[big_id]["properties"]["distro"] == "trixie"
    assert "differs" not in replicator("compare", at(source), at(target)).stderr


def test_dump_then_load_gives_the_same_images_metadata_and_bytes(source, deploy, tmp_path):
    dumped = replicator("dump", at(source), str(tmp_path))
    assert dumped.returncode == 0, dumped.stderr
    mine = images_of(source)
    for image_id, image in mine.items():
        assert json.loads((tmp_path / image_id).read_text())["id"] == image_id
        data_file = tmp_path / f"{image_id}.img"
        assert data_file.exists() == (image["status"] == "active")
        if data_file.exists():
            assert hashlib.md5(data_file.read_bytes()).hexdigest() == image["checksum"]
    empty = deploy("replica-empty")
    loaded = replicator("load", at(empty), str(tmp_path))
    assert loaded.returncode == 0, loaded.stderr
    theirs = images_of(empty)
    for image_id, image in mine.items():
        if image["status"] != "active":
            assert image_id not in theirs
            continue
        copy = theirs[image_id]
        for key in ("name", "size", "checksum", "is_public", "properties", "min_ram"):
            assert copy[key] == image[key], key
        data = empty.get(f"/images/{image_id}").content
        assert hashlib.md5(data).hexdigest() == image["checksum"]


def test_size_counts_the_active_images(source):
    active = [img for img in images_of(source).values() if img["status"] == "active"]
    total = sum(img["size"] for img in active)
    done = replicator("size", at(source))
    assert done.returncode == 0
    assert done.stdout.startswith(f"Total size is {total} bytes (")
    assert done.stdout.strip().endswith(f"across {len(active)} images")


@pytest.mark.parametrize(
    ("args", "status", "error"),
    [
        (["size", "nowhere"], 1, 'ERROR: Host and port "nowhere" is not valid.'),
        (["size", "127.0.0.1:99999"], 1, 'ERROR: Port "99999" is not valid.'),
        (["size", "127.0.0.1:9"], 1, "ERROR: Could not reach the glance server 127.0.0.1:9"),
        (["livecopy", "127.0.0.1:9"], 1, "ERROR: Too few arguments."),
        (["explode"], 1, "Unknown command: explode"),
    ],
)
def test_bad_arguments_and_servers_are_named(args, status, error):
    done = replicator(*args)
    assert done.returncode == status
    assert error in done.stderr
    assert "Traceback" not in done.stderr


def test_help(source):
    assert "livecopy        Load the contents" in replicator().stdout
    assert "glance-replicator livecopy <fromserver:port> <toserver:port>" in (
        replicator("help", "livecopy").stdout
    )
