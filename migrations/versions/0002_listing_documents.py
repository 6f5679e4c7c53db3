"""Listing documents: images.listing_doc, the default listing order index, and a backfill.

glance-lite's own additions to Glance's schema (docs/differences.md). listing_doc holds
each image's entry of a detail listing without locations as JSON text
(db/documents.py), so that listing reads text only; NULL means "render it from the
row". The index on (deleted, created_at, id) serves the default order of every listing
of live images without a sort.

The documents are rendered with the running code's listing_json (they must be
byte-equal to what the registry writes); the rows are read through this revision's own
snapshot of their columns, so later revisions of the models cannot break it. Running it
again adds nothing twice; `glance-manage db rebuild_listings` is the way to render every
document anew.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from glance_lite.db.documents import listing_json

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

INDEX = "ix_images_deleted_created_at_id"
BATCH = 500

_IMAGE_COLUMNS = (
    sa.column("id", sa.String(36)),
    sa.column("name", sa.String(255)),
    sa.column("disk_format", sa.String(20)),
    sa.column("container_format", sa.String(20)),
    sa.column("size", sa.BigInteger()),
    sa.column("virtual_size", sa.BigInteger()),
    sa.column("status", sa.String(30)),
    sa.column("visibility", sa.String(20)),
    sa.column("checksum", sa.String(32)),
    sa.column("min_disk", sa.Integer()),
    sa.column("min_ram", sa.Integer()),
    sa.column("owner", sa.String(255)),
    sa.column("protected", sa.Boolean()),
    sa.column("created_at", sa.DateTime()),
    sa.column("updated_at", sa.DateTime()),
    sa.column("deleted_at", sa.DateTime()),
    sa.column("deleted", sa.Boolean()),
)
images = sa.table("images", *_IMAGE_COLUMNS, sa.column("listing_doc", sa.Text()))
props = sa.table(
    "image_properties",
    sa.column("id", sa.Integer()),
    sa.column("image_id", sa.String(36)),
    sa.column("name", sa.String(255)),
    sa.column("value", sa.Text()),
    sa.column("deleted", sa.Boolean()),
)


def _long_text() -> sa.types.TypeEngine:
    return sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table("images"):
        return  # stamped at 0001 without the tables (db version_control): nothing to add to
    if "listing_doc" not in {column["name"] for column in inspector.get_columns("images")}:
        op.add_column("images", sa.Column("listing_doc", _long_text(), nullable=True))
    if INDEX not in {index["name"] for index in inspector.get_indexes("images")}:
        op.create_index(INDEX, "images", ["deleted", "created_at", "id"])
    backfill(op.get_bind())


def downgrade() -> None:
    op.drop_index(INDEX, table_name="images")
    op.drop_column("images", "listing_doc")


def backfill(conn: sa.Connection) -> int:
    """Render the listing document of every image, BATCH images at a time."""
    done, last = 0, None
    while True:
        stmt = sa.select(*_IMAGE_COLUMNS).order_by(images.c.id).limit(BATCH)
        if last is not None:
            stmt = stmt.where(images.c.id > last)
        rows = conn.execute(stmt).mappings().all()
        if not rows:
            return done
        documents = _documents(conn, rows)
        conn.execute(
            images.update()
            .where(images.c.id == sa.bindparam("b_id"))
            .values(listing_doc=sa.bindparam("b_doc")),
            [{"b_id": image_id, "b_doc": doc} for image_id, doc in documents.items()],
        )
        done += len(rows)
        last = rows[-1]["id"]


def _documents(conn: sa.Connection, rows) -> dict[str, str]:
    properties: dict[str, dict] = {row["id"]: {} for row in rows}
    # No `deleted` test in SQL: SQLite would walk its `deleted` index instead of image_id's.
    found = conn.execute(
        sa.select(props.c.image_id, props.c.name, props.c.value, props.c.deleted)
        .where(props.c.image_id.in_(list(properties)))
        .order_by(props.c.id)
    )
    for image_id, name, value, deleted in found:
        if not deleted and image_id in properties:
            properties[image_id][name] = value
    documents = {}
    for row in rows:
        image = dict(row)
        image["is_public"] = image.pop("visibility") == "public"
        image["properties"] = properties[row["id"]]
        documents[row["id"]] = listing_json(image)
    return documents
