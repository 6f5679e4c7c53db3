"""The authtoken filter's factory, where no Keystone is needed to tell."""

import configparser
from pathlib import Path

import pytest

from glance_lite import authtoken, exceptions

ETC = Path(__file__).resolve().parents[2] / "etc"


def test_without_keystonemiddleware_the_factory_names_the_extra(monkeypatch):
    monkeypatch.setattr(authtoken, "auth_token", None)
    with pytest.raises(exceptions.ConfigError, match=r"pip install 'glance-lite\[keystone\]'"):
        authtoken.filter_factory({})


@pytest.mark.parametrize(
    ("ini", "pipelines"),
    [
        (
            "glance-api-paste.ini",
            {
                "glance-api-keystone": "authtoken context rootapp",
                "glance-api-keystone+caching": "authtoken context cache rootapp",
                "glance-api-keystone+cachemanagement": (
                    "authtoken context cache cachemanage rootapp"
                ),
            },
        ),
        (
            "glance-registry-paste.ini",
            {"glance-registry-keystone": "authtoken context registryapp"},
        ),
    ],
)
def test_auth_token_comes_right_before_the_context_filter(ini, pipelines):
    paste = configparser.ConfigParser()
    paste.read(ETC / ini)
    for name, tail in pipelines.items():
        assert paste[f"pipeline:{name}"]["pipeline"].endswith(tail)
    assert (
        paste["filter:authtoken"]["paste.filter_factory"] == "glance_lite.authtoken:filter_factory"
    )


def test_the_apis_auth_token_leaves_the_decision_to_the_context_filter():
    paste = configparser.ConfigParser()
    paste.read(ETC / "glance-api-paste.ini")
    assert paste["filter:authtoken"]["delay_auth_decision"] == "true"
