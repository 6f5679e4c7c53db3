"""Run the benchmark: `python -m bench.run [--smoke] [--with-4gib] [--results DIR]`.

Starts glance-registry + glance-api (shipped configs, SQLite, filesystem store), the no-op
chain and nginx (and, for the `cache` part, a second glance-api with an image cache: see
bench/cache.py), measures every scenario with its ceiling next to it, and writes
report.json, report.md and PNG plots to bench/results/<date>-<profile>/ (and, for a full
run, a copy to bench/latest/ for the README). Nothing here asserts a timing: the report
says which targets are met.
"""

import argparse
import concurrent.futures
import datetime
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import glance_lite
from bench import cache, plots, report, scenarios
from bench import nginx as nginx_mod
from bench.profiles import FULL, SMOKE, Profile, with_4gib
from bench.services import ROOT, BareSendfile, Glance, NoopChain, PostgreSQL, database_floor
from bench.session import Session

RESULTS = ROOT / "bench" / "results"
PUBLISHED = ROOT / "bench" / "latest"
PARTS = ("transfers", "parallel", "metadata", "cache")
DATABASES = {
    "sqlite": "SQLite",
    "postgresql": "PostgreSQL (durable defaults: fsync and synchronous_commit on)",
}
DISK_DIRS = ("/var/tmp", tempfile.gettempdir(), str(ROOT / "bench" / "results"))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, a few seconds")
    parser.add_argument("--with-4gib", action="store_true", help="add a 4 GiB image")
    parser.add_argument("--results", type=Path, help="where the report goes")
    parser.add_argument("--keep-workdir", action="store_true", help="keep servers' files")
    parser.add_argument(
        "--only",
        type=lambda text: set(text.split(",")),
        default=set(PARTS),
        help=f"a comma-separated subset of {','.join(PARTS)} (while working on one path)",
    )
    parser.add_argument(
        "--db",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="the registry's database; postgresql starts a real, durable PostgreSQL and "
        "measures the metadata figures with the shipped workers and one per service",
    )
    parser.add_argument(
        "--seed",
        type=int,
        help="seed of the order the systems are measured in within each repeat "
        "(default: a fresh one, recorded in the report)",
    )
    parser.add_argument(
        "--sizes", type=lambda text: tuple(int(x) for x in text.split(",")), help="MiB, e.g. 16,256"
    )
    return parser.parse_args(argv)


def fs_type(path: str) -> str:
    """The file system type of the mount holding `path`, from /proc/mounts."""
    best, kind = "", "unknown"
    with open("/proc/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            mount = fields[1]
            inside = path == mount or path.startswith(mount.rstrip("/") + "/")
            if inside and len(mount) > len(best):
                best, kind = mount, fields[2]
    return kind


def make_workdir() -> Path:
    """A fresh directory on a real disk (not tmpfs) for images, database and logs."""
    for base in DISK_DIRS:
        if os.path.isdir(base) and fs_type(os.path.realpath(base)) not in ("tmpfs", "ramfs"):
            Path(base).mkdir(parents=True, exist_ok=True)
            return Path(tempfile.mkdtemp(prefix="glance-lite-bench-", dir=base))
    raise SystemExit("no disk-backed directory for the bench's files")


def machine_summary(s: Session, nginx_note: str, workdir: Path, db: str) -> list[str]:
    with open("/proc/meminfo") as meminfo:
        mem_kib = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal"))
    curl = subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout.split()[1]
    workers = s.glance.workers
    nginx_text = (
        f"nginx {nginx_mod.version(s.nginx.binary)} ({s.nginx.workers} workers, sendfile)"
        if s.nginx
        else f"nginx missing: {nginx_note}"
    )
    lines = [
        f"machine: {os.cpu_count()} CPUs, {mem_kib / (1 << 20):.1f} GiB RAM, Linux "
        f"{platform.release()}, Python {platform.python_version()}, curl {curl}",
        f"glance-lite {glance_lite.__version__}: workers glance-api {workers['glance-api']}, "
        f"glance-registry {workers['glance-registry']} (the shipped default: CPUs, at most 8); "
        f"{DATABASES[db]}, filesystem store on {fs_type(str(workdir))}",
        f"ceilings: {nginx_text}; a bare sendfile() server ({s.bare.workers} workers, "
        "glance-api's readahead); downloads of 256 MiB and more are divided by the faster "
        f"of the two in each repeat; no-op chain {s.noop.workers}+{s.noop.workers} workers on "
        "glance_lite.server; md5 and disk measured in the bench process",
        f"repeats: {s.profile.repeats_big} for transfers of 256 MiB and more, "
        f"{s.profile.repeats_small} otherwise; downloads from the page cache "
        f"{s.profile.download_repeats(16)} times below 256 MiB, "
        f"{s.profile.download_repeats(256)} times below 1 GiB; median and range "
        f"(min-max) of the repeats; a list latency is the median of "
        f"{s.profile.list_calls} calls",
        f"order: within each repeat the systems are measured in a random order, seed "
        f"{s.seed} (listed at the end)",
    ]
    if s.caching_api:
        lines.append(
            "image cache: a second glance-api (cachemanagement flavor, its own cache "
            "directory, same registry and image directory); a hit is divided by nginx "
            "sending the very same cached file (hard-linked), repeat by repeat; the "
            "download that fills the cache by the same image's download through the "
            "glance-api without a cache, the store file in the page cache for both"
        )
    return lines


def measure(s: Session, parts: set[str]) -> None:
    s.say(f"workers: {s.glance.workers}; nginx: {'yes' if s.nginx else 'missing'}")
    scenarios.idle_memory(s, "after start")
    warm_up(s)
    if "transfers" in parts:
        s.say("disk write + fsync")
        scenarios.disk(s)
        for size in s.profile.sizes_mib:
            settle(s)
            s.say(f"transfers of {scenarios.size_label(size)}")
            scenarios.transfers(s, size)
        scenarios.memory_flatness(s)
    if "parallel" in parts:
        settle(s)
        s.say(f"{s.profile.parallel_clients} parallel downloads")
        scenarios.parallel(s)
    if "metadata" in parts:
        settle(s)
        s.say("metadata")
        scenarios.metadata(s)
    if "cache" in parts:
        settle(s)
        s.say("image cache")
        cache.cache(s)
    scenarios.idle_memory(s, "at the end")
    s.say("done measuring")


def settle(s: Session) -> None:
    """Write back what the previous phase left dirty (deleted multi-GiB images among it)
    before the next one starts, so that its disk work does not land in the next
    phase's figures: 0.4 s of it after the 1 GiB transfers, here."""
    started = time.monotonic()
    os.sync()
    s.say(f"sync: {time.monotonic() - started:.2f} s")


def warm_up(s: Session) -> None:
    """One untimed upload and download, so that first-request costs stay out of the figures."""
    from bench.transfers import download, upload, uploaded_image

    path = scenarios.image_file(s, 1)
    image_id = uploaded_image(upload(s.api_url, path, "warm-up", chunked=False))["id"]
    download(f"{s.api_url}/v1/images/{image_id}")
    if s.nginx:
        download(f"{s.nginx.url}/{image_id}")
    s.delete_image(image_id)


def run(
    profile: Profile, workdir: Path, parts: set[str], seed: int, db: str = "sqlite"
) -> tuple[Session, list[str]]:
    nginx_bin, nginx_note = nginx_mod.find_or_install()
    postgres = PostgreSQL(workdir) if db == "postgresql" else None
    stop_later: list = []
    for name in ("glance", "noop", "bare", "floor", "stack_floor"):
        (workdir / name).mkdir()
    try:
        db_url = postgres.start().url if postgres else None
        glance = Glance(workdir / "glance", db_url)
        stop_later.append(glance)
        glance.start()
        workers = glance.workers["glance-api"]
        caching_api = None
        if "cache" in parts:
            caching_api = glance.start_caching_api(workdir / "glance" / "image-cache")
            stop_later.append(caching_api)
        payload = workdir / "noop" / "list.json"
        noop = NoopChain(workdir / "noop", workers, payload, glance.datadir)
        stop_later.append(noop)
        noop.start()
        bare = BareSendfile(workdir / "bare", glance.datadir, workers)
        stop_later.append(bare)
        bare.start()
        nginx = None
        if nginx_bin:
            nginx = nginx_mod.Nginx(nginx_bin, workdir / "nginx", glance.datadir, workers)
            stop_later.append(nginx)
            try:
                nginx.start()
            except RuntimeError as err:
                nginx, nginx_note = None, str(err)
        s = Session(profile, workdir, glance, noop, nginx, bare, seed, db)
        if "metadata" in parts:
            for name, framed in (("floor", False), ("stack_floor", True)):
                url = postgres.create_database(name) if postgres else None
                floor = database_floor(workdir / name, workers, payload, framed, url)
                stop_later.append(floor)
                setattr(s, name, floor)
        if caching_api:
            s.caching_api, s.cache_dir = caching_api, workdir / "glance" / "image-cache"
        if not nginx:
            s.notes.append(f"nginx ceilings missing: {nginx_note}")
        if postgres:
            s.variant_label = " (PostgreSQL)"
        measure(s, parts)
        summary = machine_summary(s, nginx_note, workdir, db)
        if postgres:
            one_worker_each(s, postgres, stop_later)
        return s, summary
    finally:
        # side by side: each waits for its own processes' graceful ends (seconds apiece)
        with concurrent.futures.ThreadPoolExecutor(max(1, len(stop_later))) as pool:
            for stopped in [pool.submit(server.stop) for server in stop_later]:
                stopped.result()
        if postgres:
            postgres.stop()


def one_worker_each(s: Session, postgres: PostgreSQL, stop_later: list) -> None:
    """The metadata figures again with one worker per service (glance-api, glance-registry
    and each end of the chain), on a fresh database of the same PostgreSQL server."""
    url = postgres.create_database("glance_one_worker")
    workdir = s.workdir / "one-worker"
    for name in ("glance", "noop"):
        (workdir / name).mkdir(parents=True)
    glance = Glance(workdir / "glance", url, workers=1)
    stop_later.append(glance)
    glance.start()
    noop = NoopChain(workdir / "noop", 1, workdir / "noop" / "list.json", glance.datadir)
    stop_later.append(noop)
    noop.start()
    s.glance, s.noop = glance, noop
    s.floor = s.stack_floor = None  # measured with the shipped workers only
    s.variant, s.variant_label = "_one_worker", " (PostgreSQL, 1 worker per service)"
    s.say("metadata, one worker per service")
    scenarios.idle_memory(s, "after start")
    scenarios.metadata(s)
    scenarios.idle_memory(s, "at the end")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    profile = SMOKE if args.smoke else FULL
    if args.with_4gib:
        profile = with_4gib(profile)
    if args.sizes:
        profile = replace(profile, sizes_mib=args.sizes, cache_sizes_mib=args.sizes)
    if args.only - set(PARTS):
        raise SystemExit(f"--only takes {','.join(PARTS)}")
    if args.db == "postgresql":  # the registry's database matters to the metadata calls
        profile = replace(profile, name=f"{profile.name}-postgresql")
        args.only = {"metadata"}
    partial = args.only != set(PARTS) or args.sizes
    # SIGTERM unwinds like Ctrl-C, so that the servers are stopped and files removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    stamp = datetime.datetime.now(datetime.UTC)
    results = args.results or RESULTS / f"{stamp:%Y%m%d-%H%M%S}-{profile.name}"
    workdir = make_workdir()
    began = time.monotonic()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    try:
        s, summary = run(profile, workdir, args.only, seed, args.db)
    finally:
        if not args.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    meta = {
        "date": f"{stamp:%Y-%m-%d %H:%M} UTC",
        "profile": {
            **vars(profile),
            "sizes_mib": list(profile.sizes_mib),
            "cache_sizes_mib": list(profile.cache_sizes_mib),
        },
        "summary": [*summary, f"the run took {time.monotonic() - began:.0f} s"],
        "workers": s.glance.workers,
        "workdir": str(workdir),
        "seed": seed,
    }
    data = report.build(s, meta)
    report.write(results, data)
    plots.write(results, data)
    print((results / "report.md").read_text())
    print(f"report: {results}")
    if profile.name == "full" and not partial:
        publish(results)
    return 0


def publish(results: Path) -> None:
    """bench/latest/ holds the last full run's report and plots, which the README shows."""
    PUBLISHED.mkdir(exist_ok=True)
    for name in ("report.md", "report.json", "throughput.png", "latency.png", "memory.png"):
        shutil.copy2(results / name, PUBLISHED / name)
    print(f"published to {PUBLISHED}")


if __name__ == "__main__":
    sys.exit(main())
