"""The stored listing entry: an image's detail-listing JSON, kept in images.listing_doc.

A registry-side speed-up of glance-lite's own. Every write that changes what an image's
entry of a detail listing shows stores that entry's JSON text in the same transaction,
so that a detail listing (without locations, which is all glance-api asks for) joins
stored texts instead of building a dict per image. NULL means "render it from the rows"
(a row another program wrote, e.g. Glance itself).
"""

import json
from collections.abc import Sequence

from glance_lite import image_meta
from glance_lite.db import prepared, rows, statements

# statements.update_image's shape when it writes the listing entry alone
LISTING_DOC = ("listing_doc",)


def listing_json(image: dict) -> str:
    """One entry of a detail listing without locations, as the JSON text (ASCII only)
    that json.dumps of the whole listing holds for it."""
    return json.dumps(image_meta.image_to_json(image, with_locations=False))


def store(cur: prepared.Cursor, image: dict) -> dict:
    """Store the listing entry of `image`, just read back inside the write: the last
    step of every write that changes what an image's listing entry shows."""
    cur.execute(
        statements.update_image,
        {"w_id": image["id"], "v_listing_doc": listing_json(image)},
        LISTING_DOC,
        False,
    )
    return image


def render(cur: prepared.Cursor, ids: Sequence[str]) -> dict[str, str]:
    """The listing entries of the images `ids` rendered from their rows (an entry shows
    no locations: none are read)."""
    found = rows.image_rows(cur, ids)
    properties = rows.properties_of(cur, [row.id for row in found])
    return {row.id: listing_json(rows.image_dict(row, properties[row.id], [])) for row in found}
