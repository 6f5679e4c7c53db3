"""The guard on the addresses external sources may be fetched from."""

import ipaddress

import pytest
from oslo_config import cfg

from glance_lite import exceptions, opts
from glance_lite.store.addresses import (
    AddressGuard,
    DeniedAddress,
    UnresolvableHost,
    guard_from_conf,
    parse_networks,
)


def make_guard(**overrides) -> AddressGuard:
    conf = cfg.ConfigOpts()
    opts.register_http_store_opts(conf)
    conf(args=[], default_config_files=[])
    for name, value in overrides.items():
        conf.set_override(name, value)
    return guard_from_conf(conf)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.1.2.3",
        "169.254.169.254",
        "10.1.2.3",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "::",
        "fe80::1",
        "fd00::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
    ],
)
def test_the_default_guard_denies_local_and_private_addresses(address):
    assert not make_guard().allows(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "172.32.0.1", "2001:4860:4860::8888"])
def test_the_default_guard_allows_public_addresses(address):
    assert make_guard().allows(ipaddress.ip_address(address))


def test_allowed_networks_win_over_denied_ones():
    guard = make_guard(external_source_allowed_networks=["127.0.0.0/8"])
    assert guard.allows(ipaddress.ip_address("127.0.0.1"))
    assert guard.allows(ipaddress.ip_address("::ffff:127.0.0.1"))
    assert not guard.allows(ipaddress.ip_address("169.254.169.254"))


def test_a_name_is_refused_for_any_address_it_resolves_to():
    with pytest.raises(DeniedAddress, match=r"localhost resolves to 127\.0\.0\.1") as caught:
        make_guard().resolve("localhost", 80)
    assert caught.value.status == 400


def test_resolving_gives_the_checked_addresses():
    guard = make_guard(external_source_allowed_networks=["127.0.0.0/8"])
    assert {info[4][0] for info in guard.resolve("127.0.0.1", 80)} == {"127.0.0.1"}
    with pytest.raises(DeniedAddress):
        guard.resolve("[::1]", 80)


def test_a_name_that_does_not_resolve_is_a_400_naming_it():
    with pytest.raises(UnresolvableHost, match=r"no-such-host\.invalid") as caught:
        make_guard().resolve("no-such-host.invalid", 80)
    assert caught.value.status == 400


def test_a_network_that_is_not_a_cidr_is_a_config_error_naming_the_option():
    with pytest.raises(exceptions.ConfigError, match="external_source_allowed_networks"):
        make_guard(external_source_allowed_networks=["10.0.0.0/33"])
    with pytest.raises(exceptions.ConfigError, match="external_source_denied_networks"):
        parse_networks(["nonsense"], "external_source_denied_networks")
