"""glance-api's own Keystone credentials: when they are used, and which token goes where.

The tokens themselves come from a real Keystone in tests/functional/test_keystone_*.py;
here a stand-in hands out a fixed token, to check the header rules alone.
"""

import pytest

from glance_lite import config, exceptions, opts
from glance_lite.context import RequestContext
from glance_lite.registry import credentials
from glance_lite.registry.client import RegistryClient


class FixedToken:
    def __init__(self):
        self.forgotten = 0

    def get(self) -> str:
        return "service-token"

    def forget(self) -> None:
        self.forgotten += 1


@pytest.fixture
def conf():
    return config.load("glance-api", opts.register_api_opts, argv=[])


def test_noauth_without_auth_url_means_no_credentials(conf):
    assert credentials.from_conf(conf, {}) is None


def test_auth_url_means_keystone_and_needs_the_whole_account(conf):
    conf.set_override("auth_url", "http://keystone:5000/v3")
    conf.set_override("admin_user", "glance")
    with pytest.raises(exceptions.ConfigError, match="needs admin_password, admin_tenant_name"):
        credentials.from_conf(conf, {})
    conf.set_override("admin_password", "secret")
    conf.set_override("admin_tenant_name", "service")
    token = credentials.from_conf(conf, {})
    assert (token.auth_url, token.username) == ("http://keystone:5000/v3", "glance")


def test_os_auth_url_in_the_environment_wins(conf):
    for name, value in (("admin_user", "g"), ("admin_password", "p"), ("admin_tenant_name", "s")):
        conf.set_override(name, value)
    token = credentials.from_conf(conf, {"OS_AUTH_URL": "http://other:5000/v3"})
    assert token.auth_url == "http://other:5000/v3"


def test_the_keystone_strategy_needs_an_auth_url(conf):
    conf.set_override("auth_strategy", "keystone")
    with pytest.raises(exceptions.ConfigError, match="needs auth_url"):
        credentials.from_conf(conf, {})


def client(**kw) -> RegistryClient:
    return RegistryClient("http://registry:9191", **kw)


def caller(**kw) -> RequestContext:
    return RequestContext(user_id="u", tenant_id="t", roles=["member"], **kw)


def test_the_callers_token_alone_without_credentials():
    sent = client().headers_for(caller(auth_token="user-token"))
    assert sent["X-Auth-Token"] == "user-token"
    assert "X-Service-Token" not in sent


def test_with_credentials_the_service_token_goes_beside_the_callers():
    sent = client(service_token=FixedToken()).headers_for(caller(auth_token="user-token"))
    assert (sent["X-Auth-Token"], sent["X-Service-Token"]) == ("user-token", "service-token")


def test_use_user_token_false_never_lets_the_service_token_stand_for_a_caller():
    sent = client(service_token=FixedToken(), use_user_token=False).headers_for(
        caller(auth_token="user-token")
    )
    assert (sent["X-Auth-Token"], sent["X-Service-Token"]) == ("user-token", "service-token")


def test_use_user_token_false_without_credentials_sends_no_token():
    sent = client(use_user_token=False).headers_for(caller(auth_token="user-token"))
    assert "X-Auth-Token" not in sent


def test_a_tokenless_admin_uses_the_service_token_an_anonymous_caller_never():
    registry = client(service_token=FixedToken())
    tool = RequestContext(is_admin=True)  # glance-scrubber
    assert registry.headers_for(tool)["X-Auth-Token"] == "service-token"
    anonymous = RequestContext(read_only=True)
    assert "X-Auth-Token" not in registry.headers_for(anonymous)
    assert "X-Service-Token" not in registry.headers_for(anonymous)
