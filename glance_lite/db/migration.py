"""Alembic, driven from code: our script directory, our version table, one connection.

The version table is `glance_lite_version`, never `alembic_version`: a database taken
over from Glance keeps Glance's own revisions there untouched.
"""

import re
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

import glance_lite.migrations
from glance_lite import exceptions
from glance_lite.db import models, session

VERSION_TABLE = "glance_lite_version"
BASELINE = "0001"
GLANCE_VERSION_TABLE = "alembic_version"

# Glance's own alembic revisions from Queens on (glance/db/sqlalchemy/alembic_migrations/
# versions); every one of them has the tables and columns of our baseline. Releases after
# 2024.1 follow the <year>_<n>_<expand|contract>NN pattern, accepted by GLANCE_LATER.
GLANCE_REVISIONS = frozenset(
    f"{release}_{branch}{n:02d}"
    for release, expands, contracts in (
        ("queens", 1, 1),
        ("rocky", 2, 2),
        ("train", 1, 1),
        ("ussuri", 1, 1),
        ("wallaby", 1, 1),
        ("xena", 1, 1),
        ("yoga", 1, 1),
        ("zed", 1, 1),
        ("2023_1", 1, 1),
        ("2024_1", 1, 1),
    )
    for branch, count in (("expand", expands), ("contract", contracts))
    for n in range(1, count + 1)
)
GLANCE_LATER = re.compile(r"^20\d\d_\d_(expand|contract)\d\d$")


class MigrationError(exceptions.GlanceLiteError):
    """The database cannot be brought under glance-lite's migration control."""


def script_location() -> Path:
    return Path(glance_lite.migrations.__file__).resolve().parent


def alembic_config(connection: sa.Connection | None = None, location: str | None = None) -> Config:
    """An alembic Config without an ini file; env.py reads the connection from it."""
    config = Config()
    config.set_main_option("script_location", location or str(script_location()))
    config.attributes["connection"] = connection
    config.attributes["version_table"] = VERSION_TABLE
    return config


def head(location: str | None = None) -> str:
    return ScriptDirectory.from_config(alembic_config(location=location)).get_current_head()


def revisions(location: str | None = None) -> list[str]:
    script = ScriptDirectory.from_config(alembic_config(location=location))
    return [rev.revision for rev in script.walk_revisions()]


def is_current(engine: sa.Engine, location: str | None = None) -> bool:
    """Whether the database is at our head revision."""
    return head(location) in current_heads(engine)


def current_heads(engine: sa.Engine) -> tuple[str, ...]:
    """Our revisions recorded in the database; () when it is not under our control."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return tuple(context.get_current_heads())


def _run(engine: sa.Engine, location: str | None, action, *args) -> None:
    with session.writer(engine).begin() as conn:
        action(alembic_config(conn, location), *args)


def upgrade(engine: sa.Engine, revision: str = "heads", location: str | None = None) -> None:
    _run(engine, location, command.upgrade, revision)


def downgrade(engine: sa.Engine, revision: str, location: str | None = None) -> None:
    _run(engine, location, command.downgrade, revision)


def stamp(engine: sa.Engine, revision: str, location: str | None = None) -> None:
    _run(engine, location, command.stamp, revision)


def is_glance_revision(revision: str) -> bool:
    """True for a Glance alembic revision from Queens or later."""
    return revision in GLANCE_REVISIONS or GLANCE_LATER.match(revision) is not None


def _glance_revisions(conn: sa.Connection) -> list[str]:
    table = sa.table(GLANCE_VERSION_TABLE, sa.column("version_num"))
    return list(conn.execute(sa.select(table.c.version_num)).scalars())


def missing_schema(inspector: sa.Inspector) -> list[str]:
    """Tables and columns of Glance's schema that we use and the database lacks, e.g.
    'images.owner' (our own additions, models.OWN_COLUMNS, come with our migrations)."""
    tables = set(inspector.get_table_names())
    missing = []
    for table in models.metadata.sorted_tables:
        if table.name in models.OWN_TABLES:
            continue
        if table.name not in tables:
            missing.append(table.name)
            continue
        present = {column["name"] for column in inspector.get_columns(table.name)}
        missing += [
            f"{table.name}.{c.name}"
            for c in table.columns
            if c.name not in present and (table.name, c.name) not in models.OWN_COLUMNS
        ]
    return missing


def adopt_glance_database(engine: sa.Engine) -> list[str]:
    """Take a Glance (Queens or later) database under our control, if that is what it is.

    Returns the Glance revisions found when the database was adopted (our baseline is then
    stamped), [] when it is empty or already ours. Raises MigrationError, changing
    nothing, for any other database that has tables.
    """
    inspector = sa.inspect(engine)
    tables = sorted(inspector.get_table_names())
    if not tables or VERSION_TABLE in tables:
        return []
    revisions = []
    if GLANCE_VERSION_TABLE in tables:
        with engine.connect() as conn:
            revisions = _glance_revisions(conn)
    if not revisions or not all(is_glance_revision(rev) for rev in revisions):
        found = ", ".join(revisions) if revisions else f"no {GLANCE_VERSION_TABLE} revision"
        raise MigrationError(
            f"The database already has tables ({', '.join(tables)}) but no "
            f"{VERSION_TABLE} table, and it is not a Glance database from Queens or later "
            f"({found}). Nothing was changed; use an empty database."
        )
    missing = missing_schema(inspector)
    if missing:
        raise MigrationError(
            f"The Glance database (revision {', '.join(revisions)}) lacks tables or columns "
            f"glance-lite needs: {', '.join(missing)}. Nothing was changed."
        )
    stamp(engine, BASELINE)
    return revisions
