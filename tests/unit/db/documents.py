"""What images.listing_doc should hold, rendered straight from the tables (no api.py)."""

import sqlalchemy as sa

from glance_lite.db import models
from glance_lite.db.documents import listing_json

images = models.images
props = models.image_properties
IMAGE_FIELDS = [column for column in images.c if column.name != "listing_doc"]


def rendered_documents(engine: sa.Engine) -> dict[str, str]:
    """image id -> listing_json of the image as its rows say now."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(*IMAGE_FIELDS)).mappings().all()
        live = conn.execute(
            sa.select(props.c.image_id, props.c.name, props.c.value)
            .where(props.c.deleted.is_(sa.false()))
            .order_by(props.c.id)
        ).all()
    properties: dict[str, dict] = {row["id"]: {} for row in rows}
    for image_id, name, value in live:
        properties[image_id][name] = value
    documents = {}
    for row in rows:
        image = dict(row)
        image["is_public"] = image.pop("visibility") == "public"
        image["properties"] = properties[row["id"]]
        documents[row["id"]] = listing_json(image)
    return documents


def stored_documents(engine: sa.Engine) -> dict[str, str | None]:
    """image id -> images.listing_doc."""
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(images.c.id, images.c.listing_doc)).all())


def clear_documents(engine: sa.Engine, ids=None) -> None:
    """Set listing_doc NULL (for `ids`, or every image), as a row Glance wrote has it."""
    # A plain table: the model's would bump updated_at (its onupdate) as well.
    plain = sa.table("images", sa.column("id"), sa.column("listing_doc"))
    stmt = plain.update().values(listing_doc=None)
    if ids is not None:
        stmt = stmt.where(plain.c.id.in_(list(ids)))
    with engine.begin() as conn:
        conn.execute(stmt)
