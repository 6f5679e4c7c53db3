"""What glance-api's controllers work with: one caller's view of images.

`ImageRepository` reaches metadata through the registry client and image bytes through
the store drivers, and owns the image lifecycle (docs/api.md): upload with its
saving -> active / killed transitions, deletion, downloads. `Layer` wraps a repository
and changes what it needs (policy, quotas, property protections: layers.py); layers are
stacked in app.py, so they can be added, removed or reordered without touching the
controllers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import secrets
import uuid
from collections.abc import Callable, Iterable, Iterator

from glance_lite import exceptions
from glance_lite.api.leases import LeaseKeeper, LeaseTerms
from glance_lite.api.settle import Settler
from glance_lite.context import RequestContext
from glance_lite.registry.client import RegistryClient
from glance_lite.store.base import (
    AddResult,
    BadStoreUri,
    StoreNotFound,
    Stores,
    UnknownScheme,
)

LOG = logging.getLogger(__name__)

# Glance's wording of an upload refused by user_storage_quota, before the detail.
QUOTA_REFUSAL = "Denying attempt to upload image because it exceeds the quota: "
# Characters of the node id in an upload's lease holder: with '#' and a 16-digit token,
# within the registry's 255.
HOLDER_ROOM = 238


class ClientDisconnected(exceptions.Invalid):
    message = "Client disconnected before sending all data to backend"


class UploadFailed(exceptions.GlanceLiteError):
    """Anything unexpected during an upload (the image is killed)."""


class DataSizeMismatch(exceptions.GlanceLiteError):
    """The store's data of an active image is not as long as its recorded size (500)."""


class ImageRepository:
    def __init__(
        self,
        context: RequestContext,
        registry: RegistryClient,
        stores: Stores,
        *,
        delayed_delete: bool = False,
        settler: Settler | None = None,
        lease_terms: LeaseTerms | None = None,
    ):
        """`lease_terms`: this node's upload leases (api/leases.py); None takes none."""
        self.context = context
        self.registry = registry
        self.stores = stores
        self.delayed_delete = delayed_delete
        self.settler = settler or Settler()
        self.lease_terms = lease_terms

    # --- metadata ------------------------------------------------------------------

    def list(self, query: str, *, detail: bool) -> bytes:
        """The listing as the JSON document glance-api answers: `{"images": [...]}`.
        `query` is the registry's query string, already encoded."""
        return self.registry.get_images_json(self.context, query, detail=detail)

    def get(self, image_id: str) -> dict:
        try:
            return self.registry.get_image(self.context, image_id)
        except exceptions.GlanceLiteError as err:
            raise reworded("get", err, image_id) from None

    def create(self, image_meta: dict) -> dict:
        """Create the record. The api picks the id the registry would otherwise pick, so
        that a create that goes unanswered can be settled (settle_create)."""
        if not image_meta.get("id"):
            image_meta = {**image_meta, "id": str(uuid.uuid4())}
        try:
            return self.registry.add_image(self.context, image_meta)
        except exceptions.RegistryUnavailable as err:
            if err.maybe_applied:
                self.settler.settle(
                    f"create of image {image_meta['id']}", lambda: self.settle_create(image_meta)
                )
            raise
        except exceptions.GlanceLiteError as err:
            raise reworded("create", err, image_meta.get("id")) from None

    def settle_create(self, image_meta: dict) -> bool:
        """One attempt at ending a create that went unanswered: True when done.

        The client was told it failed, so the image must not live on. A killed record of
        its id makes a late create fail (the id is taken); if the create came first, its
        image (queued, or active without data) is set killed, conditional on the status
        seen, so that nothing done to it meanwhile is undone.
        """
        image_id = image_meta["id"]
        fence = {"id": image_id, "status": "killed", "name": image_meta.get("name")}
        if "owner" in image_meta:
            fence["owner"] = image_meta["owner"]
        try:
            self.registry.add_image(self.context, fence)
            return True
        except exceptions.Conflict:
            pass  # the create came first
        current = self._current(image_id)
        if current is None or current.get("deleted"):
            return True
        empty = current["status"] == "queued" or (
            current["status"] == "active" and not current.get("size")
        )
        if not empty:
            return True  # killed already, or data came (an upload, which settles itself)
        try:
            self.registry.update_image(
                self.context, image_id, {"status": "killed"}, from_state=current["status"]
            )
        except exceptions.Conflict:
            return False  # changed meanwhile: look again
        return True

    def update(
        self,
        image: dict,
        changes: dict,
        *,
        purge_props: bool = False,
        from_state: str | None = None,
    ) -> dict:
        """Change an image's metadata. `image` is its current record."""
        try:
            return self.registry.update_image(
                self.context, image["id"], changes, purge_props=purge_props, from_state=from_state
            )
        except exceptions.GlanceLiteError as err:
            raise reworded("update", err, image["id"]) from None

    def delete(self, image: dict) -> None:
        """Delete an image and its data (or leave the data for the scrubber).

        If the registry stops answering part-way, the delete is carried to its end in
        the background: a late status change would otherwise leave an image marked
        deleted that still holds its data.
        """
        try:
            self._delete(image)
        except exceptions.RegistryUnavailable as err:
            if err.maybe_applied:
                self.settler.settle(
                    f"delete of image {image['id']}", lambda: self.settle_delete(image["id"])
                )
            raise

    def settle_delete(self, image_id: str) -> bool:
        """One attempt at finishing a delete that went unanswered: True when done."""
        current = self._current(image_id)
        if current is not None and not current.get("deleted"):
            self._delete(current)
        return True

    def _delete(self, image: dict) -> None:
        active = [loc for loc in image.get("location_data") or [] if loc["status"] == "active"]
        pending = self.delayed_delete and bool(active)
        status = "pending_delete" if pending else "deleted"
        original = image["status"]
        if original != status:  # already set by a delete that stopped half-way
            self._set_status_for_delete(image, status)
        try:
            for location in active:
                self._delete_location(image, location, pending)
        except Exception:
            self._set_status_for_delete(image, original)
            raise
        try:
            self.registry.delete_image(self.context, image["id"])
        except exceptions.GlanceLiteError as err:
            raise reworded("delete", err, image["id"]) from None

    def _set_status_for_delete(self, image: dict, status: str) -> None:
        try:
            self.registry.update_image(self.context, image["id"], {"status": status})
        except exceptions.GlanceLiteError as err:
            raise reworded("set_status_for_delete", err, image["id"]) from None

    def _delete_location(self, image: dict, location: dict, pending: bool) -> None:
        if pending:
            self.registry.mark_location(self.context, image["id"], location["id"], "pending_delete")
            return
        try:
            self.stores.for_location(location["url"]).delete(location["url"])
        except (StoreNotFound, exceptions.Invalid) as err:
            LOG.warning("image %s: data at a location not removed: %s", image["id"], err)

    # --- members -------------------------------------------------------------------

    def members(self, image_id: str) -> list[dict]:
        return self.registry.get_image_members(self.context, image_id)

    def replace_members(self, image_id: str, body: object) -> None:
        """Replace all members with those of `body`, the client's `{"memberships": [...]}`
        document as it came (the registry checks it)."""
        self._sharing(self.registry.replace_members, image_id, body)

    def set_member(self, image_id: str, member: str, can_share: bool | None) -> None:
        self._sharing(self.registry.add_member, image_id, member, can_share)

    def delete_member(self, image_id: str, member: str) -> None:
        self._sharing(self.registry.delete_member, image_id, member)

    def update_store_acls(self, image: dict, location: str | None = None) -> None:
        """Make the access lists of the store holding the image's data (at `location`,
        else the image's own) follow its is_public and members, where that store keeps
        access lists (Store.set_acls); nothing for one that does not, or for a location
        of no enabled store: no member is looked up then."""
        location = location or image.get("location")
        if not location:
            return
        try:
            store = self.stores.for_location(location)
        except (UnknownScheme, BadStoreUri):
            return
        if not store.keeps_acls:
            return
        readers, writers = [], []
        for member in self.members(image["id"]):
            (writers if member.get("can_share") else readers).append(member["member_id"])
        store.set_acls(
            location,
            public=bool(image.get("is_public")),
            read_tenants=readers,
            write_tenants=writers,
        )

    def member_images(self, member: str) -> list[dict]:
        return self.registry.get_member_images(self.context, member)

    def _sharing(self, call: Callable, image_id: str, *args) -> None:
        try:
            call(self.context, image_id, *args)
        except exceptions.GlanceLiteError as err:
            raise reworded("share", err, image_id) from None

    # --- data ----------------------------------------------------------------------

    def download(self, image: dict) -> tuple[Iterator[bytes], int]:
        """The image's data and its length: the size the registry records, which the
        store's own size must match before anything is sent (one check per request);
        data that shrinks after it makes the iterator raise (store.base.Store.get)."""
        size = image.get("size")
        if not size:
            return iter(()), 0
        location = image.get("location")
        if not location:
            raise exceptions.NotFound(f"Image {image['id']} has no data")
        chunks, stored = self.stores.for_location(location).get(location)
        if stored is not None and stored != size:
            chunks.close()
            LOG.error(
                "image %s: the store holds %d bytes of it, the registry records %d: not served",
                image["id"],
                stored,
                size,
            )
            raise DataSizeMismatch(
                f"The data of image {image['id']} is damaged: the store holds {stored} "
                f"bytes, the image's size is {size}."
            )
        return chunks, size

    def source_size(self, uri: str) -> int:
        """The size of the data at an external source (a location or a copy-from's),
        as its store reports it."""
        return self.stores.for_location(uri).get_size(uri)

    def storage_usage(self, owner: str, exclude_image_id: str | None) -> int:
        return self.registry.get_storage_usage(self.context, owner, exclude_image_id)

    def upload(
        self,
        image: dict,
        chunks: Iterable[bytes],
        *,
        declared_size: int | None,
        declared_checksum: str | None,
        store_scheme: str | None = None,
        storage_quota: tuple[str | None, int] | None = None,
        attempt: Attempt | None = None,
    ) -> dict:
        """Store the bytes of a queued image, or of a killed one without data (a retry),
        and activate it: queued (killed) -> saving -> active. `attempt` (new_attempt) is
        given by a caller that must name this upload's holder itself (a background copy's
        kill when it is abandoned).

        Any failure leaves no bytes in the store; the image ends `killed` unless another
        upload won the race (409) or the image was deleted meanwhile (412).
        `storage_quota` (owner, bytes) is checked again by the registry as it activates
        the image, atomically, so that concurrent uploads cannot pass it together.
        When the registry stops answering, what is left open is settled in the
        background (settle_upload).

        With leases, each upload holds the image under a holder of its own
        (`<node id>#<token>`), and its activation and its kill are conditional on still
        holding it: an earlier upload of the image that wakes up late (its lease swept,
        the image retried meanwhile) changes nothing. A retry stores its data under a
        name of its own (`<image id>.<token>`), so that what an earlier upload still
        writes or removes under the image's usual name is never the retry's data.
        """
        store = self.stores.for_scheme(store_scheme) if store_scheme else self.stores.default
        attempt = attempt or self.new_attempt(image)
        self.start_saving(image, attempt.holder)
        with self._lease_kept(attempt):
            return self._store_and_activate(
                attempt, store, chunks, declared_size, declared_checksum, storage_quota
            )

    def new_attempt(self, image: dict) -> Attempt:
        """A new upload of `image`: its lease holder and the name of its data."""
        return Attempt.of(image, self.lease_terms)

    def _lease_kept(self, attempt: Attempt) -> contextlib.AbstractContextManager:
        """The upload's lease renewed until the block ends (nothing without leases)."""
        if self.lease_terms is None:
            return contextlib.nullcontext()
        return LeaseKeeper(
            self.registry, self.context, attempt.image_id, self.lease_terms, holder=attempt.holder
        )

    def _store_and_activate(
        self,
        attempt: Attempt,
        store,
        chunks: Iterable[bytes],
        declared_size: int | None,
        declared_checksum: str | None,
        storage_quota: tuple[str | None, int] | None,
    ) -> dict:
        image_id, holder = attempt.image_id, attempt.holder
        try:
            result = store.add(attempt.store_key, chunks, declared_size)
        except exceptions.Conflict as err:
            raise exceptions.Conflict(f"Attempt to upload duplicate image: {err}") from None
        except BaseException as err:
            self.kill(image_id, reason=err, held_by=holder)
            raise upload_error(image_id, err) from None
        try:
            verify(image_id, result, declared_size, declared_checksum)
            return self._activate(image_id, result, storage_quota, holder)
        except exceptions.RegistryUnavailable as err:
            if err.maybe_applied:
                # the activation may still be applied: the data stays until it is known
                self._settle_upload(image_id, store, result.location, holder)
            else:
                self._discard(store, result.location)
                self._settle_upload(image_id, store, None, holder)
            raise
        except exceptions.NotAuthenticated:
            # A registry in the keystone flavor refused the caller's token, which was good
            # when the upload began: it expired meanwhile. As Glance: the data goes, the
            # image stays as it was (no call with that token can change it).
            self._discard(store, result.location)
            raise exceptions.NotAuthenticated(
                "Authentication error - the token may have expired during file upload. "
                f"The data of image {image_id} was deleted."
            ) from None
        except BaseException as err:
            self._discard(store, result.location)
            if not isinstance(err, (exceptions.Conflict, exceptions.PreconditionFailed)):
                self.kill(image_id, reason=err, held_by=holder)
            raise

    def start_saving(self, image: dict, holder: str | None = None) -> None:
        # Conditional on the status the caller saw (queued, killed for a retry; active
        # for a just-reserved empty image), so that of two concurrent uploads exactly one
        # goes on. The upload's lease (`holder`) is taken in the same call.
        terms = self.lease_terms
        try:
            self.registry.update_image(
                self.context,
                image["id"],
                {"status": "saving"},
                from_state=image["status"],
                lease=None if terms is None else (holder or terms.node_id, terms.duration),
            )
        except exceptions.RegistryUnavailable as err:
            if err.maybe_applied:  # the image may go saving later, with no upload
                self._settle_upload(image["id"], None, None, holder)
            raise
        except exceptions.GlanceLiteError as err:
            raise reworded("start_saving", err, image["id"]) from None

    def kill(
        self,
        image_id: str,
        *,
        reason: BaseException,
        from_state: str = "saving",
        held_by: str | None = None,
    ) -> None:
        """Set the image killed if its status is still `from_state` (never undoing an
        activation or a delete that came first) and, given `held_by`, that upload still
        holds it (never killing another upload's)."""
        LOG.warning("upload of image %s failed, setting it killed: %s", image_id, reason)
        try:
            self.registry.update_image(
                self.context,
                image_id,
                {"status": "killed"},
                from_state=from_state,
                held_by=held_by,
            )
        except exceptions.RegistryUnavailable:
            self._settle_upload(image_id, None, None, held_by)
        except exceptions.GlanceLiteError as err:
            LOG.error("could not set image %s killed: %s", image_id, err)

    def _activate(
        self,
        image_id: str,
        result: AddResult,
        storage_quota: tuple[str | None, int] | None,
        holder: str | None,
    ) -> dict:
        changes = {
            "status": "active",
            "size": result.size,
            "checksum": result.checksum,
            "location": result.location,
            "location_data": [
                {"url": result.location, "metadata": result.metadata, "status": "active"}
            ],
        }
        try:
            return self.registry.update_image(
                self.context,
                image_id,
                changes,
                from_state="saving",
                storage_quota=storage_quota,
                held_by=holder,
            )
        except exceptions.LimitExceeded as err:
            raise exceptions.LimitExceeded(f"{QUOTA_REFUSAL}{err.detail or err}") from None
        except exceptions.Conflict:
            current = self._current(image_id)
            if current is None or current.get("deleted"):
                raise exceptions.PreconditionFailed(
                    f"Image {image_id} could not be found after upload. The image may have "
                    "been deleted during the upload."
                ) from None
            raise exceptions.Conflict("Image operation conflicts") from None

    # --- after a registry outage ---------------------------------------------------

    def _settle_upload(
        self, image_id: str, store, location: str | None, holder: str | None = None
    ) -> None:
        self.settler.settle(
            f"upload of image {image_id}",
            lambda: self.settle_upload(image_id, store, location, holder),
        )

    def settle_upload(
        self, image_id: str, store, location: str | None, holder: str | None = None
    ) -> bool:
        """One attempt at ending an upload whose registry calls went unanswered, so that
        no late request can change the outcome: True when done.

        The image is set killed if it is `saving` (under this upload's lease `holder`,
        when it has one) or `queued`: a late start (conditional on queued) or activation
        (on saving, and on the lease) then finds it killed and does nothing. If it is
        neither, the late activation won (active with this upload's `location`: the data
        stays) or the image went on without this upload (the data goes): another
        upload's `saving` included, which that upload (or the lease sweep) ends.
        """
        for status in ("saving", "queued"):
            held_by = holder if status == "saving" else None
            try:
                self.registry.update_image(
                    self.context, image_id, {"status": "killed"}, from_state=status, held_by=held_by
                )
            except (exceptions.Conflict, exceptions.NotFound):
                continue
            LOG.warning("image %s set killed after a registry outage", image_id)
            self._discard(store, location)
            return True
        current = self._current(image_id)
        if current is not None and current["status"] == "queued":
            return False  # moved meanwhile by a late request: once more
        if current is not None and current["status"] == "saving" and holder is None:
            return False
        if not holds(current, location):
            self._discard(store, location)
        return True

    def _current(self, image_id: str) -> dict | None:
        try:
            return self.registry.get_image(self.context, image_id)
        except exceptions.NotFound:
            return None

    def _discard(self, store, location: str | None) -> None:
        """Remove the data an upload stored at `location` (None: nothing to remove)."""
        if location is None:
            return
        try:
            store.delete(location)
        except StoreNotFound:
            pass
        except Exception as err:
            LOG.error("could not remove data at %s: %s", self.stores.redact(location), err)


@dataclasses.dataclass(frozen=True)
class Attempt:
    """One upload of an image: the lease holder it takes (None without leases) and the
    name its data gets in the store."""

    image_id: str
    holder: str | None
    store_key: str

    @classmethod
    def of(cls, image: dict, terms: LeaseTerms | None) -> Attempt:
        token = secrets.token_hex(8)
        image_id = image["id"]
        # the node id is cut where it would not leave the token room in a holder
        holder = None if terms is None else f"{terms.node_id[:HOLDER_ROOM]}#{token}"
        retry = image["status"] == "killed"
        return cls(image_id, holder, f"{image_id}.{token}" if retry else image_id)


def holds(image: dict | None, location: str | None) -> bool:
    """Whether `image` keeps data at `location` (active, or pending the scrubber)."""
    if image is None or location is None:
        return False
    return any(
        entry["url"] == location and entry["status"] != "deleted"
        for entry in image.get("location_data") or ()
    )


# Glance's wording of a registry error, per action: the class the registry client
# raised -> the class glance-api raises and its text. `{image_id}` is the image's id,
# `{err}` the registry's own explanation. An error not listed goes on unchanged.
WORDINGS: dict[str, dict[type[exceptions.GlanceLiteError], tuple[type, str]]] = {
    "get": {
        exceptions.NotFound: (exceptions.NotFound, "Image with identifier {image_id} not found"),
        exceptions.Forbidden: (exceptions.Forbidden, "Forbidden image access"),
    },
    "create": {
        exceptions.Conflict: (
            exceptions.Conflict,
            "An image with identifier {image_id} already exists",
        ),
        exceptions.Forbidden: (exceptions.Forbidden, "Forbidden to reserve image."),
        exceptions.Invalid: (exceptions.Invalid, "Failed to reserve image. Got error: {err}"),
    },
    "update": {
        exceptions.Invalid: (
            exceptions.Invalid,
            "Failed to update image metadata. Got error: {err}",
        ),
        exceptions.Forbidden: (exceptions.Forbidden, "Forbidden to update image: {err}"),
        exceptions.Conflict: (exceptions.Conflict, "Image operation conflicts"),
        # A member of a shared image may read it, not update it: the registry does not
        # find it for the update. Glance answers 500 here; glance-lite a 403.
        exceptions.NotFound: (exceptions.Forbidden, "Forbidden to update image: {image_id}"),
    },
    "delete": {
        exceptions.NotFound: (exceptions.NotFound, "Failed to find image to delete: {err}"),
        exceptions.Forbidden: (exceptions.Forbidden, "Forbidden to delete image: {err}"),
    },
    # the status change (deleted or pending_delete) that comes before a delete
    "set_status_for_delete": {
        exceptions.Forbidden: (exceptions.Forbidden, "Forbidden to delete image: {err}"),
        exceptions.NotFound: (exceptions.NotFound, "Image with identifier {image_id} not found"),
    },
    # adding, replacing and removing members: Glance v1 answers the registry's 403 (no
    # permission to share) with a 404
    "share": {
        exceptions.Forbidden: (exceptions.NotFound, "{err}"),
    },
    "start_saving": {
        exceptions.Conflict: (exceptions.Conflict, "Cannot upload to an unqueued image"),
    },
}


def reworded(
    action: str, err: exceptions.GlanceLiteError, image_id: str | None
) -> exceptions.GlanceLiteError:
    """The error glance-api raises for a registry error `err` during `action` (WORDINGS)."""
    for caught, (raised, template) in WORDINGS[action].items():
        if isinstance(err, caught):
            return raised(template.format(image_id=image_id, err=err))
    return err


def verify(image_id: str, result: AddResult, size: int | None, checksum: str | None) -> None:
    """Declared size and checksum against what was stored; a mismatch is a 400."""
    checks = (("size", size, result.size), ("checksum", checksum, result.checksum))
    for attr, supplied, actual in checks:
        if supplied and supplied != actual:
            raise exceptions.Invalid(
                f"Supplied {attr} ({supplied}) and {attr} generated from uploaded image "
                f"({actual}) did not match. Setting image status to 'killed'."
            )


def upload_error(image_id: str, err: BaseException) -> exceptions.GlanceLiteError:
    """The error a client sees for a failed store write: a domain error as it is, a
    broken client stream as ClientDisconnected (400), anything else a 500."""
    if isinstance(err, exceptions.GlanceLiteError):
        return err
    if isinstance(err, OSError | ValueError):
        return ClientDisconnected()
    LOG.error("upload of image %s failed", image_id, exc_info=err)
    return UploadFailed(f"Failed to upload image {image_id}")


class Layer:
    """A repository wrapper: delegates every call it does not override to `inner`."""

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name: str):
        return getattr(self.inner, name)
