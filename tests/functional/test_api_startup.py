"""glance-api start-up refusals, and the routes that are not there yet."""

import subprocess

import pytest
import requests

from tests.functional.servers import api_conf, script

pytestmark = pytest.mark.functional


def start_api(conf):
    return subprocess.run(
        [script("glance-api"), "--config-file", str(conf)],
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize("flavor", ["nonexistent", "keystone+bogus"])
def test_flavors_not_shipped_stop_start_up_naming_the_flavor(tmp_path, flavor):
    result = start_api(api_conf(tmp_path, registry_port=9, flavor=flavor))
    assert result.returncode == 1
    assert flavor in result.stderr
    assert "Traceback" not in result.stderr


def test_the_keystone_flavor_without_credentials_stops_start_up_naming_the_option(tmp_path):
    result = start_api(api_conf(tmp_path, registry_port=9, flavor="keystone"))
    assert result.returncode == 1
    assert "[keystone_authtoken] auth_type is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_property_protection_file_stops_start_up(tmp_path):
    conf = api_conf(tmp_path, registry_port=9, property_protection_file="nope.conf")
    result = start_api(conf)
    assert result.returncode == 1
    assert "property_protection_file nope.conf not found" in result.stderr


def test_an_invalid_storage_quota_stops_start_up(tmp_path):
    result = start_api(api_conf(tmp_path, registry_port=9, user_storage_quota="5 GB"))
    assert result.returncode == 1
    assert "user_storage_quota" in result.stderr


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/cached_images"),
        ("DELETE", "/v1/cached_images"),
        ("GET", "/v1/queued_images"),
        ("PUT", "/v1/queued_images/6b3e8a9e-6f0e-4a6f-9d6c-0d9f6b7a1c2d"),
    ],
)
def test_cache_management_routes_are_absent(client, method, path):
    resp = requests.request(method, client.url + path, timeout=10)
    assert resp.status_code in (404, 405)
    assert resp.status_code != 500
