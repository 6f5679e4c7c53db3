"""The http store's configuration and what it shows of a location (its reads are
tested against a real web server: tests/functional/test_store_http.py)."""

import pytest
from oslo_config import cfg

from glance_lite import opts, store
from glance_lite.store.base import StoreAddDisabled
from glance_lite.store.http import HttpStore


def make_conf(tmp_path, **overrides) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    opts.register_store_opts(conf)
    opts.register_http_store_opts(conf)
    conf(args=[], default_config_files=[])
    conf.set_override("filesystem_store_datadir", str(tmp_path), group="glance_store")
    for name, value in overrides.items():
        conf.set_override(name, value, group="glance_store")
    return conf


def http_driver(conf) -> HttpStore:
    driver = store.from_conf(conf).for_scheme("http")
    assert isinstance(driver, HttpStore)
    return driver


def test_glances_names_of_the_http_store_make_one_driver_for_http_and_https(tmp_path):
    conf = make_conf(tmp_path, stores=["file", "http", "glance.store.http.Store"])
    stores = store.from_conf(conf)
    assert stores.for_scheme("https") is stores.for_scheme("http")
    assert stores.schemes == {"file", "filesystem", "http", "https"}


def test_https_is_not_verified_by_default_as_in_glance(tmp_path):
    assert http_driver(make_conf(tmp_path)).session.verify is False


def test_https_insecure_false_verifies_with_the_systems_cas(tmp_path):
    assert http_driver(make_conf(tmp_path, https_insecure=False)).session.verify is True


def test_a_ca_file_is_used_whatever_https_insecure_says(tmp_path):
    conf = make_conf(tmp_path, https_ca_certificates_file="/etc/ca.pem", https_insecure=True)
    assert http_driver(conf).session.verify == "/etc/ca.pem"


def test_proxies_come_from_the_config_only(tmp_path):
    conf = make_conf(tmp_path, http_proxy_information={"http": "10.0.0.1:3128"})
    driver = http_driver(conf)
    assert driver.session.proxies == {"http": "10.0.0.1:3128"}
    assert driver.session.trust_env is False


def test_the_guard_and_timeout_come_from_the_config(tmp_path):
    conf = make_conf(tmp_path, http_store_timeout=2.5)
    conf.set_override("external_source_allowed_networks", ["10.0.0.0/8"])
    driver = http_driver(conf)
    assert driver.timeout == 2.5
    assert [str(n) for n in driver.guard.allowed] == ["10.0.0.0/8"]


@pytest.mark.parametrize(
    "location, shown",
    [
        ("http://example.com/a.img", "http://example.com/a.img"),
        ("https://user:secret@example.com:8443/a.img", "https://***@example.com:8443/a.img"),
        ("https://example.com/a.img?X-Amz-Signature=abc", "https://example.com/a.img?***"),
    ],
)
def test_a_location_is_shown_without_its_credentials(tmp_path, location, shown):
    assert store.from_conf(make_conf(tmp_path)).redact(location) == shown


def test_adding_to_the_http_store_is_refused_with_410_and_reads_nothing(tmp_path):
    def chunks():
        raise AssertionError("read")
        yield b""

    with pytest.raises(StoreAddDisabled) as caught:
        http_driver(make_conf(tmp_path)).add("id", chunks(), None)
    assert caught.value.status == 410
