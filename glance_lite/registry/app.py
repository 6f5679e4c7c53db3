"""glance-registry's application: the router over the image and member controllers.

`app_factory` is the paste entry point (`registryapp`); it reads the configuration once.
Tests call `make_app` with a Database of their own.
"""

from glance_lite import config, wsgi
from glance_lite.db.api import Database
from glance_lite.db.session import pool_options
from glance_lite.registry.images import ImagesController
from glance_lite.registry.leases import LeasesController
from glance_lite.registry.members import MembersController
from glance_lite.registry.router import make_router
from glance_lite.registry.usage import UsageController


def make_app(
    *, database: Database, api_limit_max: int, limit_param_default: int, max_json_body: int
) -> wsgi.Router:
    images = ImagesController(
        database,
        api_limit_max=api_limit_max,
        limit_param_default=limit_param_default,
        max_json_body=max_json_body,
    )
    members = MembersController(database, max_json_body=max_json_body)
    leases = LeasesController(database, max_json_body=max_json_body)
    return make_router(images, members, UsageController(database), leases)


def app_factory(global_conf, **local_conf) -> wsgi.Router:
    conf = config.get()
    database = Database.from_url(conf.database.connection, **pool_options(conf.database))
    return make_app(
        database=database,
        api_limit_max=conf.api_limit_max,
        limit_param_default=conf.limit_param_default,
        max_json_body=conf.max_json_body_size,
    )
