"""The store profiles: `python -m bench.stores --store swift|s3 [--sizes 256,1024]`.

Uploads and downloads the same image files through glance-api (curl, as the main bench)
and directly with the store's own client library (python-swiftclient, boto3) against the
same server, in a random order within each repeat. The target is per repeat: through
glance-api at least 0.8 of the direct client, for 256 MiB and more. glance-api's peak
memory over the idle is reported too. Each transfer is also measured through the store's
floor (bench/sendfile_server.py --swift-container / --s3-bucket: a download read with the
store's client library and sent on to curl; for s3, an upload received over HTTP, hashed
with md5 and sent by boto3 in parts, as the s3 store does it), so that what any api in
between costs against the client library alone is measured, not argued. The server
comes from the environment, as the store tests take it (GLANCE_LITE_TEST_SWIFT_* /
GLANCE_LITE_TEST_S3_*: .ci/services' start-swift.sh and start-s3.sh print them). Writes
report.md under bench/results/.
"""

import argparse
import collections
import datetime
import os
import random
import shutil
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import boto3
import botocore.config
import swiftclient
from boto3.s3.transfer import TransferConfig

from bench import ceilings
from bench.memory import status_kib
from bench.profiles import MIB
from bench.run import make_workdir
from bench.services import ROOT, BareSendfile, Glance
from bench.stats import median
from bench.transfers import download, upload, uploaded_image

RESULTS = ROOT / "bench" / "results"
TARGET = 0.8
READ_CHUNK = 1 << 20  # what the drivers read a download in
# the s3 store's defaults, given to glance-api and to boto3's transfer manager alike
S3_LARGE_MIB, S3_PART_MIB, S3_PARTS_IN_FLIGHT = 100, 10, 10


class SwiftDirect:
    """python-swiftclient against the account glance-api writes to."""

    name = "swiftclient"
    setup = ""
    floor_uploads = False  # glance-api's swift uploads are near swiftclient's own speed
    floor: ClassVar[dict[str, str]] = {"down": "read by python-swiftclient and sent on"}

    def __init__(self, container: str):
        env = os.environ
        self.auth, self.user, self.key = (
            env[f"GLANCE_LITE_TEST_SWIFT_{k}"] for k in ("AUTH", "USER", "KEY")
        )
        self.container = container
        self.conn = swiftclient.Connection(self.auth, self.user, self.key, auth_version="1")
        self.conn.put_container(container)
        self.floor_args = ("--swift-container", container)

    def store_options(self) -> dict:
        return {
            "stores": "file, swift",
            "default_store": "swift",
            "swift_store_auth_version": "1",
            "swift_store_auth_address": self.auth,
            "swift_store_user": self.user,
            "swift_store_key": self.key,
            "swift_store_container": self.container,
            "swift_store_create_container_on_put": "true",
        }

    def put(self, path: Path, name: str) -> None:
        with open(path, "rb") as f:
            self.conn.put_object(self.container, name, f, content_length=path.stat().st_size)

    def get(self, name: str) -> None:
        _, body = self.conn.get_object(self.container, name, resp_chunk_size=READ_CHUNK)
        for _ in body:
            pass

    def cleanup(self) -> None:
        for obj in self.conn.get_container(self.container, full_listing=True)[1]:
            self.conn.delete_object(self.container, obj["name"])
        self.conn.delete_container(self.container)


class S3Direct:
    """boto3 against the endpoint and bucket glance-api writes to. Uploads go through
    boto3's transfer manager (parts in parallel OS threads) with the part size, the
    multipart threshold and the parts in flight glance-api is given: the ceiling may use
    whatever the driver uses."""

    name = "boto3"
    floor_uploads = True
    floor: ClassVar[dict[str, str]] = {
        "up": "received + md5 + boto3",
        "down": "read by boto3 and sent on",
    }
    setup = (
        f" Both write images of {S3_LARGE_MIB} MiB and more as multipart uploads in parts "
        f"of {S3_PART_MIB} MiB, up to {S3_PARTS_IN_FLIGHT} parts in flight."
    )

    def __init__(self, bucket: str):
        env = os.environ
        self.url, self.access, self.secret = (
            env[f"GLANCE_LITE_TEST_S3_{k}"] for k in ("URL", "KEY", "SECRET")
        )
        self.bucket = bucket
        self.client = boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=self.access,
            aws_secret_access_key=self.secret,
            region_name="us-east-1",
            config=botocore.config.Config(
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )
        self.client.create_bucket(Bucket=bucket)
        self.floor_args = ("--s3-bucket", bucket, "--s3-part-mib", str(S3_PART_MIB))
        self.floor_args += ("--s3-parts-in-flight", str(S3_PARTS_IN_FLIGHT))

    def store_options(self) -> dict:
        return {
            "stores": "file, s3",
            "default_store": "s3",
            "s3_store_host": self.url,
            "s3_store_access_key": self.access,
            "s3_store_secret_key": self.secret,
            "s3_store_bucket": self.bucket,
            "s3_store_create_bucket_on_put": "true",
            "s3_store_bucket_url_format": "path",
            "s3_store_large_object_size": S3_LARGE_MIB,
            "s3_store_large_object_chunk_size": S3_PART_MIB,
            "s3_store_thread_pools": S3_PARTS_IN_FLIGHT,
        }

    def put(self, path: Path, name: str) -> None:
        transfer = TransferConfig(
            multipart_threshold=S3_LARGE_MIB * MIB,
            multipart_chunksize=S3_PART_MIB * MIB,
            max_concurrency=S3_PARTS_IN_FLIGHT,
        )
        self.client.upload_file(str(path), self.bucket, name, Config=transfer)

    def get(self, name: str) -> None:
        body = self.client.get_object(Bucket=self.bucket, Key=name)["Body"]
        while body.read(READ_CHUNK):
            pass

    def cleanup(self) -> None:
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for obj in page.get("Contents", []):
                self.client.delete_object(Bucket=self.bucket, Key=obj["Key"])
        self.client.delete_bucket(Bucket=self.bucket)


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def api_peak_kib(glance: Glance) -> int:
    pids = glance.api.pids()
    return max(status_kib(pid, "VmHWM") or 0 for pid in pids[1:] or pids)


def one_repeat(glance: Glance, direct, floor, path: Path, size: int, r: int, rng) -> dict:
    """MiB/s of one upload and one download of `path` each way, in a random order, and
    through the floor: the download always, the upload where `direct.floor_uploads`
    (from the multipart threshold up, where the floor's parts are the store's)."""
    name = f"direct-{size}-{r}"
    got: dict[str, float] = {}
    image: dict = {}

    def api_up() -> None:
        result = upload(glance.api.url, path, f"bench-{size}-{r}", chunked=False)
        image.update(uploaded_image(result))
        got["api_up"] = size / result.seconds

    def direct_up() -> None:
        got["direct_up"] = size / timed(lambda: direct.put(path, name))

    def floor_up() -> None:
        got["floor_up"] = size / upload(floor.url, path, f"floor-{size}-{r}", chunked=False).seconds

    def api_down() -> None:
        got["api_down"] = size / download(f"{glance.api.url}/v1/images/{image['id']}").seconds

    def direct_down() -> None:
        got["direct_down"] = size / timed(lambda: direct.get(name))

    def floor_down() -> None:
        got["floor_down"] = size / download(f"{floor.url}/{name}-floor").seconds

    ups = [api_up, direct_up]
    if direct.floor_uploads and size >= S3_LARGE_MIB:
        ups.append(floor_up)
    for step in rng.sample(ups, len(ups)):
        step()
    # the floor reads a copy of its own, put untimed: an object read a second time comes
    # from the page cache its first read left behind
    direct.put(path, f"{name}-floor")
    for step in rng.sample([api_down, direct_down, floor_down], 3):
        step()
    return got


def ratio_row(label: str, speeds: list[float], direct: list[float], ratios: list[float]) -> str:
    return (
        f"| {label} | {median(speeds):.0f} | {median(direct):.0f} | {median(ratios):.2f} "
        f"({min(ratios):.2f}-{max(ratios):.2f}) |"
    )


def measure(store: str, sizes: tuple[int, ...], repeats: int, seed: int, out: Path) -> bool:
    workdir = make_workdir()
    tag = uuid.uuid4().hex[:10]
    direct = SwiftDirect(f"bench-{tag}") if store == "swift" else S3Direct(f"bench-{tag}")
    glance = Glance(workdir, store_options=direct.store_options()).start()
    floor = None
    rng = random.Random(seed)
    rows, met = [], True
    idle_kib = api_peak_kib(glance)
    try:
        workers = glance.workers["glance-api"]
        floor = BareSendfile(workdir, workdir, workers, direct.floor_args).start()
        for size in sizes:
            path = workdir / f"image-{size}MiB.bin"
            ceilings.make_image_file(path, size * MIB)
            speeds: dict[str, list[float]] = collections.defaultdict(list)
            ratios: dict[str, list[float]] = collections.defaultdict(list)
            for r in range(repeats):
                got = one_repeat(glance, direct, floor, path, size, r, rng)
                for key, value in got.items():
                    speeds[key].append(value)
                for key in got.keys() - {"direct_up", "direct_down"}:
                    ratios[key].append(got[key] / got["direct_" + key.split("_")[1]])
                shown = ", ".join(
                    f"{key} {ratios[key][-1]:.2f}" for key in sorted(got.keys() & ratios.keys())
                )
                print(f"{size} MiB repeat {r + 1}: {shown}", flush=True)
            path.unlink()
            for short, kind in (("up", "upload"), ("down", "download")):
                ok = size < 256 or median(ratios["api_" + short]) >= TARGET
                met &= ok
                rows.append(
                    ratio_row(
                        f"{kind} {size} MiB",
                        speeds["api_" + short],
                        speeds["direct_" + short],
                        ratios["api_" + short],
                    )
                    + f" {'met' if ok else 'MISSED'} |"
                )
                if ratios["floor_" + short]:
                    rows.append(
                        ratio_row(
                            f"floor: {kind} {size} MiB, {direct.floor[short]}",
                            speeds["floor_" + short],
                            speeds["direct_" + short],
                            ratios["floor_" + short],
                        )
                        + " — |"
                    )
        growth = (api_peak_kib(glance) - idle_kib) / 1024
    finally:
        if floor:
            floor.stop()
        glance.stop()
        direct.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    report = [
        f"# glance-lite store bench: {store}, {now:%Y-%m-%d %H:%M} UTC",
        "",
        f"Through glance-api (curl, Content-Length) against {direct.name} directly, same "
        f"server, random order per repeat (seed {seed}); {repeats} repeats; MiB/s medians; "
        f"target per repeat ratio >= {TARGET} for 256 MiB and more.{direct.setup}",
        "",
        f"| transfer | glance-api (or floor) MiB/s | {direct.name} MiB/s | ratio median (range) "
        "| target |",
        "| --- | --- | --- | --- | --- |",
        *rows,
        "",
        f"glance-api peak RSS over its idle, largest worker: {growth:.1f} MiB",
    ]
    (out / "report.md").write_text("\n".join(report) + "\n")
    print("\n".join(report))
    return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.stores", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--store", choices=("swift", "s3"), required=True)
    parser.add_argument("--sizes", default="256,1024", help="MiB, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=random.randrange(1 << 30))
    args = parser.parse_args(argv)
    needed = "GLANCE_LITE_TEST_SWIFT_AUTH" if args.store == "swift" else "GLANCE_LITE_TEST_S3_URL"
    if needed not in os.environ:
        print(f"{needed} is not set: start .ci/services/start-{args.store}.sh", file=sys.stderr)
        return 2
    sizes = tuple(int(x) for x in args.sizes.split(","))
    out = RESULTS / f"{datetime.date.today()}-store-{args.store}"
    measure(args.store, sizes, args.repeats, args.seed, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
