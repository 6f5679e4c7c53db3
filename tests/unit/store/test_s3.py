"""The s3 store's locations and configuration, without an endpoint (the driver itself
runs against a real S3 API in tests/functional/stores)."""

import pytest

from glance_lite import exceptions
from glance_lite.store import s3
from glance_lite.store.base import BadStoreUri
from glance_lite.store.s3 import S3Location
from tests.unit.store.test_swift import conf_with


def test_a_location_of_glance_with_a_slash_in_the_secret_is_read():
    loc = s3.parse("s3://AKIAEXAMPLE:se/cr+et@s3.example.com/images/71c6-ab")
    assert loc == S3Location(
        "http://s3.example.com", "AKIAEXAMPLE", "se/cr+et", "images", "71c6-ab"
    )
    assert loc.uri() == "s3://AKIAEXAMPLE:se/cr+et@s3.example.com/images/71c6-ab"  # as Glance


def test_an_https_endpoint_with_a_port_and_path_is_s3_https():
    loc = S3Location("https://s3.example.com:8443/prefix", "a:b", "k@y", "bkt", "id")
    assert loc.uri() == "s3+https://a%3Ab:k%40y@s3.example.com:8443/prefix/bkt/id"
    assert s3.parse(loc.uri()) == loc
    assert loc.redacted() == "s3+https://***:***@s3.example.com:8443/prefix/bkt/id"
    assert s3.redact(loc.uri()) == loc.redacted()


@pytest.mark.parametrize(
    "location, why",
    [
        ("s3://host/bucket/id", "Badly formed S3 credentials"),
        ("s3://k:s@bucket/id", "Missing s3 service URL"),
        ("s3://k:s@https://host/bucket/id", "one scheme"),
        ("swift://k:s@host/bucket/id", "not an s3 location"),
    ],
)
def test_a_malformed_location_is_a_bad_uri_that_shows_no_secret(location, why):
    with pytest.raises(BadStoreUri) as caught:
        s3.parse(location)
    assert caught.value.status == 400
    assert why in str(caught.value)
    assert "k:s@" not in str(caught.value)


def test_the_store_names_the_options_it_lacks():
    with pytest.raises(exceptions.ConfigError, match="s3_store_secret_key, s3_store_bucket"):
        s3.from_conf(conf_with(s3_store_host="h", s3_store_access_key="a"))


def test_parts_under_5_mib_are_a_config_error():
    with pytest.raises(exceptions.ConfigError, match="at least 5 MB"):
        s3.S3Store("http://h", "a", "s", "b", chunk_size=4 * s3.MiB)


def test_a_missing_client_library_names_the_extra(monkeypatch):
    monkeypatch.setattr(s3, "boto3", None)
    with pytest.raises(exceptions.ConfigError, match=r"glance-lite\[s3\]"):
        s3.from_conf(conf_with())


@pytest.mark.parametrize(
    "location, open_",
    [
        ("s3://a:s@s3.example.com:8080/bucket/x", True),
        ("s3://a:s@169.254.169.254/bucket/x", False),
        ("s3+https://a:s@s3.example.com:8080/bucket/x", False),
        ("s3://no-credentials/bucket/x", False),
    ],
)
def test_clients_may_name_only_locations_on_the_configured_endpoint(location, open_):
    store = s3.S3Store("s3.example.com:8080", "a", "s", "bucket")
    assert store.open_to_clients(location) is open_
