"""The measured scenarios. Each glance figure is taken right next to its ceiling, repeat by
repeat, so that a slow moment of a noisy machine hits both and the ratio holds."""

from collections.abc import Callable
from pathlib import Path

import requests

from bench import ceilings
from bench.memory import status_kib
from bench.metadata import ClientsRun, run_clients
from bench.profiles import MIB
from bench.services import empty_images
from bench.session import Session
from bench.stats import Target, median, percentile
from bench.transfers import Transfer, download, parallel_downloads, upload, uploaded_image

UPLOAD_TARGET = Target("ratio", ">=", 0.75)  # of md5 in Python, for images >= 256 MiB
DOWNLOAD_TARGET = Target("ratio", ">=", 0.9)  # of nginx GET of the same file, >= 256 MiB
# A smaller download is held back by the time to its first byte: it is measured against
# the no-op chain's download (one forwarded call, then sendfile), nginx's figure beside it.
SMALL_DOWNLOAD_TARGET = Target("ratio", ">=", 0.95)
PARALLEL_TARGET = Target("ratio", ">=", 0.9)  # of nginx under the same load
HEAD_TARGET = Target("ratio", "<=", 1.2)  # times the no-op chain's HEAD p50
CREATE_TARGET = Target("ratio", ">=", 0.55)  # of the no-op chain's request rate (SQLite)
PG_CREATE_TARGET = Target("ratio", ">=", 0.5)  # the same, 16 clients, on PostgreSQL
LIST_TARGET = Target("ratio", "<=", 1.5)  # times the no-op chain's latency
STREAM_GROWTH_TARGET = Target("value", "<", 16)  # MiB over idle, per glance-api process
FLAT_TARGET = Target("value", "<=", 5)  # MiB between the smallest and largest image
NO_ERRORS = Target("value", "<=", 0)


def size_label(size_mib: int) -> str:
    return f"{size_mib} MiB" if size_mib < 1024 else f"{size_mib // 1024} GiB"


def image_file(s: Session, size_mib: int) -> Path:
    path = s.workdir / "files" / f"image-{size_mib}MiB.bin"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        ceilings.make_image_file(path, size_mib * MIB)
    return path


# --- ceilings measured in this process ---------------------------------------------------


def disk(s: Session) -> None:
    mib = s.profile.disk_write_mib
    s.figure("disk_fsync", f"disk write + fsync, {size_label(mib)}", "MiB/s", group="ceiling")
    for _ in range(s.profile.disk_repeats):
        s.add("disk_fsync", ceilings.fsync_write(s.workdir / "disk-test.bin", mib * MIB))


def idle_memory(s: Session, when: str) -> None:
    """Idle RSS of each service's largest worker process (the parent only forks them)."""
    for name, server in (("glance-api", s.glance.api), ("glance-registry", s.glance.registry)):
        key = f"idle_{name}_{when}".replace("-", "_")
        s.figure(key, f"{name} idle RSS, largest worker, {when}", "MiB", group="memory")
        workers = server.pids()[1:] or server.pids()
        s.add(key, max((status_kib(pid, "VmRSS") or 0) / 1024 for pid in workers))


# --- single transfers --------------------------------------------------------------------


def transfers(s: Session, size_mib: int) -> None:
    """Uploads (Content-Length, chunked) against md5, downloads against nginx, one size."""
    path = image_file(s, size_mib)
    tag = size_label(size_mib)
    repeats = s.profile.repeats(size_mib)
    _transfer_figures(s, size_mib)
    downloads = s.profile.download_repeats(size_mib)
    growth = [0.0] * repeats  # per repeat: the worst glance-api process over its transfers
    image_id = None
    for r in range(repeats):
        speed, digest = ceilings.md5_file(path)
        s.add(f"md5_{size_mib}", speed)
        for mode in ("length", "chunked"):

            def glance(mode: str = mode, r: int = r, digest: str = digest) -> None:
                nonlocal image_id
                if image_id:
                    s.delete_image(image_id)
                with s.watch(f"upload ({mode}) {tag}") as watch:
                    result = upload(s.api_url, path, f"bench-{size_mib}", chunked=mode == "chunked")
                image_id = _check_upload(result, size_mib * MIB, digest)
                s.add(f"upload_{mode}_{size_mib}", result.throughput(size_mib * MIB))
                growth[r] = max(growth[r], watch.worst("glance-api", "growth_mib"))

            def floor(mode: str = mode, digest: str = digest) -> None:
                result = upload(s.bare.url, path, "floor", chunked=mode == "chunked")
                _check_upload(result, size_mib * MIB, digest)
                s.add(f"floor_upload_{mode}_{size_mib}", result.throughput(size_mib * MIB))

            steps = {"glance-api": glance, "bare receive": floor}
            s.in_random_order(f"upload ({mode}) {tag}, repeat {r + 1}", steps)
    size = size_mib * MIB
    ceilings.into_page_cache(s.glance.datadir / image_id)
    for r in range(downloads):

        def glance(r: int = r) -> None:
            with s.watch(f"download {tag}") as watch:
                _timed_download(
                    s, f"download_{size_mib}", f"{s.api_url}/v1/images/{image_id}", size
                )()
            # extra downloads of small images count with the repeat they follow
            growth[r % repeats] = max(growth[r % repeats], watch.worst("glance-api", "growth_mib"))

        steps = {"glance-api": glance}
        if s.nginx:
            steps["nginx"] = _timed_download(
                s, f"nginx_get_{size_mib}", f"{s.nginx.url}/{image_id}", size
            )
        steps["bare sendfile"] = _timed_download(
            s, f"bare_get_{size_mib}", f"{s.bare.url}/{image_id}", size
        )
        steps["no-op chain"] = _timed_download(
            s, f"noop_get_{size_mib}", f"{s.noop.front.url}/files/{image_id}", size
        )
        s.in_random_order(f"download {tag}, repeat {r + 1}", steps)
    _best_of(s, f"best_get_{size_mib}", f"nginx_get_{size_mib}", f"bare_get_{size_mib}")
    if size_mib >= 256:
        _cold_downloads(s, size_mib, image_id)
    s.delete_image(image_id)
    for value in growth:
        s.add(f"api_growth_{size_mib}", value)


def _best_of(s: Session, key: str, *ceilings: str) -> None:
    """Figure `key`: repeat by repeat, the fastest of the `ceilings` measured."""
    measured = [s.figures[name].samples for name in ceilings if s.figures[name].samples]
    for samples in zip(*measured, strict=True):
        s.add(key, max(samples))


def _cold_downloads(s: Session, size_mib: int, image_id: str) -> None:
    """Each system downloads the image with none of it in the page cache (dropped with
    POSIX_FADV_DONTNEED right before its turn): the disk's part of a first download."""
    size = size_mib * MIB
    tag = size_label(size_mib)
    path = s.glance.datadir / image_id
    urls = {"glance-api": (f"cold_download_{size_mib}", f"{s.api_url}/v1/images/{image_id}")}
    if s.nginx:
        urls["nginx"] = (f"cold_nginx_get_{size_mib}", f"{s.nginx.url}/{image_id}")
    urls["bare sendfile"] = (f"cold_bare_get_{size_mib}", f"{s.bare.url}/{image_id}")

    def cold(key: str, url: str) -> Callable[[], None]:
        timed = _timed_download(s, key, url, size)
        return lambda: (ceilings.out_of_page_cache(path), timed())

    for r in range(s.profile.repeats(size_mib)):
        steps = {name: cold(key, url) for name, (key, url) in urls.items()}
        s.in_random_order(f"cold download {tag}, repeat {r + 1}", steps)
    _best_of(
        s, f"cold_best_get_{size_mib}", f"cold_nginx_get_{size_mib}", f"cold_bare_get_{size_mib}"
    )
    ceilings.into_page_cache(path)


def _timed_download(s: Session, key: str, url: str, size: int) -> Callable[[], None]:
    """One download of `url`, checked, its throughput added to figure `key`."""
    return lambda: s.add(key, _checked(download(url), size).throughput(size))


def _transfer_figures(s: Session, size_mib: int) -> None:
    tag = size_label(size_mib)
    md5 = s.figure(f"md5_{size_mib}", f"md5 in Python, {tag}", "MiB/s", group="ceiling")
    upload_target = UPLOAD_TARGET if size_mib >= 256 else None
    for mode, how in (("length", "Content-Length"), ("chunked", "chunked")):
        s.figure(
            f"upload_{mode}_{size_mib}",
            f"upload {tag} ({how})",
            "MiB/s",
            ceiling=md5.name,
            target=upload_target,
            group="transfer",
        )
        # the least an upload costs here: received and hashed as the file store does,
        # nothing stored (bench/sendfile_server.py)
        s.figure(
            f"floor_upload_{mode}_{size_mib}",
            f"floor: bare receive + md5, nothing stored, {tag} ({how})",
            "MiB/s",
            ceiling=md5.name,
            group="transfer",
        )
    if s.nginx:  # without nginx the ceiling is reported missing
        s.figure(f"nginx_get_{size_mib}", f"nginx GET, {tag}", "MiB/s", group="ceiling")
    s.figure(f"bare_get_{size_mib}", f"bare sendfile() GET, {tag}", "MiB/s", group="ceiling")
    best = s.figure(
        f"best_get_{size_mib}",
        f"the faster of nginx and bare sendfile(), {tag}",
        "MiB/s",
        group="ceiling",
    )
    small = size_mib < 256
    s.figure(
        f"download_{size_mib}",
        f"download {tag}",
        "MiB/s",
        ceiling=f"noop_get_{size_mib}" if small else best.name,
        target=SMALL_DOWNLOAD_TARGET if small else DOWNLOAD_TARGET,
        group="transfer",
    )
    if not small:
        if s.nginx:
            s.figure(
                f"cold_nginx_get_{size_mib}", f"nginx GET, {tag}, cold", "MiB/s", group="ceiling"
            )
        s.figure(
            f"cold_bare_get_{size_mib}",
            f"bare sendfile() GET, {tag}, cold",
            "MiB/s",
            group="ceiling",
        )
        s.figure(
            f"cold_best_get_{size_mib}",
            f"the faster of nginx and bare sendfile(), {tag}, cold",
            "MiB/s",
            group="ceiling",
        )
        s.figure(
            f"cold_download_{size_mib}",
            f"download {tag}, cold (none of it in the page cache)",
            "MiB/s",
            ceiling=f"cold_best_get_{size_mib}",
            group="transfer",
        )
    # what the server stack and one forwarded call leave of nginx, whatever the api does
    s.figure(
        f"noop_get_{size_mib}",
        f"no-op chain GET, {tag} (one forwarded call, then sendfile)",
        "MiB/s",
        ceiling=f"nginx_get_{size_mib}",
        group="transfer",
    )
    s.figure(
        f"api_growth_{size_mib}",
        f"glance-api RSS growth over idle, streaming {tag}",
        "MiB",
        target=STREAM_GROWTH_TARGET,
        group="memory",
    )


def _check_upload(result: Transfer, size: int, digest: str) -> str:
    image = uploaded_image(result)
    if image["size"] != size or image["checksum"] != digest or image["status"] != "active":
        raise RuntimeError(f"upload stored the wrong image: {image}")
    return image["id"]


def _checked(result: Transfer, size: int) -> Transfer:
    if result.exit_code or result.status != 200 or result.size_down != size:
        raise RuntimeError(f"download failed: {result}")
    return result


def memory_flatness(s: Session) -> None:
    """How far glance-api's streaming growth moves from the smallest to the largest image."""
    medians = [s.figures[f"api_growth_{size}"].median for size in s.profile.sizes_mib]
    sizes = s.profile.sizes_mib
    s.figure(
        "api_growth_spread",
        f"glance-api RSS growth spread, {size_label(min(sizes))} to {size_label(max(sizes))}",
        "MiB",
        target=FLAT_TARGET,
        group="memory",
    )
    s.add("api_growth_spread", max(medians) - min(medians))


# --- parallel downloads ------------------------------------------------------------------


def parallel(s: Session) -> None:
    p = s.profile
    size = p.parallel_size_mib * MIB
    tag = f"{p.parallel_clients} parallel downloads of {size_label(p.parallel_size_mib)}"
    _parallel_figures(s, tag)
    result = upload(s.api_url, image_file(s, p.parallel_size_mib), "bench-parallel", chunked=False)
    image_id = uploaded_image(result)["id"]

    def glance() -> None:
        with s.watch(tag):
            run = parallel_downloads(
                f"{s.api_url}/v1/images/{image_id}", p.parallel_clients, s.gate_dir
            )
        _add_parallel(s, "par", run, size)

    def nginx() -> None:
        run = parallel_downloads(f"{s.nginx.url}/{image_id}", p.parallel_clients, s.gate_dir)
        if run.errors(size):
            raise RuntimeError(f"nginx failed {run.errors(size)} of the parallel downloads")
        _add_parallel(s, "nginx_par", run, size)

    def chain() -> None:
        run = parallel_downloads(
            f"{s.noop.front.url}/files/{image_id}", p.parallel_clients, s.gate_dir
        )
        if run.errors(size):
            raise RuntimeError(f"the no-op chain failed {run.errors(size)} parallel downloads")
        _add_parallel(s, "noop_par", run, size)

    steps = {"glance-api": glance, "no-op chain": chain}
    if s.nginx:
        steps["nginx"] = nginx
    for r in range(p.repeats_small):
        s.in_random_order(f"{tag}, repeat {r + 1}", steps)
    s.delete_image(image_id)


def _parallel_figures(s: Session, tag: str) -> None:
    if s.nginx:  # without nginx the ceilings are reported missing
        s.figure("nginx_par_tput", f"nginx, {tag}: total", "MiB/s", group="ceiling")
        s.figure("nginx_par_p50", f"nginx, {tag}: p50 latency", "ms", group="ceiling")
        s.figure("nginx_par_p99", f"nginx, {tag}: p99 latency", "ms", group="ceiling")
    s.figure(
        "par_tput",
        f"{tag}: total",
        "MiB/s",
        ceiling="nginx_par_tput",
        target=PARALLEL_TARGET,
        group="parallel",
    )
    s.figure("par_p50", f"{tag}: p50 latency", "ms", ceiling="nginx_par_p50", group="parallel")
    s.figure("par_p99", f"{tag}: p99 latency", "ms", ceiling="nginx_par_p99", group="parallel")
    s.figure("par_errors", f"{tag}: errors", "count", target=NO_ERRORS, group="parallel")
    # the floor: each download behind one forwarded call on this server stack
    s.figure(
        "noop_par_tput",
        f"floor: the no-op chain, {tag} (one forwarded call, then sendfile, each): total",
        "MiB/s",
        ceiling="nginx_par_tput",
        group="parallel",
    )
    s.figure("noop_par_p50", f"floor: the no-op chain, {tag}: p50 latency", "ms", group="parallel")
    s.figure("noop_par_p99", f"floor: the no-op chain, {tag}: p99 latency", "ms", group="parallel")


def _add_parallel(s: Session, prefix: str, run, size: int) -> None:
    seconds = [t.seconds for t in run.transfers if t.status == 200]
    s.add(f"{prefix}_tput", len(run.transfers) * size / MIB / run.wall)
    s.add(f"{prefix}_p50", percentile(seconds, 50) * 1000)
    s.add(f"{prefix}_p99", percentile(seconds, 99) * 1000)
    if prefix == "par":
        s.add("par_errors", run.errors(size))


# --- metadata ------------------------------------------------------------------------------


def metadata(s: Session) -> None:
    """Creates without data, sequential and concurrent, against the no-op chain; the list and
    HEAD latencies are taken after the first sequential round, with `creates` images."""
    p = s.profile
    _metadata_figures(s)
    _warm_up_creates(s)
    for r in range(p.repeats_small):
        _creates(s, r, 1, "create_seq")
        if r == 0:
            _list_and_head(s)
        _creates(s, r, p.create_clients, "create_conc")


def _metadata_figures(s: Session) -> None:
    p = s.profile
    for key, clients in (("create_seq", 1), ("create_conc", p.create_clients)):
        how = "sequential" if clients == 1 else f"{clients} clients"
        target = CREATE_TARGET
        if s.db == "postgresql":
            target = PG_CREATE_TARGET if clients > 1 else None
        s.figure(f"noop_{key}", f"no-op chain, creates, {how}", "req/s", group="ceiling")
        s.figure(
            key,
            f"{p.creates} creates without data, {how}",
            "images/s",
            ceiling=f"noop_{key}",
            target=target,
            group="metadata",
        )
    listing = f"GET /v1/images/detail?limit={p.list_limit}"
    s.figure("noop_list", "no-op chain, the same list JSON, median", "ms", group="ceiling")
    s.figure("noop_head_p50", "no-op chain, HEAD p50", "ms", group="ceiling")
    s.figure("noop_head_p99", "no-op chain, HEAD p99", "ms", group="ceiling")
    s.figure(
        "list",
        f"{listing} with {p.creates} images, median",
        "ms",
        ceiling="noop_list",
        target=LIST_TARGET,
        group="metadata",
    )
    s.figure(
        "head_p50",
        "HEAD /v1/images/<id> p50",
        "ms",
        ceiling="noop_head_p50",
        target=HEAD_TARGET,
        group="metadata",
    )
    s.figure(
        "head_p99", "HEAD /v1/images/<id> p99", "ms", ceiling="noop_head_p99", group="metadata"
    )
    s.figure("meta_errors", "metadata calls failed", "count", target=NO_ERRORS, group="metadata")
    for key, _ in s.floors().values():
        _floor_figures(s, key, FLOORS[key])


FLOORS = {
    "floor": "floor: the chain with the registry's SQL in its backend (bench/floor.py)",
    "stack_floor": "floor: the same chain behind webob and routes on both sides (--framed)",
}


def _floor_figures(s: Session, key: str, label: str) -> None:
    """A floor against the no-op chain: what the database work alone costs, and with it
    the least that the stack's frameworks do."""
    p = s.profile
    for name, clients in (("create_seq", 1), ("create_conc", p.create_clients)):
        how = "sequential" if clients == 1 else f"{clients} clients"
        s.figure(
            f"{key}_{name}",
            f"{label}, creates, {how}",
            "req/s",
            ceiling=f"noop_{name}",
            group="floor",
        )
    s.figure(f"{key}_list", f"{label}, list, median", "ms", ceiling="noop_list", group="floor")
    for pct in ("p50", "p99"):
        s.figure(
            f"{key}_head_{pct}",
            f"{label}, HEAD {pct}",
            "ms",
            ceiling=f"noop_head_{pct}",
            group="floor",
        )


WARM_UP_CALLS = 40  # untimed calls on both systems before a kind of metadata call is timed


def _warm_up_creates(s: Session) -> None:
    """Untimed creates first (see _warm_up); glance-lite's warm-up images are deleted
    again, so the list is taken with `creates` images as it says."""
    _warm_up(s, {"op": "create"})
    listed = requests.get(f"{s.api_url}/v1/images?limit={WARM_UP_CALLS}", timeout=60).json()
    for image in listed["images"]:
        if image["name"].startswith("warm-up-"):
            s.delete_image(image["id"])
    for _, chain in s.floors().values():  # which take no DELETE: rows go behind their back
        empty_images(chain.database)


def _warm_up(s: Session, job: dict, urls: list[str] | None = None) -> None:
    """Untimed calls of `job` on glance-lite and on the chain, from two clients (so that
    every worker gets some): after minutes of idling through the transfers, the first
    calls of each process paid for it in the first timed round."""
    if urls is None:
        urls = [s.api_url, s.noop.front.url] + [c.front.url for _, c in s.floors().values()]
    for url in urls:
        warm = run_clients(s.gate_dir, 2, WARM_UP_CALLS, {**job, "url": url}, prefix="warm-up")
        if warm.errors:
            raise RuntimeError(f"{warm.errors} warm-up calls ({job['op']}) failed at {url}")


def _creates(s: Session, r: int, clients: int, key: str) -> None:
    p = s.profile

    def glance() -> None:
        job = {"op": "create", "url": s.api_url}
        with s.watch(f"creates, {clients} client(s)"):
            run = run_clients(s.gate_dir, clients, p.creates, job, prefix=f"r{r}-c{clients}")
        s.add(key, run.rate)
        s.add("meta_errors", run.errors)

    def chain() -> None:
        noop = _noop_run(s, clients, p.creates, {"op": "create", "url": s.noop.front.url})
        s.add(f"noop_{key}", noop.rate)

    steps = {"glance-api": glance, "no-op chain": chain}
    for name, (prefix, floor) in s.floors().items():

        def floor_creates(prefix: str = prefix, url: str = floor.front.url) -> None:
            run = _noop_run(s, clients, p.creates, {"op": "create", "url": url})
            s.add(f"{prefix}_{key}", run.rate)

        steps[name] = floor_creates
    s.in_random_order(f"creates, {clients} client(s), repeat {r + 1}", steps)


def _list_and_head(s: Session) -> None:
    p = s.profile
    list_path = f"/v1/images/detail?limit={p.list_limit}"
    resp = requests.get(s.api_url + list_path, timeout=120)
    images = resp.json()["images"]
    if len(images) != min(p.list_limit, p.creates):
        raise RuntimeError(f"the list holds {len(images)} images, not {p.creates}")
    s.noop.list_payload.write_bytes(resp.content)  # the chain carries the very same JSON
    head_path = f"/v1/images/{images[0]['id']}"
    pair = [s.api_url, s.noop.front.url]
    _warm_up(s, {"op": "list", "path": list_path}, pair)
    _warm_up(s, {"op": "head", "path": head_path}, pair)

    def glance_list() -> None:
        with s.watch(f"list, limit={p.list_limit}"):
            run = run_clients(s.gate_dir, 1, p.list_calls, _job("list", s.api_url, list_path))
        s.add("list", median(run.latencies) * 1000)
        s.add("meta_errors", run.errors)

    def chain_list() -> None:
        noop = _noop_run(s, 1, p.list_calls, _job("list", s.noop.front.url, list_path))
        s.add("noop_list", median(noop.latencies) * 1000)

    def glance_head() -> None:
        with s.watch("HEAD"):
            run = run_clients(s.gate_dir, 1, p.head_calls, _job("head", s.api_url, head_path))
        s.add("head_p50", percentile(run.latencies, 50) * 1000)
        s.add("head_p99", percentile(run.latencies, 99) * 1000)
        s.add("meta_errors", run.errors)

    def chain_head() -> None:
        noop = _noop_run(s, 1, p.head_calls, _job("head", s.noop.front.url, head_path))
        s.add("noop_head_p50", percentile(noop.latencies, 50) * 1000)
        s.add("noop_head_p99", percentile(noop.latencies, 99) * 1000)

    lists = {"glance-api": glance_list, "no-op chain": chain_list}
    heads = {"glance-api": glance_head, "no-op chain": chain_head}
    for name, (prefix, floor) in s.floors().items():
        lists[name], heads[name] = _floor_list_and_head(s, list_path, prefix, floor.front.url)
    for r in range(p.repeats_small):
        s.in_random_order(f"list, repeat {r + 1}", lists)
        s.in_random_order(f"HEAD, repeat {r + 1}", heads)


def _floor_list_and_head(
    s: Session, list_path: str, prefix: str, url: str
) -> tuple[Callable, Callable]:
    """A floor's list and HEAD steps, on its own database (its first listed image)."""
    p = s.profile
    images = requests.get(url + list_path, timeout=120).json()["images"]
    if len(images) != min(p.list_limit, p.creates):
        raise RuntimeError(f"the floor's list holds {len(images)} images, not {p.creates}")
    head_path = f"/v1/images/{images[0]['id']}"
    _warm_up(s, {"op": "list", "path": list_path}, [url])
    _warm_up(s, {"op": "head", "path": head_path}, [url])

    def floor_list() -> None:
        run = _noop_run(s, 1, p.list_calls, _job("list", url, list_path))
        s.add(f"{prefix}_list", median(run.latencies) * 1000)

    def floor_head() -> None:
        run = _noop_run(s, 1, p.head_calls, _job("head", url, head_path))
        s.add(f"{prefix}_head_p50", percentile(run.latencies, 50) * 1000)
        s.add(f"{prefix}_head_p99", percentile(run.latencies, 99) * 1000)

    return floor_list, floor_head


def _job(op: str, url: str, path: str) -> dict:
    return {"op": op, "url": url, "path": path}


def _noop_run(s: Session, clients: int, count: int, job: dict) -> ClientsRun:
    run = run_clients(s.gate_dir, clients, count, job, prefix="noop")
    if run.errors:
        raise RuntimeError(f"the no-op chain failed {run.errors} of {count} calls ({job['op']})")
    return run
