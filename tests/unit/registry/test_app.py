"""The paste app factory builds the registry from the loaded configuration."""

import pytest

from glance_lite import config, context, opts
from glance_lite.registry import app
from tests.unit.registry.conftest import Caller


@pytest.fixture
def registry_conf(monkeypatch, sqlite_database, sqlite_url):
    conf = config.load("glance-registry", opts.register_registry_opts, argv=[])
    conf.set_override("connection", sqlite_url, group="database")
    conf.set_override("limit_param_default", 2)
    conf.set_override("api_limit_max", 3)
    monkeypatch.setattr(config, "_current", conf)
    return conf


def test_the_app_factory_serves_the_configured_database_with_the_configured_limits(
    registry_conf,
):
    admin = Caller(context.UnauthenticatedContext(app.app_factory({}), owner_is_tenant=True))
    for n in range(4):
        admin.create(name=f"i{n}", is_public=True)
    assert len(admin.ids()) == 2
    assert len(admin.ids("limit=100")) == 3
