"""The paste factories: the configuration is read once, one Enforcer per process."""

import pytest

from glance_lite import config, opts
from glance_lite.api import app, policy
from glance_lite.registry.client import client_from_conf


@pytest.fixture
def api_conf(monkeypatch):
    conf = config.load("glance-api", opts.register_api_opts, argv=[])
    monkeypatch.setattr(config, "_current", conf)
    return conf


@pytest.fixture
def fresh_enforcer():
    app.shared_enforcer.clear()
    yield
    app.shared_enforcer.clear()


def test_the_context_filter_and_the_v1_app_share_one_enforcer(
    api_conf, monkeypatch, fresh_enforcer
):
    built = []

    def from_conf(conf):
        built.append(conf)
        return policy.Enforcer(None)

    monkeypatch.setattr(policy, "from_conf", from_conf)
    app.context_filter_factory({})
    app.v1_app_factory({})
    assert built == [api_conf]


def test_another_configuration_gets_its_own_enforcer(fresh_enforcer):
    one = config.load("glance-api", opts.register_api_opts, argv=[])
    two = config.load("glance-api", opts.register_api_opts, argv=[])
    assert app.shared_enforcer(one) is app.shared_enforcer(one)
    assert app.shared_enforcer(one) is not app.shared_enforcer(two)


def test_by_default_a_silent_registry_becomes_an_answer_within_10_seconds(api_conf):
    client = client_from_conf(api_conf)
    assert (client.connect_timeout, client.timeout) == (3.0, 6)
    assert client.connect_timeout + client.timeout < 10


def test_registry_timeouts_of_0_wait_forever(api_conf):
    api_conf.set_override("registry_client_timeout", 0)
    api_conf.set_override("registry_client_connect_timeout", 0)
    client = client_from_conf(api_conf)
    assert (client.connect_timeout, client.timeout) == (None, None)
