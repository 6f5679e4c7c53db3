"""glance-manage: create, upgrade and purge the image database (`db ...` / legacy `db_...`)."""

import os
import sys
import time
from collections.abc import Callable

import sqlalchemy as sa
from alembic.util import CommandError
from oslo_config import cfg

from glance_lite import config, exceptions, log, opts
from glance_lite.db import api, errors, migration, session

SERVICE = "glance-manage"
CATEGORIES = ("db",)
NOT_UNDER_CONTROL = (
    "Database is either not under migration control or under legacy migration control, "
    'please run "glance-manage db sync" to place the database under alembic migration '
    "control."
)


def default_config_files() -> list[str]:
    """Glance's search: glance-registry.conf, glance-api.conf, then glance-manage.conf."""
    files: list[str] = []
    for prog in ("glance-registry", "glance-api", "glance-manage"):
        files += cfg.find_config_files(project=config.PROJECT, prog=prog)
    return files


# --- actions -------------------------------------------------------------------------------


def db_version(conf: cfg.ConfigOpts, engine: sa.Engine) -> None:
    heads = migration.current_heads(engine)
    print("\n".join(heads) if heads else NOT_UNDER_CONTROL)


def db_upgrade(conf: cfg.ConfigOpts, engine: sa.Engine, version: str | None = None) -> None:
    target = version or "heads"
    _adopt(engine)
    migration.upgrade(engine, target, conf.migrations_dir)
    revs = ", ".join(migration.current_heads(engine))
    if target == "heads":
        print(f"Upgraded database, current revision(s): {revs}")
    else:
        print(f"Upgraded database to: {target}, current revision(s): {revs}")


def db_version_control(conf: cfg.ConfigOpts, engine: sa.Engine, version: str | None = None) -> None:
    version = version or migration.BASELINE
    migration.stamp(engine, version, conf.migrations_dir)
    print(f"Placed database under migration control at revision: {version}")


def db_sync(conf: cfg.ConfigOpts, engine: sa.Engine, version: str | None = None) -> None:
    if version is None and migration.is_current(engine, conf.migrations_dir):
        print("Database is up to date. No migrations needed.")
        return
    try:
        _adopt(engine)
        migration.upgrade(engine, version or "heads", conf.migrations_dir)
    except (exceptions.GlanceLiteError, CommandError, sa.exc.SQLAlchemyError) as err:
        sys.exit(f"Failed to sync database: ERROR: {_message(err, engine)}")
    print("Database is synced successfully.")


def db_purge(
    conf: cfg.ConfigOpts, engine: sa.Engine, age_in_days: str = "30", max_rows: str = "100"
) -> None:
    age = _int_arg("age_in_days", age_in_days)
    rows = _int_arg("max_rows", max_rows)
    if age < 0:
        sys.exit("Must supply a non-negative value for age.")
    if age >= int(time.time()) / 86400:
        sys.exit("Maximal age is count of days since epoch.")
    if rows < 1:
        sys.exit("Minimal rows limit is 1.")
    api.Database(engine).purge_deleted_rows(age, rows)


def db_rebuild_listings(conf: cfg.ConfigOpts, engine: sa.Engine) -> None:
    """Render every image's stored listing entry again (after another program, such as
    Glance itself, wrote image rows without them)."""
    if not migration.is_current(engine, conf.migrations_dir):
        sys.exit('The database is not up to date: run "glance-manage db sync" first.')
    count = api.Database(engine).rebuild_listing_documents()
    print(f"Rebuilt the listing entries of {count} image(s).")


def _int_arg(name: str, value: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        sys.exit(f"Invalid int value for {name}: {value}")


def _adopt(engine: sa.Engine) -> None:
    revisions = migration.adopt_glance_database(engine)
    if revisions:
        print(
            f"Found a Glance database at revision(s) {', '.join(revisions)}; placed it "
            f"under glance-lite migration control at revision {migration.BASELINE}."
        )


def _message(err: Exception, engine: sa.Engine) -> str:
    translated = errors.translate_error(err, engine.url.password)
    return str(translated or err)


# --- command line --------------------------------------------------------------------------

# action name -> (function, takes --version)
ACTIONS: dict[str, tuple[Callable, bool]] = {
    "version": (db_version, False),
    "upgrade": (db_upgrade, True),
    "version_control": (db_version_control, True),
    "sync": (db_sync, True),
    "purge": (db_purge, False),
    "rebuild_listings": (db_rebuild_listings, False),
}


def add_command_parsers(subparsers) -> None:
    db = subparsers.add_parser("db", help="Manage the image database.")
    actions = db.add_subparsers(dest="action", metavar="<action>")
    actions.required = True
    for name, (action_fn, versioned) in ACTIONS.items():
        parser = actions.add_parser(name, help=action_fn.__doc__)
        if versioned:
            parser.add_argument("--version", dest="action_version", metavar="<version>")
        parser.set_defaults(action_fn=action_fn)
    purge = actions.choices["purge"]
    purge.add_argument("--age_in_days", default="30", metavar="<days>")
    purge.add_argument("--max_rows", default="100", metavar="<rows>")
    for name, (action_fn, versioned) in ACTIONS.items():
        if name in ("purge", "rebuild_listings"):  # no legacy db_ spelling in Glance
            continue
        legacy = subparsers.add_parser(f"db_{name}")
        if versioned:
            legacy.add_argument("action_version", nargs="?", metavar="<version>")
        legacy.set_defaults(action_fn=action_fn)


def register_opts(conf: cfg.ConfigOpts) -> None:
    # Logging options on the command line too (--debug, --log-file), as oslo.log does.
    conf.register_cli_opts(opts.logging_opts)
    opts.register_manage_opts(conf)
    conf.register_cli_opt(
        cfg.SubCommandOpt("command", title="Commands", handler=add_command_parsers)
    )


def action_kwargs(conf: cfg.ConfigOpts) -> dict:
    command = conf.command
    kwargs = {}
    if getattr(command, "action_version", None):
        kwargs["version"] = command.action_version
    if command.action_fn is db_purge:
        kwargs.update(age_in_days=command.age_in_days, max_rows=command.max_rows)
    return kwargs


def usage() -> None:
    print(f"{os.path.basename(sys.argv[0]) or SERVICE} category action [<args>]")
    print("Available categories:")
    for category in CATEGORIES:
        print(f"\t{category}")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        usage()
        sys.exit(2)
    try:
        conf = config.load(SERVICE, register_opts, argv, default_config_files())
    except cfg.Error as err:
        sys.exit(f"ERROR: {err}")
    log.setup(conf, SERVICE)
    try:
        engine = session.create_engine(
            conf.database.connection, **session.pool_options(conf.database)
        )
    except exceptions.GlanceLiteError as err:
        sys.exit(f"ERROR: {err}")
    try:
        conf.command.action_fn(conf, engine, **action_kwargs(conf))
    except (exceptions.GlanceLiteError, CommandError, sa.exc.SQLAlchemyError) as err:
        sys.exit(f"ERROR: {_message(err, engine)}")
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()
