"""The image cache through real servers: hits, fills, invalidation, policy, management."""

import os
import time

import pytest

from tests.functional.conftest import md5
from tests.functional.servers import Deployment, wait_for


@pytest.fixture(scope="module", params=["sqlite", "xattr"])
def cached(deploy, tmp_path_factory, request):
    cache_dir = tmp_path_factory.mktemp("cache")
    api = deploy(
        f"cache-{request.param}",
        flavor="cachemanagement",
        image_cache_dir=cache_dir,
        image_cache_driver=request.param,
    )
    api.cache_dir = cache_dir
    api.driver = request.param
    return api


def fetch_cached(api, image_id: str, **kw):
    """GET an image and wait until its copy is published (its md5 is checked once the
    client has every byte, off the client's path)."""
    resp = api.get(f"/images/{image_id}", **kw)
    wait_for(lambda: published(api, image_id))
    return resp


def published(api, image_id: str) -> bool:
    incomplete = api.cache_dir / "incomplete" / image_id
    return (api.cache_dir / image_id).exists() and not incomplete.exists()


def entry(api, image_id):
    """(size, hits) of the image's entry in the node's cache index, or None."""
    for found in api.get("/cached_images").json()["cached_images"]:
        if found["image_id"] == image_id:
            return found["size"], found["hits"]
    return None


def test_first_download_fills_the_cache_and_the_next_one_is_a_hit(cached):
    data = os.urandom(3 * 1024 * 1024 + 17)
    image = cached.upload(data)
    first = fetch_cached(cached, image["id"])
    assert first.status_code == 200 and first.content == data
    assert first.headers["Content-Length"] == str(len(data))
    assert (cached.cache_dir / image["id"]).read_bytes() == data
    assert entry(cached, image["id"]) == (len(data), 0)
    # each driver is the one in use: xattr keeps no database
    assert (cached.cache_dir / "cache.db").exists() == (cached.driver == "sqlite")
    os.unlink(cached.image_file(image["id"]))  # only the cache has it now
    second = cached.get(f"/images/{image['id']}")
    assert second.status_code == 200 and md5(second.content) == md5(data)
    assert second.headers["Content-Length"] == str(len(data))
    assert second.headers["x-image-meta-checksum"] == md5(data)
    # the hit is counted off the request's path, once the copy went out whole
    wait_for(lambda: entry(cached, image["id"]) == (len(data), 1))


def test_a_truncated_cache_file_is_dropped_and_the_store_serves(cached):
    data = os.urandom(200_000)
    image = cached.upload(data)
    assert fetch_cached(cached, image["id"]).content == data
    path = cached.cache_dir / image["id"]
    with open(path, "r+b") as f:
        f.truncate(1000)
    resp = fetch_cached(cached, image["id"])
    assert resp.status_code == 200 and resp.content == data
    assert path.read_bytes() == data  # filled again, whole


def test_a_rewritten_cache_file_of_the_same_size_is_never_served(cached):
    data = os.urandom(100_000)
    image = cached.upload(data)
    fetch_cached(cached, image["id"])
    path = cached.cache_dir / image["id"]
    os.utime(path, (1, 1))  # as a rewrite leaves it: a modification time of its own
    with open(path, "r+b") as f:
        f.write(b"X" * 10)
    resp = cached.get(f"/images/{image['id']}")
    assert resp.content == data


def test_deleting_an_image_drops_it_from_the_cache(cached):
    image = cached.upload(b"x" * 5000)
    fetch_cached(cached, image["id"])
    assert (cached.cache_dir / image["id"]).exists()
    assert cached.delete(f"/images/{image['id']}").status_code == 200
    assert not (cached.cache_dir / image["id"]).exists()
    assert entry(cached, image["id"]) is None
    assert cached.get(f"/images/{image['id']}").status_code == 404


def test_a_client_that_stops_reading_leaves_no_cache_file(cached):
    data = os.urandom(32 * 1024 * 1024)
    image = cached.upload(data)
    sock = cached.connect()
    sock.sendall(f"GET /v1/images/{image['id']} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    sock.recv(65536)
    sock.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and os.listdir(cached.cache_dir / "incomplete"):
        time.sleep(0.1)
    assert not (cached.cache_dir / image["id"]).exists()
    assert os.listdir(cached.cache_dir / "incomplete") == []


def test_management_api_lists_deletes_and_queues(cached):
    image = cached.upload(b"y" * 4096)
    fetch_cached(cached, image["id"])
    listed = cached.get("/cached_images").json()["cached_images"]
    mine = [e for e in listed if e["image_id"] == image["id"]]
    assert mine and mine[0]["size"] == 4096 and mine[0]["hits"] == 0
    assert set(mine[0]) == {"image_id", "hits", "last_accessed", "last_modified", "size"}
    resp = cached.delete(f"/cached_images/{image['id']}")
    assert resp.status_code == 200 and resp.json() is None
    assert cached.delete(f"/cached_images/{image['id']}").status_code == 404
    assert cached.put(f"/queued_images/{image['id']}").status_code == 200
    assert image["id"] in cached.get("/queued_images").json()["queued_images"]
    assert cached.put("/queued_images/no-such-image").status_code == 404
    assert cached.delete(f"/queued_images/{image['id']}").json() is None
    assert cached.delete(f"/queued_images/{image['id']}").status_code == 404
    cached.put(f"/queued_images/{image['id']}")
    assert cached.delete("/queued_images").json()["num_deleted"] >= 1
    fetch_cached(cached, image["id"])
    assert cached.delete("/cached_images").json()["num_deleted"] >= 1
    assert not (cached.cache_dir / image["id"]).exists()


def test_a_cache_directory_that_cannot_be_made_serves_from_the_store(deploy):
    api = deploy("badcache", flavor="caching", image_cache_dir="/proc/no-cache-here")
    data = os.urandom(70_000)
    image = api.upload(data)
    for _ in range(2):
        resp = api.get(f"/images/{image['id']}")
        assert resp.status_code == 200 and resp.content == data
    assert "/proc/no-cache-here cannot be used" in api.api_log()


def test_store_data_with_the_wrong_checksum_is_served_as_stored_but_never_cached(cached):
    data = os.urandom(60_000)
    image = cached.upload(data)
    changed = b"Z" * 10 + data[10:]
    cached.image_file(image["id"]).write_bytes(changed)  # same size, other bytes
    resp = cached.get(f"/images/{image['id']}")
    assert resp.status_code == 200 and resp.content == changed  # as without a cache
    wait_for(lambda: (cached.cache_dir / "invalid" / image["id"]).exists())
    assert not (cached.cache_dir / image["id"]).exists()
    assert "not cached" in cached.api_log()


def test_a_caching_flavor_without_image_cache_dir_does_not_start(tmp_path):
    deployment = Deployment(tmp_path, api_options={"flavor": "caching"})
    try:
        with pytest.raises(RuntimeError, match="image_cache_dir is not set"):
            deployment.start()
    finally:
        deployment.stop()
