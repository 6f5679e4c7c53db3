"""glance-cache-manage, -prefetcher, -pruner and -cleaner against real servers."""

import contextlib
import fcntl
import os
import pty
import re
import struct
import subprocess
import termios
import time

import pytest

from tests.functional.servers import ROOT, script, write_conf
from tests.functional.test_cache import fetch_cached


@pytest.fixture(scope="module")
def cached(deploy, tmp_path_factory):
    cache_dir = tmp_path_factory.mktemp("cache")
    api = deploy("cachetools", flavor="cachemanagement", image_cache_dir=cache_dir)
    api.cache_dir = cache_dir
    api.cache_conf = write_conf(
        cache_dir.parent / "glance-cache.conf",
        {
            "DEFAULT": {
                "image_cache_dir": cache_dir,
                "image_cache_max_size": 10_000,
                "image_cache_stall_time": 60,
                "registry_host": "127.0.0.1",
                "registry_port": api.deployment.registry.port,
            },
            "glance_store": {"filesystem_store_datadir": api.datadir},
        },
    )
    return api


def manage(api, *args, stdin: str | None = None):
    return subprocess.run(
        [script("glance-cache-manage"), "-H", "127.0.0.1", "-p", str(api.port), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def tool(api, name: str):
    done = subprocess.run(
        [script(name), "--config-file", str(api.cache_conf)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    return done


def test_queue_prefetch_list_and_delete_with_the_cli(cached):
    image = cached.upload(os.urandom(3000))
    asked = manage(cached, "queue-image", image["id"], stdin="n\n")
    assert asked.returncode == 0 and f"Queue image {image['id']} for caching? [y/N]" in asked.stdout
    assert "No queued images." in manage(cached, "list-queued").stdout
    done = manage(cached, "-v", "queue-image", image["id"], stdin="y\n")
    assert f"Queued image {image['id']} for caching" in done.stdout
    assert "Completed in" in done.stdout
    listed = manage(cached, "list-queued").stdout
    assert "Found 1 queued images..." in listed and image["id"] in listed
    tool(cached, "glance-cache-prefetcher")
    assert (cached.cache_dir / image["id"]).stat().st_size == 3000
    assert "No queued images." in manage(cached, "list-queued").stdout
    table = manage(cached, "list-cached").stdout
    assert "Found 1 cached images..." in table and "Last Accessed (UTC)" in table
    assert image["id"] in table and "N/A" not in table.split(image["id"])[1].split("\n")[0]
    gone = manage(cached, "-f", "-v", "delete-cached-image", image["id"])
    assert f"Deleted cached image {image['id']}" in gone.stdout
    assert "No cached images." in manage(cached, "list-cached").stdout


def test_prefetcher_leaves_images_it_cannot_cache_in_the_queue(cached):
    queued = cached.reserve(name="no data yet")
    manage(cached, "-f", "queue-image", queued["id"])
    done = tool(cached, "glance-cache-prefetcher")
    assert "left in the queue" in done.stderr
    assert queued["id"] in manage(cached, "list-queued").stdout
    manage(cached, "-f", "delete-queued-image", queued["id"])


def test_prefetcher_never_caches_a_store_file_cut_short(cached):
    image = cached.upload(os.urandom(200_000))
    os.truncate(cached.image_file(image["id"]), 50_000)
    manage(cached, "-f", "queue-image", image["id"])
    done = tool(cached, "glance-cache-prefetcher")
    assert "ended after 50000 of 200000 bytes" in done.stderr
    assert not (cached.cache_dir / image["id"]).exists()
    assert os.listdir(cached.cache_dir / "incomplete") == []
    assert image["id"] in manage(cached, "list-queued").stdout
    manage(cached, "-f", "delete-queued-image", image["id"])


def test_cli_errors(cached, deploy):
    one = manage(cached, "-f", "delete-cached-image")
    assert one.returncode == 1
    assert "Please specify one and only ID of the image you wish to " in one.stdout
    missing = manage(cached, "-f", "delete-cached-image", "nope")
    assert missing.returncode == 1
    unknown = manage(cached, "frobnicate")
    assert unknown.returncode == 1 and "Unknown command: frobnicate" in unknown.stderr
    assert 'Error: "frobnicate" is not a valid command.' in unknown.stdout
    plain = deploy("nocache")
    off = manage(plain, "list-cached")
    assert off.returncode == 1
    assert "Cache management middleware not enabled on host 127.0.0.1" in off.stdout


def test_pruner_removes_least_recently_used_down_to_the_limit(cached):
    images = [cached.upload(os.urandom(4000)) for _ in range(4)]
    for image in images:
        assert fetch_cached(cached, image["id"]).status_code == 200
        time.sleep(0.01)
    cached.get(f"/images/{images[0]['id']}")  # a hit: now the most recently used
    tool(cached, "glance-cache-pruner")
    left = {i["id"] for i in images if (cached.cache_dir / i["id"]).exists()}
    assert left == {images[0]["id"], images[3]["id"]}


def test_cleaner_removes_invalid_and_stalled_incomplete_files(cached):
    (cached.cache_dir / "invalid" / "bad").write_bytes(b"x")
    stalled = cached.cache_dir / "incomplete" / "stalled"
    stalled.write_bytes(b"x")
    os.utime(stalled, (1, 1))
    fresh = cached.cache_dir / "incomplete" / "fresh"
    fresh.write_bytes(b"x")
    tool(cached, "glance-cache-cleaner")
    assert os.listdir(cached.cache_dir / "invalid") == []
    assert os.listdir(cached.cache_dir / "incomplete") == ["fresh"]


def test_help_delete_all_and_their_confirmations(cached):
    helped = manage(cached, "help", "queue-image")
    assert helped.returncode == 0 and "glance-cache-manage queue-image <IMAGE_ID>" in helped.stdout
    listing = manage(cached, "help")
    assert "delete-all-queued-images" in listing.stdout
    image = cached.upload(os.urandom(100))
    fetch_cached(cached, image["id"])
    kept = manage(cached, "delete-all-cached-images", stdin="\n")
    assert "Delete all cached images? [y/N]" in kept.stdout
    assert (cached.cache_dir / image["id"]).exists()
    gone = manage(cached, "-v", "delete-all-cached-images", stdin="yes\n")
    assert re.search(r"Deleted \d+ cached images", gone.stdout)
    assert not (cached.cache_dir / image["id"]).exists()
    manage(cached, "-f", "queue-image", image["id"])
    cleared = manage(cached, "-f", "-v", "delete-all-queued-images")
    assert "Deleted 1 queued images" in cleared.stdout


def test_prefetcher_shows_a_progress_bar_on_a_terminal(cached):
    image = cached.upload(os.urandom(300_000))
    manage(cached, "-f", "queue-image", image["id"])
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    done = subprocess.run(
        [script("glance-cache-prefetcher"), "--config-file", str(cached.cache_conf)],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        timeout=60,
    )
    os.close(follower)
    shown = b""
    with contextlib.suppress(OSError):
        while chunk := os.read(leader, 65536):
            shown += chunk
    os.close(leader)
    assert done.returncode == 0
    assert image["id"].encode() in shown and b"100%" in shown
    assert (cached.cache_dir / image["id"]).exists()
