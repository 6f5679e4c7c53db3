"""A keystone flavor that cannot work stops glance-api or glance-registry at start-up,
saying why (no Keystone needed: nothing gets as far as asking one)."""

import subprocess

import pytest

from tests.functional.keystone import add_section, set_flavor
from tests.functional.servers import api_conf, registry_conf, script

pytestmark = pytest.mark.functional

URL = "http://127.0.0.1:9/v3"


def start(service: str, conf) -> subprocess.CompletedProcess:
    return subprocess.run(
        [script(service), "--config-file", str(conf)], capture_output=True, text=True, timeout=30
    )


def assert_refused(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode == 1, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("authtoken", "message"),
    [
        ({}, "[keystone_authtoken] auth_type is not set"),
        ({"auth_type": "nosuchplugin"}, "auth_type = nosuchplugin: no such keystoneauth plugin"),
        ({"auth_type": "password"}, "[keystone_authtoken] auth_url is not set"),
    ],
)
@pytest.mark.parametrize("service", ["glance-api", "glance-registry"])
def test_an_unusable_keystone_authtoken_section_stops_start_up(
    tmp_path, service, authtoken, message
):
    if service == "glance-api":
        conf = api_conf(tmp_path, registry_port=9, flavor="keystone")
    else:
        conf = set_flavor(registry_conf(tmp_path), "keystone")
    add_section(conf, "keystone_authtoken", authtoken)
    assert_refused(start(service, conf), message)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"auth_strategy": "keystone"}, "auth_strategy = keystone needs auth_url"),
        ({"auth_url": URL, "admin_user": "glance"}, "needs admin_password, admin_tenant_name"),
    ],
)
def test_incomplete_admin_credentials_stop_glance_api(tmp_path, options, message):
    assert_refused(start("glance-api", api_conf(tmp_path, registry_port=9, **options)), message)
