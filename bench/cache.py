"""The image cache's figures (`--only cache`): hits against nginx serving the very same
cached file, the download that fills the cache against an uncached one, and glance-api's
memory while it fills.

A second glance-api runs on the `cachemanagement` flavor, with its own cache directory,
over the bench's registry and image directory (Glance.start_caching_api), so that the
same store file is downloaded through a node with the cache and through the bench's
node without it. The cached file is hard-linked into the image directory that nginx,
the bare sendfile() server and the no-op chain serve: each of them sends the very inode
glance-api's hit sends, from the same page-cache state.
"""

import os
import time
from collections.abc import Callable

import requests

from bench import ceilings
from bench.memory import RssWatch
from bench.profiles import MIB
from bench.scenarios import (
    FLAT_TARGET,
    STREAM_GROWTH_TARGET,
    _checked,
    image_file,
    size_label,
)
from bench.session import Session
from bench.stats import Target
from bench.transfers import Transfer, download, upload, uploaded_image

HIT_TARGET = Target("ratio", ">=", 0.9)  # of nginx sending the same cached file
FILL_TARGET = Target("ratio", "<=", 1.1)  # times the uncached download of the same image
PUBLISH_TIMEOUT = 300.0  # seconds a fill may take to be published after its download
LINK_PREFIX = "cached-"  # the cached file's hard link in the image directory


def cache(s: Session) -> None:
    _warm_up(s)
    for size_mib in s.profile.cache_sizes_mib:
        os.sync()
        s.say(f"cache, {size_label(size_mib)}")
        _figures(s, size_mib)
        image_id = uploaded_image(
            upload(s.api_url, image_file(s, size_mib), f"bench-cache-{size_mib}", chunked=False)
        )["id"]
        _fills(s, size_mib, image_id)
        _hits(s, size_mib, image_id)
        _delete(s, image_id)
    sizes = s.profile.cache_sizes_mib
    s.figure(
        "cache_fill_growth_spread",
        f"glance-api RSS growth spread while filling the cache, {size_label(min(sizes))} "
        f"to {size_label(max(sizes))}",
        "MiB",
        target=FLAT_TARGET,
        group="memory",
    )
    medians = [s.figures[f"cache_fill_growth_{size}"].median for size in sizes]
    s.add("cache_fill_growth_spread", max(medians) - min(medians))


def _figures(s: Session, size_mib: int) -> None:
    tag = size_label(size_mib)
    s.figure(
        f"cache_uncached_{size_mib}",
        f"download {tag} through glance-api without a cache",
        "ms",
        group="ceiling",
    )
    s.figure(
        f"cache_fill_{size_mib}",
        f"download {tag} that fills the cache (its time)",
        "ms",
        ceiling=f"cache_uncached_{size_mib}",
        target=FILL_TARGET,
        group="cache",
    )
    s.figure(
        f"cache_published_{size_mib}",
        "the same, until the copy is verified and published",
        "ms",
        ceiling=f"cache_uncached_{size_mib}",
        group="cache",
    )
    s.figure(
        f"cache_fill_growth_{size_mib}",
        f"glance-api RSS growth over idle, filling the cache with {tag}",
        "MiB",
        target=STREAM_GROWTH_TARGET,
        group="memory",
    )
    if s.nginx:  # without nginx the ceiling is reported missing
        s.figure(
            f"nginx_cached_{size_mib}",
            f"nginx GET of the cached file, {tag}",
            "MiB/s",
            group="ceiling",
        )
    s.figure(
        f"bare_cached_{size_mib}",
        f"bare sendfile() GET of the cached file, {tag}",
        "MiB/s",
        group="ceiling",
    )
    s.figure(
        f"cache_hit_{size_mib}",
        f"cache hit through glance-api, {tag}",
        "MiB/s",
        ceiling=f"nginx_cached_{size_mib}",
        target=HIT_TARGET,
        group="cache",
    )
    s.figure(
        f"noop_cached_{size_mib}",
        f"no-op chain GET of the cached file, {tag} (one forwarded call, then sendfile)",
        "MiB/s",
        ceiling=f"nginx_cached_{size_mib}",
        group="cache",
    )


def _fills(s: Session, size_mib: int, image_id: str) -> None:
    """Per repeat, in a random order: the download that fills the caching node's cache
    (its copy dropped first) and the same image through the node without a cache, each
    with the store file in the page cache and what the other left dirty written back."""
    size = size_mib * MIB
    store_file = s.glance.datadir / image_id
    caching_url = f"{s.caching_api.url}/v1/images/{image_id}"

    def fill() -> None:
        _drop_cached(s, image_id)
        ceilings.into_page_cache(store_file)
        with s.watch(f"cache fill {size_label(size_mib)}", api=s.caching_api) as watch:
            started = time.monotonic()
            result = _checked(download(caching_url), size)
            _wait_published(s, image_id)
            published = time.monotonic() - started
        s.add(f"cache_fill_{size_mib}", result.seconds * 1000)
        s.add(f"cache_published_{size_mib}", published * 1000)
        s.add(f"cache_fill_growth_{size_mib}", _growth(watch))
        os.sync()

    def uncached() -> None:
        ceilings.into_page_cache(store_file)
        result = _checked(download(f"{s.api_url}/v1/images/{image_id}"), size)
        s.add(f"cache_uncached_{size_mib}", result.seconds * 1000)
        os.sync()

    steps = {"glance-api filling its cache": fill, "glance-api without a cache": uncached}
    # a fill's time swings with what the machine does meanwhile, a small one's most: as
    # many repeats as the small downloads have, and never fewer than small transfers
    repeats = max(s.profile.download_repeats(size_mib), s.profile.repeats_small)
    for r in range(repeats):
        s.in_random_order(f"cache fill {size_label(size_mib)}, repeat {r + 1}", steps)


def _hits(s: Session, size_mib: int, image_id: str) -> None:
    """Per repeat, in a random order: a hit through the caching node, and nginx, the
    bare sendfile() server and the no-op chain sending the same (hard-linked) file."""
    size = size_mib * MIB
    link = s.glance.datadir / f"{LINK_PREFIX}{image_id}"
    os.link(s.cache_dir / image_id, link)
    ceilings.into_page_cache(link)
    name = link.name
    steps: dict[str, Callable[[], None]] = {
        "glance-api cache hit": _timed(
            s, f"cache_hit_{size_mib}", f"{s.caching_api.url}/v1/images/{image_id}", size
        )
    }
    if s.nginx:
        steps["nginx"] = _timed(s, f"nginx_cached_{size_mib}", f"{s.nginx.url}/{name}", size)
    steps["bare sendfile"] = _timed(s, f"bare_cached_{size_mib}", f"{s.bare.url}/{name}", size)
    steps["no-op chain"] = _timed(
        s, f"noop_cached_{size_mib}", f"{s.noop.front.url}/files/{name}", size
    )
    hits_before = _hits_of(s, image_id) or 0
    repeats = s.profile.download_repeats(size_mib)
    try:
        for r in range(repeats):
            s.in_random_order(f"cache hit {size_label(size_mib)}, repeat {r + 1}", steps)
    finally:
        link.unlink()
    # each one was a hit, none a fill (hits are counted just after each download)
    deadline = time.monotonic() + 10
    while (_hits_of(s, image_id) or 0) - hits_before != repeats:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{repeats} downloads of cached image {image_id} were not all hits")
        time.sleep(0.05)


def _timed(s: Session, key: str, url: str, size: int) -> Callable[[], None]:
    def run() -> None:
        result: Transfer = download(url)
        try:
            _checked(result, size)
        except RuntimeError as err:
            raise RuntimeError(f"{url}: {err}") from None
        s.add(key, result.throughput(size))

    return run


def _growth(watch: RssWatch) -> float:
    return watch.worst("glance-api", "growth_mib")


def _wait_published(s: Session, image_id: str) -> None:
    """Until the fill's job is over: its file renamed into the cache (watched on disk,
    every 2 ms), then its index entry written (asked of the node, every 10 ms)."""
    deadline = time.monotonic() + PUBLISH_TIMEOUT
    incomplete = s.cache_dir / "incomplete" / image_id
    while incomplete.exists() or not (s.cache_dir / image_id).exists():
        _before(deadline, image_id)
        time.sleep(0.002)
    while _hits_of(s, image_id) is None:
        _before(deadline, image_id)
        time.sleep(0.01)


def _before(deadline: float, image_id: str) -> None:
    if time.monotonic() > deadline:
        raise RuntimeError(f"image {image_id} was not cached {PUBLISH_TIMEOUT:.0f} s on")


def _drop_cached(s: Session, image_id: str) -> None:
    resp = requests.delete(f"{s.caching_api.url}/v1/cached_images/{image_id}", timeout=60)
    if resp.status_code not in (200, 404):
        raise RuntimeError(f"dropping cached {image_id} answered {resp.status_code}")


def _hits_of(s: Session, image_id: str) -> int | None:
    """The hits of the image's cache entry on the caching node; None: no entry."""
    listed = requests.get(f"{s.caching_api.url}/v1/cached_images", timeout=60).json()
    return next((e["hits"] for e in listed["cached_images"] if e["image_id"] == image_id), None)


def _delete(s: Session, image_id: str) -> None:
    """Delete the image through the caching node, which drops its copy too."""
    resp = requests.delete(f"{s.caching_api.url}/v1/images/{image_id}", timeout=60)
    if resp.status_code != 200:
        raise RuntimeError(f"delete of {image_id} answered {resp.status_code}: {resp.text}")


def _warm_up(s: Session) -> None:
    """One untimed fill and hit of a small image on the caching node."""
    image_id = uploaded_image(upload(s.api_url, image_file(s, 1), "warm-up", chunked=False))["id"]
    url = f"{s.caching_api.url}/v1/images/{image_id}"
    _checked(download(url), MIB)
    _wait_published(s, image_id)
    _checked(download(url), MIB)
    _delete(s, image_id)
