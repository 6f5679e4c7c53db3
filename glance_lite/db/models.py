"""The image database schema: Glance's Queens tables, columns, constraints and index names.

The statements of db/ work on the `__table__` of these classes with SQLAlchemy Core; the baseline
migration creates exactly this schema, and a test checks that the two agree.
"""

import datetime
import uuid

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

# MySQL/MariaDB: utf8mb4 so that every character Python accepts can be stored (the
# registry's 4-byte check is Glance's behaviour, kept for the messages), and a binary
# collation so that exact matches and the (image_id, name) unique key are case-sensitive
# as on PostgreSQL and SQLite.
MYSQL_TABLE_ARGS = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}

IMAGE_VISIBILITIES = ("private", "public", "shared", "community")


def utcnow() -> datetime.datetime:
    """Now as a naive UTC datetime, the form every timestamp column holds."""
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def new_uuid() -> str:
    return str(uuid.uuid4())


class Base(DeclarativeBase):
    pass


class SoftDelete:
    """The four bookkeeping columns every Glance table has."""

    created_at: Mapped[datetime.datetime] = mapped_column(
        sa.DateTime, nullable=False, default=utcnow
    )
    updated_at: Mapped[datetime.datetime | None] = mapped_column(
        sa.DateTime, nullable=True, default=utcnow, onupdate=utcnow
    )
    deleted_at: Mapped[datetime.datetime | None] = mapped_column(sa.DateTime, nullable=True)
    deleted: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)


def _big_integer() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def long_text() -> sa.types.TypeEngine:
    """TEXT; LONGTEXT on MySQL, whose TEXT stops at 64 KiB."""
    return sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


class Image(SoftDelete, Base):
    __tablename__ = "images"
    __table_args__ = (
        sa.Index("checksum_image_idx", "checksum"),
        sa.Index("visibility_image_idx", "visibility"),
        sa.Index("ix_images_deleted", "deleted"),
        sa.Index("owner_image_idx", "owner"),
        sa.Index("created_at_image_idx", "created_at"),
        sa.Index("updated_at_image_idx", "updated_at"),
        # glance-lite's own (migration 0002): the default listing order, without a sort.
        sa.Index("ix_images_deleted_created_at_id", "deleted", "created_at", "id"),
        # glance-lite's own (migration 0003): the upload-lease sweep finds `saving` images.
        sa.Index("ix_images_status", "status"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_uuid)
    name: Mapped[str | None] = mapped_column(sa.String(255))
    disk_format: Mapped[str | None] = mapped_column(sa.String(20))
    container_format: Mapped[str | None] = mapped_column(sa.String(20))
    size: Mapped[int | None] = mapped_column(_big_integer())
    virtual_size: Mapped[int | None] = mapped_column(_big_integer())
    status: Mapped[str] = mapped_column(sa.String(30), nullable=False)
    visibility: Mapped[str] = mapped_column(
        sa.Enum(*IMAGE_VISIBILITIES, name="image_visibility"),
        nullable=False,
        server_default="shared",
    )
    checksum: Mapped[str | None] = mapped_column(sa.String(32))
    min_disk: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    min_ram: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    owner: Mapped[str | None] = mapped_column(sa.String(255))
    protected: Mapped[bool] = mapped_column(
        sa.Boolean, nullable=False, default=False, server_default=sa.false()
    )
    # glance-lite's own (migration 0002): the image's entry of a detail listing without
    # locations, as JSON text, written with every change to what that entry shows. NULL
    # (a row some other program wrote) is rendered from the row when listed.
    listing_doc: Mapped[str | None] = mapped_column(long_text(), nullable=True)


class _ImageChild(SoftDelete):
    """A row hanging off an image: integer id and the image_id foreign key."""

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)

    @declared_attr
    def image_id(cls) -> Mapped[str]:
        return mapped_column(sa.String(36), sa.ForeignKey("images.id"), nullable=False)


class ImageProperty(_ImageChild, Base):
    __tablename__ = "image_properties"
    __table_args__ = (
        sa.Index("ix_image_properties_image_id", "image_id"),
        sa.Index("ix_image_properties_deleted", "deleted"),
        sa.UniqueConstraint("image_id", "name", name="ix_image_properties_image_id_name"),
        MYSQL_TABLE_ARGS,
    )

    name: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    value: Mapped[str | None] = mapped_column(sa.Text)


class ImageLocation(_ImageChild, Base):
    __tablename__ = "image_locations"
    __table_args__ = (
        sa.Index("ix_image_locations_image_id", "image_id"),
        sa.Index("ix_image_locations_deleted", "deleted"),
        MYSQL_TABLE_ARGS,
    )

    value: Mapped[str] = mapped_column(sa.Text, nullable=False)
    # A JSON object, encoded by images.py (Glance's JSONEncodedDict is TEXT underneath).
    meta_data: Mapped[str | None] = mapped_column(sa.Text, default="{}")
    status: Mapped[str] = mapped_column(sa.String(30), nullable=False, server_default="active")


class ImageMember(_ImageChild, Base):
    __tablename__ = "image_members"
    __table_args__ = (
        sa.Index("ix_image_members_deleted", "deleted"),
        sa.Index("ix_image_members_image_id", "image_id"),
        sa.Index("ix_image_members_image_id_member", "image_id", "member"),
        sa.UniqueConstraint(
            "image_id",
            "member",
            "deleted_at",
            name="image_members_image_id_member_deleted_at_key",
        ),
        MYSQL_TABLE_ARGS,
    )

    member: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    can_share: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    status: Mapped[str] = mapped_column(
        sa.String(20), nullable=False, default="pending", server_default="pending"
    )


class ImageTag(_ImageChild, Base):
    __tablename__ = "image_tags"
    __table_args__ = (
        sa.Index("ix_image_tags_image_id", "image_id"),
        sa.Index("ix_image_tags_image_id_tag_value", "image_id", "value"),
        MYSQL_TABLE_ARGS,
    )

    value: Mapped[str] = mapped_column(sa.String(255), nullable=False)


class Task(SoftDelete, Base):
    __tablename__ = "tasks"
    __table_args__ = (
        sa.Index("ix_tasks_type", "type"),
        sa.Index("ix_tasks_status", "status"),
        sa.Index("ix_tasks_owner", "owner"),
        sa.Index("ix_tasks_deleted", "deleted"),
        sa.Index("ix_tasks_updated_at", "updated_at"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_uuid)
    type: Mapped[str] = mapped_column(sa.String(30), nullable=False)
    status: Mapped[str] = mapped_column(sa.String(30), nullable=False)
    owner: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    expires_at: Mapped[datetime.datetime | None] = mapped_column(sa.DateTime, nullable=True)


class TaskInfo(Base):
    """Input, result and message of a task (no soft-delete columns, as in Glance)."""

    __tablename__ = "task_info"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    task_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("tasks.id"), primary_key=True, nullable=False
    )
    # JSON objects, encoded by the caller (TEXT as Glance's JSONEncodedDict).
    input: Mapped[str | None] = mapped_column(sa.Text)
    result: Mapped[str | None] = mapped_column(sa.Text)
    message: Mapped[str | None] = mapped_column(sa.Text)


class ImageLease(Base):
    """glance-lite's own (migration 0003): which api node is uploading an image, until
    when. A row exists while its image is `saving` and goes in the same transaction
    as the image leaves that status (db/leases.py, docs/registry.md)."""

    __tablename__ = "image_leases"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    image_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    holder: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    expires_at: Mapped[datetime.datetime] = mapped_column(sa.DateTime, nullable=False)
    # Where the upload's partial data is, for a store that cannot find it by itself
    # (NULL: the store can, as the file store's locked temporary files).
    partial_location: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    created_at: Mapped[datetime.datetime] = mapped_column(sa.DateTime, nullable=False)
    updated_at: Mapped[datetime.datetime] = mapped_column(sa.DateTime, nullable=False)


metadata = Base.metadata

images = Image.__table__
image_properties = ImageProperty.__table__
image_locations = ImageLocation.__table__
image_members = ImageMember.__table__
image_tags = ImageTag.__table__
tasks = Task.__table__
task_info = TaskInfo.__table__
image_leases = ImageLease.__table__

# Columns and tables glance-lite adds to Glance's schema (not required when adopting a
# Glance database: its migrations add them).
OWN_COLUMNS = frozenset({("images", "listing_doc")})
OWN_TABLES = frozenset({"image_leases"})

# Tables that reference images.id, in the order they are emptied before images.
IMAGE_CHILDREN = (image_properties, image_locations, image_members, image_tags)
