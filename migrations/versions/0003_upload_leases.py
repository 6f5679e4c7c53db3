"""Upload leases: the image_leases table and an index on images.status.

glance-lite's own additions to Glance's schema (docs/differences.md). An api node that
sets an image `saving` records a lease on it (who uploads, until when), renews it while
the bytes stream, and the lease goes as the image leaves `saving`; images whose lease
expired are killed by a sweep (db/leases.py). The index on images.status lets that
sweep find the `saving` images (with or without a lease) without reading every row.

Nothing is backfilled: an image left `saving` without a lease (by an older version, or
by Glance) counts as expired once the sweeping node's lease duration has passed since
its updated_at.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLE = "image_leases"
STATUS_INDEX = "ix_images_status"
TABLE_ARGS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table("images"):
        return  # stamped at 0001 without the tables (db version_control): nothing to add to
    if STATUS_INDEX not in {index["name"] for index in inspector.get_indexes("images")}:
        op.create_index(STATUS_INDEX, "images", ["status"])
    if not inspector.has_table(TABLE):
        op.create_table(
            TABLE,
            sa.Column("image_id", sa.String(36), primary_key=True),
            sa.Column("holder", sa.String(255), nullable=False),
            sa.Column("expires_at", sa.DateTime(), nullable=False),
            sa.Column("partial_location", sa.Text(), nullable=True),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.Column("updated_at", sa.DateTime(), nullable=False),
            **TABLE_ARGS,
        )


def downgrade() -> None:
    op.drop_table(TABLE)
    op.drop_index(STATUS_INDEX, table_name="images")
