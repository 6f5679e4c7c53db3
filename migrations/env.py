"""Alembic environment: runs on the connection glance_lite.db.migration hands over."""

from alembic import context

from glance_lite.db import models

config = context.config
connection = config.attributes.get("connection")
if context.is_offline_mode() or connection is None:
    raise RuntimeError(
        "glance-lite migrations run online only, through glance-manage db sync/upgrade"
    )

context.configure(
    connection=connection,
    target_metadata=models.metadata,
    version_table=config.attributes["version_table"],
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
