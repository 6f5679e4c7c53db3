"""Image data from elsewhere: x-image-meta-location and x-glance-api-copy-from.

A location registers data that stays where it is: the image is active at once, pointing
at the URL, with the size the store reports. A copy-from has glance-api fetch the data
and store it as if it were uploaded: the request is answered at once with the reserved
(queued) image, and a `Copier` streams the source into the store in the background, where
the upload's own lifecycle (repository.py) takes the image to active, or to killed with
the reason logged.

Which URLs a client may name is decided here, as Glance v1 decides it: the scheme of an
enabled store, never `file`, `filesystem` or `swift+config` (those would let a client
read the api node's own files or the operator's configured account). Where the data may
be fetched from is the address guard's business (store/addresses.py).
"""

import logging
from collections.abc import Callable, Iterator

from glance_lite import background, exceptions
from glance_lite.store.base import Stores, scheme_of

LOG = logging.getLogger(__name__)

RESTRICTED_SCHEMES = frozenset({"file", "filesystem", "swift+config"})
LOCATION = "location"
COPY_FROM = "copy_from"


def external_source(meta: dict, has_body: bool, stores: Stores) -> tuple[str, str] | None:
    """The request's one external source as (LOCATION or COPY_FROM, uri), or None.

    400 for an empty one, one of a scheme no enabled store serves (or a restricted
    one), and for more than one source of data (location, copy-from, body): checked
    before anything is created, unlike Glance, which left a queued image behind.
    """
    given = [(kind, meta[kind]) for kind in (LOCATION, COPY_FROM) if kind in meta]
    if len(given) + has_body > 1:
        raise exceptions.Invalid("It's invalid to provide multiple image sources.")
    if not given:
        return None
    kind, uri = given[0]
    if not uri:
        raise exceptions.Invalid("External source should not be empty")
    try:
        scheme = scheme_of(uri)
    except exceptions.Invalid:
        scheme = None
    if scheme not in stores.schemes or scheme in RESTRICTED_SCHEMES:
        raise exceptions.Invalid(f"External sources are not supported: '{stores.redact(uri)}'")
    if not stores.for_scheme(scheme).open_to_clients(uri):
        raise exceptions.Invalid(
            f"External source '{stores.redact(uri)}' is not on an endpoint of this "
            f"deployment's {scheme} store"
        )
    return kind, uri


def source_chunks(stores: Stores, uri: str) -> Iterator[bytes]:
    """The data at `uri`, opened when first asked for: a copy's errors (not found,
    denied address, timeout) then happen inside the store's add, which cleans up."""
    chunks, _ = stores.for_location(uri).get(uri)
    try:
        yield from chunks
    finally:
        chunks.close()


class Copier:
    """Runs copy-froms in the background (background.py: one thread each, waited for by
    a server that stops gracefully) and logs how each ends. `start(name, fn, abandon)`
    is background.start unless a test gives another."""

    def __init__(self, start: Callable[[str, Callable, Callable], None] = background.start):
        self._start = start

    def copy(self, repo, image: dict, uri: str, store_scheme: str | None) -> None:
        """Stream `uri` into the store as `image`'s data (queued -> saving -> active,
        or killed) through `repo`, the caller's repository with its layers."""
        shown = repo.stores.redact(uri)
        LOG.info("image %s: copying its data from %s in the background", image["id"], shown)
        # the copy's own holder, so that its kill when abandoned (this api stopping) is a
        # no-op once another upload holds the image (its lease swept, the image retried)
        attempt = repo.new_attempt(image)
        self._start(
            f"copy of image {image['id']}",
            lambda: self._run(repo, image, uri, shown, store_scheme, attempt),
            lambda: repo.kill(
                image["id"],
                reason=exceptions.ServiceUnavailable(
                    f"the copy from {shown} was cut short: glance-api stopped"
                ),
                held_by=attempt.holder,
            ),
        )

    @staticmethod
    def _run(repo, image: dict, uri: str, shown: str, store_scheme: str | None, attempt) -> None:
        try:
            done = repo.upload(
                image,
                source_chunks(repo.stores, uri),
                declared_size=image.get("size") or None,
                declared_checksum=image.get("checksum"),
                store_scheme=store_scheme,
                attempt=attempt,
            )
        except exceptions.GlanceLiteError as err:
            LOG.error("image %s: copy from %s failed: %s", image["id"], shown, err)
        except Exception:
            LOG.exception("image %s: copy from %s failed", image["id"], shown)
        else:
            LOG.info("image %s: copied from %s, %d bytes, active", image["id"], shown, done["size"])
