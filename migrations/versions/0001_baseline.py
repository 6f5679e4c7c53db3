"""Baseline: Glance's Queens image and task tables.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TABLE_ARGS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


def _soft_delete_columns() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
    ]


def _big_integer() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _child_table(name: str, *columns: sa.schema.SchemaItem) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("image_id", sa.String(36), sa.ForeignKey("images.id"), nullable=False),
        *columns,
        *_soft_delete_columns(),
        **TABLE_ARGS,
    )


def _images() -> None:
    op.create_table(
        "images",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(255)),
        sa.Column("disk_format", sa.String(20)),
        sa.Column("container_format", sa.String(20)),
        sa.Column("size", _big_integer()),
        sa.Column("virtual_size", _big_integer()),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column(
            "visibility",
            sa.Enum("private", "public", "shared", "community", name="image_visibility"),
            nullable=False,
            server_default="shared",
        ),
        sa.Column("checksum", sa.String(32)),
        sa.Column("min_disk", sa.Integer(), nullable=False),
        sa.Column("min_ram", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(255)),
        sa.Column("protected", sa.Boolean(), nullable=False, server_default=sa.false()),
        *_soft_delete_columns(),
        **TABLE_ARGS,
    )
    for index, column in (
        ("checksum_image_idx", "checksum"),
        ("visibility_image_idx", "visibility"),
        ("ix_images_deleted", "deleted"),
        ("owner_image_idx", "owner"),
        ("created_at_image_idx", "created_at"),
        ("updated_at_image_idx", "updated_at"),
    ):
        op.create_index(index, "images", [column])


def _image_children() -> None:
    _child_table(
        "image_properties",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("value", sa.Text()),
        sa.UniqueConstraint("image_id", "name", name="ix_image_properties_image_id_name"),
    )
    op.create_index("ix_image_properties_image_id", "image_properties", ["image_id"])
    op.create_index("ix_image_properties_deleted", "image_properties", ["deleted"])

    _child_table(
        "image_locations",
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("meta_data", sa.Text()),
        sa.Column("status", sa.String(30), nullable=False, server_default="active"),
    )
    op.create_index("ix_image_locations_image_id", "image_locations", ["image_id"])
    op.create_index("ix_image_locations_deleted", "image_locations", ["deleted"])

    _child_table(
        "image_members",
        sa.Column("member", sa.String(255), nullable=False),
        sa.Column("can_share", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="pending"),
        sa.UniqueConstraint(
            "image_id", "member", "deleted_at", name="image_members_image_id_member_deleted_at_key"
        ),
    )
    op.create_index("ix_image_members_deleted", "image_members", ["deleted"])
    op.create_index("ix_image_members_image_id", "image_members", ["image_id"])
    op.create_index("ix_image_members_image_id_member", "image_members", ["image_id", "member"])

    _child_table("image_tags", sa.Column("value", sa.String(255), nullable=False))
    op.create_index("ix_image_tags_image_id", "image_tags", ["image_id"])
    op.create_index("ix_image_tags_image_id_tag_value", "image_tags", ["image_id", "value"])


def _tasks() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("type", sa.String(30), nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        *_soft_delete_columns(),
        **TABLE_ARGS,
    )
    for index, column in (
        ("ix_tasks_type", "type"),
        ("ix_tasks_status", "status"),
        ("ix_tasks_owner", "owner"),
        ("ix_tasks_deleted", "deleted"),
        ("ix_tasks_updated_at", "updated_at"),
    ):
        op.create_index(index, "tasks", [column])
    op.create_table(
        "task_info",
        sa.Column(
            "task_id", sa.String(36), sa.ForeignKey("tasks.id"), primary_key=True, nullable=False
        ),
        sa.Column("input", sa.Text()),
        sa.Column("result", sa.Text()),
        sa.Column("message", sa.Text()),
        **TABLE_ARGS,
    )


def upgrade() -> None:
    _images()
    _image_children()
    _tasks()


def downgrade() -> None:
    for table in (
        "task_info",
        "tasks",
        "image_tags",
        "image_members",
        "image_locations",
        "image_properties",
        "images",
    ):
        op.drop_table(table)
    sa.Enum(name="image_visibility").drop(op.get_bind(), checkfirst=True)
