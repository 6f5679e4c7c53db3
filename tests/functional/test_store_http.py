"""The http store against a real web server (nginx): what the store contract asks of a
read-only driver, redirects, the server's errors, https, and the address guard."""

import hashlib
import os
import uuid

import pytest

from glance_lite.store.addresses import AddressGuard, DeniedAddress, parse_networks
from glance_lite.store.base import BadStoreUri, ShortData, StoreAddDisabled, StoreNotFound
from glance_lite.store.http import MAX_REDIRECTS, HttpStore, RemoteError, RemoteUnavailable
from tests.functional.servers import run_script
from tests.functional.webserver import WebServer

DEFAULT_DENIED = ["127.0.0.0/8", "169.254.0.0/16", "10.0.0.0/8", "::1/128"]


def make_store(web: WebServer, *, allowed=("127.0.0.0/8",), **kw) -> HttpStore:
    guard = AddressGuard(
        parse_networks(DEFAULT_DENIED, "denied"), parse_networks(allowed, "allowed")
    )
    kw.setdefault("verify", web.ca_file)
    return HttpStore(guard, **kw)


@pytest.fixture
def store(web) -> HttpStore:
    return make_store(web, timeout=5)


def pattern(n: int) -> bytes:
    return (bytes(range(251)) * (n // 251 + 1))[:n]


def read_all(store: HttpStore, location: str, **kw) -> tuple[bytes, int | None]:
    chunks, length = store.get(location, **kw)
    try:
        return b"".join(chunks), length
    finally:
        chunks.close()


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_size_by_head_and_data_by_get_are_the_served_file(web, store, served, scheme):
    data = pattern(300_000)
    base = web.url if scheme == "http" else web.https_url
    location = base + served(data)
    assert store.get_size(location) == len(data)
    body, length = read_all(store, location)
    assert (length, hashlib.md5(body).hexdigest()) == (len(data), hashlib.md5(data).hexdigest())


@pytest.mark.parametrize("offset", [1, 4095, 299_999])
def test_get_from_an_offset_asks_for_a_range_and_gives_the_rest(web, store, served, offset):
    data = pattern(300_000)
    body, length = read_all(store, web.url + served(data), offset=offset)
    assert body == data[offset:]
    assert length == len(data) - offset


def test_get_with_a_chunk_size_streams_pieces_no_bigger(web, store, served):
    data = pattern(1_000_000)
    chunks, _ = store.get(web.url + served(data), chunk_size=65536)
    sizes = [len(c) for c in chunks]
    assert max(sizes) <= 65536
    assert sum(sizes) == len(data)


# Reads a location in a fresh process (its peak RSS is this read's alone) and reports
# the bytes read and how much the peak grew while reading, in KiB.
READ_IN_A_FRESH_PROCESS = """
import json, resource, sys
from glance_lite.store.addresses import AddressGuard, parse_networks
from glance_lite.store.http import HttpStore
store = HttpStore(AddressGuard((), parse_networks(["127.0.0.0/8"], "allowed")))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
chunks, length = store.get(sys.argv[1])
total = sum(len(chunk) for chunk in chunks)
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps({"total": total, "length": length, "grown_kib": grown}))
"""


def test_a_large_image_streams_in_constant_memory(web):
    name = f"{uuid.uuid4().hex}.img"
    path = web.root / name
    with open(path, "wb") as f:  # 128 MiB, never whole in this process either
        for _ in range(128):
            f.write(os.urandom(1024 * 1024))
    path.chmod(0o644)
    try:
        read = run_script(READ_IN_A_FRESH_PROCESS, web.url + name)
    finally:
        web.remove(name)
    assert read["total"] == read["length"] == 128 * 1024 * 1024
    assert read["grown_kib"] < 16 * 1024, read


@pytest.mark.parametrize("hops", [1, MAX_REDIRECTS - 1])
def test_redirects_are_followed_up_to_glances_bound(web, store, served, hops):
    data = pattern(5000)
    location = web.url + "redirect/" * hops + served(data)
    assert store.get_size(location) == len(data)
    assert read_all(store, location)[0] == data


def test_a_301_is_followed_too(web, store, served):
    data = pattern(5000)
    assert read_all(store, web.url + "moved/" + served(data))[0] == data


def test_one_redirect_too_many_is_a_400(web, store, served):
    location = web.url + "redirect/" * MAX_REDIRECTS + served(b"x")
    with pytest.raises(BadStoreUri, match=f"exceeded {MAX_REDIRECTS} maximum redirects") as err:
        store.get_size(location)
    assert err.value.status == 400


def test_a_redirect_loop_is_a_400(web, store):
    with pytest.raises(BadStoreUri, match="maximum redirects"):
        store.get(web.url + "loop")


def test_a_missing_file_is_not_found(web, store):
    with pytest.raises(StoreNotFound) as err:
        store.get_size(web.url + "no-such-image.img")
    assert err.value.status == 404
    with pytest.raises(StoreNotFound):
        store.get(web.url + "no-such-image.img")


@pytest.mark.parametrize("code", [500, 502, 503])
def test_a_server_error_is_a_502_naming_the_status(web, store, code):
    with pytest.raises(RemoteError, match=f"answered {code}") as err:
        store.get(web.url + f"status/{code}")
    assert err.value.status == 502


def test_a_refusal_of_the_server_is_a_400_naming_the_status(web, store):
    with pytest.raises(BadStoreUri, match="403 status code"):
        store.get_size(web.url + "status/403")


def test_a_server_that_does_not_listen_is_a_503(web):
    store = make_store(web, timeout=5)
    with pytest.raises(RemoteUnavailable) as err:
        store.get_size("http://127.0.0.1:1/a.img")
    assert err.value.status == 503


def test_a_stalled_source_times_out_as_a_503(web, served):
    store = make_store(web, timeout=0.3)
    name = served(pattern(10_000))
    with pytest.raises(RemoteUnavailable):
        read_all(store, web.url + "stall/" + name)


def test_an_untrusted_certificate_is_refused(web, served):
    store = make_store(web, verify=True, timeout=5)
    with pytest.raises(RemoteError, match="TLS"):
        store.get_size(web.https_url + served(b"x"))


def test_without_verification_an_untrusted_certificate_is_accepted(web, served):
    store = make_store(web, verify=False, timeout=5)
    assert store.get_size(web.https_url + served(b"abc")) == 3


def test_data_that_ends_early_is_short_not_complete(web, store, served):
    name = served(pattern(64 * 1024 * 1024))
    chunks, length = store.get(web.url + name, chunk_size=65536)
    received = len(next(chunks))
    # the file shrinks under the open response (same inode): nginx sends less than it said
    os.truncate(web.root / name, 1000)
    with pytest.raises(ShortData):
        for chunk in chunks:
            received += len(chunk)
    assert received < length


def test_adding_is_refused_and_deleting_leaves_the_data(web, store, served):
    name = served(b"keep me")
    with pytest.raises(StoreAddDisabled):
        store.add("some-id", iter([b"data"]), 4)
    store.delete(web.url + name)
    assert read_all(store, web.url + name)[0] == b"keep me"


# --- the address guard -------------------------------------------------------------


def test_a_denied_address_is_refused_before_any_connection(web, served):
    store = make_store(web, allowed=())
    with pytest.raises(DeniedAddress, match=r"127\.0\.0\.1"):
        store.get_size(web.url + served(b"x"))


def test_a_name_resolving_to_a_denied_address_is_refused(web, served):
    store = make_store(web, allowed=())
    location = web.url.replace("127.0.0.1", "localhost") + served(b"x")
    with pytest.raises(DeniedAddress, match=r"localhost resolves to 127\.0\.0\.1"):
        store.get(location)


@pytest.mark.parametrize("target", ["http://169.254.169.254/latest/meta-data/", "http://10.1.1.1/"])
def test_a_redirect_to_a_denied_address_is_refused(web, store, target):
    with pytest.raises(DeniedAddress, match=target.split("/")[2]):
        store.get_size(web.url + "to?url=" + target)


def test_a_redirect_to_another_scheme_is_refused(web, store):
    with pytest.raises(BadStoreUri, match="not http or https"):
        store.get(web.url + "to?url=file:///etc/passwd")


# --- through a proxy ---------------------------------------------------------------


def test_a_configured_proxy_fetches_and_the_guard_still_checks_the_names(web, served):
    name = served(b"via proxy")
    store = make_store(web, timeout=5, proxies={"http": web.proxy_url})
    assert read_all(store, web.url + name)[0] == b"via proxy"
    # the connection is the proxy's: with a proxy that is down, nothing is read
    down = make_store(web, timeout=5, proxies={"http": "http://127.0.0.1:1"})
    with pytest.raises(RemoteUnavailable):
        down.get_size(web.url + name)
    denied = make_store(web, allowed=(), timeout=5, proxies={"http": web.proxy_url})
    with pytest.raises(DeniedAddress, match=r"127\.0\.0\.1"):
        denied.get_size(web.url + name)
    with pytest.raises(DeniedAddress, match=r"169\.254\.169\.254"):
        store.get_size(web.url + "to?url=http://169.254.169.254/latest/")
