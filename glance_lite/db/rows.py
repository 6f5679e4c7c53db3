"""An image's rows read back as the v1 image dict, and who may see or change an image.

Shared by the image, member and document code of the database; every function runs
its statements on the caller's prepared.Cursor, inside the caller's transaction.
"""

import collections
import json
from collections.abc import Sequence

from glance_lite import exceptions
from glance_lite.context import RequestContext
from glance_lite.db import listing, prepared, statements

# An image row as read: every column but the listing document.
ImageRow = collections.namedtuple("ImageRow", [column.name for column in listing.ROW_COLUMNS])


def _metadata(encoded: str | None) -> dict:
    try:
        decoded = json.loads(encoded or "{}")
    except ValueError:
        return {}
    return decoded if isinstance(decoded, dict) else {}


def image_dict(row: ImageRow, properties: dict, locations: list[dict]) -> dict:
    """The v1 image dict: the row's columns, is_public, properties and locations."""
    image = row._asdict()  # every column of the image row (hot on listings)
    image["is_public"] = image.pop("visibility") == "public"
    image["properties"] = properties
    image["location_data"] = locations
    image["location"] = next((loc["url"] for loc in locations if loc["status"] == "active"), None)
    return image


def image_dicts(
    cur: prepared.Cursor, rows: Sequence[ImageRow], *, with_deleted_locations: bool
) -> list[dict]:
    """Image dicts for `rows`: their properties and locations, one IN query each."""
    if not rows:
        return []
    ids = [row.id for row in rows]
    properties = properties_of(cur, ids)
    locations: dict[str, list] = {image_id: [] for image_id in ids}
    for count, values in statements.chunks(ids):
        for image_id, loc_id, url, meta_data, status, deleted in cur.fetch(
            statements.locations_of, values, count
        ):
            if with_deleted_locations or not deleted:
                locations[image_id].append(
                    {"id": loc_id, "url": url, "metadata": _metadata(meta_data), "status": status}
                )
    return [image_dict(row, properties[row.id], locations[row.id]) for row in rows]


def properties_of(cur: prepared.Cursor, ids: Sequence[str]) -> dict[str, dict]:
    """The live properties of the images `ids`, one IN query per chunk of ids."""
    properties: dict[str, dict] = {image_id: {} for image_id in ids}
    for count, values in statements.chunks(ids):
        for image_id, name, value, deleted in cur.fetch(statements.properties_of, values, count):
            if not deleted:
                properties[image_id][name] = value
    return properties


def image_rows(cur: prepared.Cursor, ids: Sequence[str]) -> list[ImageRow]:
    """The rows of the images `ids` (in no particular order)."""
    rows = []
    for count, values in statements.chunks(ids):
        rows += [ImageRow._make(row) for row in cur.fetch(statements.images_by_ids, values, count)]
    return rows


def load_image(cur: prepared.Cursor, image_id: str) -> dict:
    """The image dict of an image known to exist (live locations only)."""
    row = ImageRow._make(cur.fetch(statements.image_by_id, {"w_id": image_id})[0])
    return image_dicts(cur, [row], with_deleted_locations=False)[0]


# --- who sees and changes an image ---------------------------------------------------------


def visible_image(
    cur: prepared.Cursor,
    context: RequestContext,
    image_id: str,
    force_show_deleted: bool = False,
) -> ImageRow:
    """The image row if it exists and the caller may see it, else NotFound."""
    not_found = exceptions.NotFound(f"No image found with ID {image_id}")
    if not isinstance(image_id, str) or len(image_id) > 36:
        raise not_found
    found = cur.fetch(statements.image_by_id, {"w_id": image_id})
    if not found:
        raise not_found
    row = ImageRow._make(found[0])
    if row.deleted and not (force_show_deleted or context.can_see_deleted):
        raise not_found
    if not _is_visible(cur, context, row):
        raise not_found
    return row


def _is_visible(cur: prepared.Cursor, context: RequestContext, row: ImageRow) -> bool:
    if context.is_admin or row.owner is None:
        return True
    if row.visibility in ("public", "community"):
        return True
    if context.owner is None:
        return False
    if row.owner == context.owner:
        return True
    return row.visibility == "shared" and live_member(cur, row.id, context.owner) is not None


def live_member(cur: prepared.Cursor, image_id: str, member: str) -> tuple | None:
    """The live membership (can_share,) of `member` in the image, None without one."""
    found = cur.fetch(statements.live_membership, {"w_image_id": image_id, "w_member": member})
    return found[0] if found else None


def check_mutable(context: RequestContext, row: ImageRow) -> None:
    """Only an admin or the image's owner may change it: 403 for a public or community
    image, 404 (as if unseen) for any other."""
    if context.is_admin:
        return
    if row.owner is not None and context.owner is not None and row.owner == context.owner:
        return
    if row.visibility in ("public", "community"):
        raise exceptions.Forbidden("You do not own this image")
    raise exceptions.NotFound(f"No image found with ID {row.id}")
