"""The s3 store's multipart upload with several parts in flight at once, against a real
S3 API (Swift's s3api). The parts are sent on OS threads here (the servers use green
threads), each held back a little so that they really overlap; the offload counts them.
"""

import concurrent.futures
import hashlib
import threading
import time

import pytest

from glance_lite import offload
from glance_lite.store.base import BackendUnavailable
from glance_lite.store.s3 import MIN_PART, S3Store
from tests.functional.stores.conftest import bucket_keys, bucket_uploads
from tests.unit.store.test_contract import IMAGE_ID, ClientGone, pattern, read_all, split

pytestmark = pytest.mark.functional

IN_FLIGHT = 3


class Job:
    def __init__(self, future: concurrent.futures.Future):
        self._future = future

    def wait(self):
        return self._future.result()


class Threads(offload.Direct):
    """`spawn` on a pool of OS threads; counts the jobs not yet finished (`running`),
    the most at once (`peak`) and all of them (`spawned`). `fail_part`, if set, is a
    part number whose job fails once the first IN_FLIGHT parts are all on their way."""

    def __init__(self, fail_part: int | None = None):
        self.pool = concurrent.futures.ThreadPoolExecutor(8)
        self.lock = threading.Lock()
        self.running = self.peak = self.spawned = 0
        self.fail_part = fail_part
        self.all_started = threading.Barrier(IN_FLIGHT)

    def spawn(self, fn, *args) -> Job:
        with self.lock:
            self.running += 1
            self.spawned += 1
            self.peak = max(self.peak, self.running)
        return Job(self.pool.submit(self._run, fn, *args))

    def _run(self, fn, number, body):
        try:
            if self.fail_part and number <= IN_FLIGHT:
                self.all_started.wait(timeout=10)
            if number == self.fail_part:
                raise BackendUnavailable(f"S3 failed part {number}")
            time.sleep(0.5)  # still on its way when an earlier part fails
            return fn(number, body)
        finally:
            with self.lock:
                self.running -= 1


def s3_store(s3_endpoint, bucket, threads: Threads) -> S3Store:
    url, key, secret = s3_endpoint
    return S3Store(
        url,
        key,
        secret,
        bucket,
        create_bucket=True,
        addressing="path",
        large_object_size=1,
        chunk_size=MIN_PART,
        thread_pools=IN_FLIGHT,
        offload=threads,
    )


def test_parts_go_several_at_once_never_more_than_the_option_and_arrive_in_order(
    s3_endpoint, s3, bucket
):
    threads = Threads()
    store = s3_store(s3_endpoint, bucket, threads)
    data = pattern(7 * MIN_PART + 12345, seed=3)
    result = store.add(IMAGE_ID, split(data, [65536 + 7] * (len(data) // 65543)), None)
    assert (result.size, result.checksum) == (len(data), hashlib.md5(data).hexdigest())
    assert (threads.spawned, threads.peak) == (8, IN_FLIGHT)
    assert read_all(store, result.location) == data
    assert bucket_uploads(s3, bucket) == []


def test_a_part_failing_while_others_are_in_flight_aborts_once_they_are_done(
    s3_endpoint, s3, bucket
):
    threads = Threads(fail_part=1)
    store = s3_store(s3_endpoint, bucket, threads)
    data = pattern(6 * MIN_PART, seed=4)
    with pytest.raises(BackendUnavailable, match="S3 failed part 1"):
        store.add(IMAGE_ID, split(data, [MIN_PART] * 6), None)
    assert threads.running == 0  # parts 2 and 3 were waited for before the abort
    assert threads.peak == IN_FLIGHT
    assert bucket_keys(s3, bucket) == []
    assert bucket_uploads(s3, bucket) == []


def test_a_client_gone_with_parts_in_flight_leaves_no_part(s3_endpoint, s3, bucket):
    threads = Threads()
    store = s3_store(s3_endpoint, bucket, threads)
    failure = ClientGone("client went away")

    def chunks():
        yield from split(pattern(4 * MIN_PART, seed=5), [MIN_PART] * 3)
        raise failure

    with pytest.raises(ClientGone) as caught:
        store.add(IMAGE_ID, chunks(), None)
    assert caught.value is failure
    assert (threads.running, threads.spawned) == (0, 4)
    assert bucket_keys(s3, bucket) == []
    assert bucket_uploads(s3, bucket) == []
    assert store.add(IMAGE_ID, iter([b"again"]), None).size == 5
