import os
from pathlib import Path

import pytest
from oslo_config import cfg

from glance_lite import config, opts

ROOT = Path(__file__).resolve().parents[2]


def registry_conf(argv=()):
    return config.load("glance-registry", opts.register_registry_opts, list(argv), [])


def test_registry_defaults_are_glances_except_the_loopback_bind_host():
    conf = registry_conf()
    assert conf.bind_host == "127.0.0.1"
    assert conf.bind_port is None
    assert conf.backlog == 4096
    assert conf.tcp_keepidle == 600
    assert conf.max_header_line == 16384
    assert conf.http_keepalive is True
    assert conf.client_socket_timeout == 900
    assert conf.limit_param_default == 25
    assert conf.api_limit_max == 1000
    assert conf.admin_role == "admin"
    assert conf.owner_is_tenant is True
    assert conf.registry_shared_secret is None
    assert conf.paste_deploy.flavor is None


def test_an_existing_glance_registry_conf_is_read(tmp_path):
    conf_file = tmp_path / "glance-registry.conf"
    conf_file.write_text(
        "[DEFAULT]\nbind_host = 0.0.0.0\nbind_port = 9191\napi_limit_max = 50\n"
        "verbose = True\nregistry_host = 0.0.0.0\n"
        "[database]\nconnection = mysql+pymysql://glance:pw@db/glance\n"
        "[keystone_authtoken]\nauth_uri = http://keystone:5000\n"
        "[paste_deploy]\nflavor = trusted-auth\n"
    )
    conf = registry_conf(["--config-file", str(conf_file)])
    assert conf.api_limit_max == 50
    assert conf.database.connection == "mysql+pymysql://glance:pw@db/glance"
    assert config.pipeline_name(conf, "glance-registry") == "glance-registry-trusted-auth"


def test_paste_file_is_found_next_to_the_last_config_file(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = tmp_path / "a" / "glance-registry.conf"
    last = tmp_path / "b" / "glance-registry.conf"
    first.write_text("")
    last.write_text("")
    (tmp_path / "b" / "glance-registry-paste.ini").write_text("")
    conf = registry_conf(["--config-file", str(first), "--config-file", str(last)])
    assert config.paste_config_path(conf, "glance-registry") == (
        tmp_path / "b" / "glance-registry-paste.ini"
    )


def test_paste_file_falls_back_to_the_shipped_one(tmp_path):
    conf_file = tmp_path / "glance-registry.conf"
    conf_file.write_text("")
    conf = registry_conf(["--config-file", str(conf_file)])
    found = config.paste_config_path(conf, "glance-registry")
    assert found.name == "glance-registry-paste.ini"
    assert found.is_file()


def test_named_paste_file_that_does_not_exist_is_an_error(tmp_path):
    conf_file = tmp_path / "glance-registry.conf"
    conf_file.write_text(f"[paste_deploy]\nconfig_file = {tmp_path}/missing.ini\n")
    conf = registry_conf(["--config-file", str(conf_file)])
    with pytest.raises(cfg.ConfigFilesNotFoundError):
        config.paste_config_path(conf, "glance-registry")


def test_per_process_builds_once_for_the_same_arguments_and_anew_otherwise(monkeypatch):
    built = []
    shared = config.PerProcess(lambda *args: built.append(args) or object())
    one, two = object(), object()
    first = shared(one)
    assert shared(one) is first and built == [(one,)]
    assert shared(two) is not first  # a reload's configuration
    assert shared(one) is not first  # only the latest is kept
    latest = shared(one)
    monkeypatch.setattr(os, "getpid", lambda: -1)  # a child forked after the build
    assert shared(one) is not latest
    assert len(built) == 4
