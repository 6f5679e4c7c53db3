"""glance-api and glance-scrubber with `default_store = s3`, against a real S3 API
(Swift's s3api): the real processes, over HTTP, with the objects checked in S3 itself."""

import hashlib
import subprocess

import pytest
import requests

from tests.functional.servers import script, wait_for, write_conf
from tests.functional.stores.conftest import bucket_keys, bucket_uploads
from tests.functional.test_api_memory import (
    GROWTH_LIMIT,
    PEAKS_APART,
    reset_peak,
    status_bytes,
)
from tests.unit.store.test_contract import pattern

pytestmark = pytest.mark.functional

MiB = 1024 * 1024
LARGE = 6 * MiB  # two parts of 5 MiB


def s3_options(endpoint, bucket: str, **overrides) -> dict:
    url, key, secret = endpoint
    return {
        "stores": "file, s3",
        "default_store": "s3",
        "s3_store_host": url,
        "s3_store_access_key": key,
        "s3_store_secret_key": secret,
        "s3_store_bucket": bucket,
        "s3_store_create_bucket_on_put": "true",
        "s3_store_bucket_url_format": "path",
        "s3_store_large_object_size": 1,
        "s3_store_large_object_chunk_size": 5,
        "s3_store_thread_pools": 2,
        **overrides,
    }


def test_an_image_goes_to_s3_comes_back_and_is_scrubbed_after_a_delayed_delete(
    deploy, s3_endpoint, s3, bucket, tmp_path
):
    api = deploy("s3-delayed", delayed_delete="true", store_options=s3_options(s3_endpoint, bucket))
    data = pattern(LARGE, seed=9)
    image = api.upload(data, name="s3-large")
    image_id = image["id"]
    assert (image["size"], image["checksum"]) == (LARGE, hashlib.md5(data).hexdigest())
    assert bucket_keys(s3, bucket) == [image_id]
    assert bucket_uploads(s3, bucket) == []
    meta = api.meta(image_id)
    assert (meta["x-image-meta-status"], meta["x-image-meta-size"]) == ("active", str(LARGE))
    assert api.get(f"/images/{image_id}").content == data
    assert api.delete(f"/images/{image_id}").status_code == 200
    registry = f"{api.deployment.registry.url}/images/{image_id}"
    assert requests.get(registry, timeout=10).json()["image"]["status"] == "pending_delete"
    assert bucket_keys(s3, bucket) == [image_id]  # kept for the scrubber
    conf = write_conf(
        tmp_path / "glance-scrubber.conf",
        {
            "DEFAULT": {
                "registry_host": "127.0.0.1",
                "registry_port": api.deployment.registry.port,
            },
            "glance_store": s3_options(s3_endpoint, bucket),
        },
    )
    done = subprocess.run(
        [script("glance-scrubber"), "--config-file", str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert bucket_keys(s3, bucket) == []
    assert requests.get(registry, timeout=10).json()["image"]["status"] == "deleted"


def test_a_small_image_is_one_put_and_delete_removes_it(deploy, s3_endpoint, s3, bucket):
    api = deploy("s3-api", store_options=s3_options(s3_endpoint, bucket))
    image_id = api.upload(b"small image", name="s3-small")["id"]
    assert api.get(f"/images/{image_id}").content == b"small image"
    assert api.delete(f"/images/{image_id}").status_code == 200
    assert bucket_keys(s3, bucket) == []


def test_a_wrong_secret_is_a_503_at_upload_and_a_warning_at_start(deploy, s3_endpoint, bucket):
    options = s3_options(s3_endpoint, bucket, s3_store_secret_key="wrong-secret")
    api = deploy("s3-wrong-secret", store_options=options)
    assert "refused the access key" in api.api_log()
    resp = api.create(b"data", name="s3-refused", disk_format="raw", container_format="bare")
    assert resp.status_code == 503
    assert f"S3 at {s3_endpoint[0]} refused the access key {s3_endpoint[1]}" in resp.text
    assert "wrong-secret" not in resp.text and "wrong-secret" not in api.api_log()


def test_parts_in_flight_come_back_in_order_and_a_client_gone_leaves_no_part(
    deploy, s3_endpoint, s3, bucket
):
    api = deploy("s3-parts", store_options=s3_options(s3_endpoint, bucket))
    data = pattern(4 * 5 * MiB + 12345, seed=11)  # five parts, two at a time
    image = api.upload(data, name="s3-parts")
    assert (image["size"], image["checksum"]) == (len(data), hashlib.md5(data).hexdigest())
    assert api.get(f"/images/{image['id']}").content == data
    sock = api.connect()
    sock.sendall(
        b"POST /v1/images HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
        b"x-image-meta-name: s3-cut\r\nx-image-meta-disk-format: raw\r\n"
        b"x-image-meta-container-format: bare\r\nContent-Length: 41943040\r\n\r\n"
        + pattern(3 * 5 * MiB + 1, seed=12)
    )
    # an upload under way with parts in S3 before the client goes
    wait_for(lambda: [k for k, _ in bucket_uploads(s3, bucket) if k != image["id"]])
    sock.close()
    since = {"name": "s3-cut", "is_public": "none", "changes-since": "2000-01-01T00:00:00"}
    wait_for(
        lambda: [
            i
            for i in api.get("/images/detail", params=since).json()["images"]
            if i["status"] == "killed"
        ]
    )
    wait_for(lambda: bucket_uploads(s3, bucket) == [])
    assert bucket_keys(s3, bucket) == [image["id"]]


def test_memory_stays_within_the_parts_in_flight_whatever_the_size(deploy, s3_endpoint, bucket):
    api = deploy("s3-memory", store_options=s3_options(s3_endpoint, bucket))
    api.upload(pattern(MiB), name="warm-up")  # every code path once
    pid = api.api_pid
    idle = status_bytes(pid, "VmRSS")
    peaks = {}
    for size in (30 * MiB, 150 * MiB):  # chunked: multipart, parts of 5 MiB, 2 in flight
        reset_peak(pid)
        piece = pattern(MiB, seed=size % 251)
        image = api.upload((piece for _ in range(size // MiB)), name=f"s3-{size}")
        assert image["size"] == size
        peaks[size] = status_bytes(pid, "VmHWM")
    small, large = peaks[30 * MiB], peaks[150 * MiB]
    summary = f"idle {idle >> 10} KiB, 30 MiB peak {small >> 10} KiB, 150 MiB {large >> 10}"
    assert large - idle < (2 + 1) * 5 * MiB + GROWTH_LIMIT, summary
    assert abs(large - small) < PEAKS_APART, summary


def test_a_part_s3_refuses_midway_is_a_503_a_killed_image_and_no_part_left(
    deploy, s3_endpoint, s3, bucket
):
    api = deploy("s3-refused-part", store_options=s3_options(s3_endpoint, bucket))
    api.upload(b"the bucket exists now", name="s3-first")
    keys = bucket_keys(s3, bucket)

    def body():
        for i in range(40):  # 40 MiB: eight parts, two at a time
            if i == 16:  # a third party ends the upload: S3 refuses the parts after it
                wait_for(lambda: bucket_uploads(s3, bucket))
                for key, upload_id in bucket_uploads(s3, bucket):
                    s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            yield pattern(MiB, seed=i)

    resp = api.create(body(), name="s3-refused", disk_format="raw", container_format="bare")
    assert resp.status_code == 503, resp.text
    assert f"S3 at {s3_endpoint[0]} failed: NoSuchUpload" in resp.text
    since = {"name": "s3-refused", "is_public": "none", "changes-since": "2000-01-01T00:00:00"}
    images = api.get("/images/detail", params=since).json()["images"]
    assert [i["status"] for i in images] == ["killed"]
    assert bucket_uploads(s3, bucket) == []
    assert bucket_keys(s3, bucket) == keys
