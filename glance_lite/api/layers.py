"""The layers around an ImageRepository: policy, property protections, quotas.

Each is a `Layer` (repository.py) that overrides only the calls it cares about. app.py
stacks them, outermost first: policy, protections, quotas, then the repository.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator

from glance_lite import exceptions
from glance_lite.api.policy import Enforcer, image_target
from glance_lite.api.protections import PropertyProtections
from glance_lite.api.repository import QUOTA_REFUSAL, Layer
from glance_lite.context import RequestContext


class PolicyLayer(Layer):
    """The policy actions Glance v1 consults (docs/api.md), and read-only contexts."""

    def __init__(self, inner, enforcer: Enforcer, context: RequestContext):
        super().__init__(inner)
        self.enforcer = enforcer
        self.context = context

    def _enforce(self, action: str, target: dict | None = None) -> None:
        self.enforcer.enforce(self.context, action, target or {})

    def _writable(self) -> None:
        if self.context.read_only:
            raise exceptions.Forbidden("Read-only access")

    def list(self, query: str, *, detail: bool):
        self._enforce("get_images")
        return self.inner.list(query, detail=detail)

    def get(self, image_id: str) -> dict:
        self._enforce("get_image")
        return self.inner.get(image_id)

    def create(self, image_meta: dict) -> dict:
        self._writable()
        self._enforce("add_image")
        if image_meta.get("is_public"):
            self._enforce("publicize_image")
        return self.inner.create(image_meta)

    def update(self, image: dict, changes: dict, **kw) -> dict:
        self._writable()
        self._enforce("modify_image")
        if changes.get("is_public"):
            self._enforce("publicize_image")
        return self.inner.update(image, changes, **kw)

    def delete(self, image: dict) -> None:
        self._writable()
        self._enforce("delete_image")
        self.inner.delete(image)

    def members(self, image_id: str) -> list[dict]:
        self._enforce("get_members")
        return self.inner.members(image_id)

    def replace_members(self, image_id: str, body: object) -> None:
        self._writable()
        self._enforce("modify_member")
        self.inner.replace_members(image_id, body)

    def set_member(self, image_id: str, member: str, can_share) -> None:
        self._writable()
        self._enforce("modify_member")
        self.inner.set_member(image_id, member, can_share)

    def delete_member(self, image_id: str, member: str) -> None:
        self._writable()
        self._enforce("delete_member")
        self.inner.delete_member(image_id, member)

    # The two checks the controller asks for ahead of the work: upload_image before an
    # image is created for its data, download_image (with no target) before it answers
    # that an image cannot be downloaded, as Glance v1 does. Only this layer has them.

    def check_upload(self) -> None:
        self._writable()
        self._enforce("upload_image")

    def check_source(self, kind: str) -> None:
        """set_image_location for a location, copy_from for a copy-from."""
        self._writable()
        self._enforce("set_image_location" if kind == "location" else "copy_from")

    def check_download(self, image: dict | None) -> None:
        """download_image on `image`; None: an image that is not active."""
        self._enforce("download_image", image_target(image) if image else {})

    def download(self, image: dict):
        self.check_download(image)
        return self.inner.download(image)


class ProtectionLayer(Layer):
    """Property protections: who may create, read, update and delete which property.

    Callers get images without the properties they may not read, but an update is
    checked against the image as stored: an unreadable property is neither purged nor
    taken for a new one, and the layers below (the property quota) count it.
    """

    def __init__(self, inner, protections: PropertyProtections, context: RequestContext):
        super().__init__(inner)
        self.protections = protections
        self.context = context
        # image id -> the properties as stored, kept from get() (the layer lives for one
        # request), so that an update needs no second registry call to find them.
        self._stored: dict[str, dict] = {}

    def _readable(self, image: dict) -> dict:
        if image.get("properties"):
            props = self.protections.filter_readable(image["properties"], self.context)
            image = {**image, "properties": props}
        return image

    def list(self, query: str, *, detail: bool) -> bytes:
        document = self.inner.list(query, detail=detail)
        if not detail:
            return document  # a brief listing has no properties
        images = [self._readable(i) for i in json.loads(document)["images"]]
        return json.dumps({"images": images}).encode("utf-8")

    def get(self, image_id: str) -> dict:
        return self._kept(self.inner.get(image_id))

    def create(self, image_meta: dict) -> dict:
        self.protections.check_create(image_meta.get("properties") or {}, self.context)
        return self._readable(self.inner.create(image_meta))

    def update(self, image: dict, changes: dict, *, purge_props: bool = False, **kw) -> dict:
        if image["id"] not in self._stored:
            self.get(image["id"])
        image = {**image, "properties": self._stored[image["id"]]}
        if "properties" in changes:
            changes = {
                **changes,
                "properties": self.protections.check_update(
                    image["properties"], changes["properties"], purge_props, self.context
                ),
            }
        return self._kept(self.inner.update(image, changes, purge_props=purge_props, **kw))

    def upload(self, image: dict, chunks, **kw) -> dict:
        return self._kept(self.inner.upload(image, chunks, **kw))

    def _kept(self, image: dict) -> dict:
        """`image` as the caller sees it, its stored properties kept for a later update."""
        self._stored[image["id"]] = image.get("properties") or {}
        return self._readable(image)


class QuotaLayer(Layer):
    """image_property_quota, image_member_quota, image_size_cap and user_storage_quota."""

    def __init__(
        self,
        inner,
        context: RequestContext,
        *,
        property_quota: int,
        member_quota: int,
        size_cap: int,
        storage_quota: int,
    ):
        super().__init__(inner)
        self.context = context
        self.property_quota = property_quota
        self.member_quota = member_quota
        self.size_cap = size_cap
        self.storage_quota = storage_quota

    def _check_properties(self, count: int) -> None:
        if 0 <= self.property_quota < count:
            raise exceptions.LimitExceeded(
                "The limit has been exceeded on the number of allowed image properties. "
                f"Attempted: {count}, Maximum: {self.property_quota}"
            )

    def _check_members(self, count: int) -> None:
        if 0 <= self.member_quota < count:
            raise exceptions.LimitExceeded(
                "The limit has been exceeded on the number of allowed image members for "
                f"this image. Attempted: {count}, Maximum: {self.member_quota}"
            )

    def create(self, image_meta: dict) -> dict:
        self._check_properties(len(image_meta.get("properties") or {}))
        return self.inner.create(image_meta)

    def update(self, image: dict, changes: dict, *, purge_props: bool = False, **kw) -> dict:
        if "properties" in changes:
            names = set(changes["properties"])
            if not purge_props:
                names |= set(image.get("properties") or {})
            self._check_properties(len(names))
        return self.inner.update(image, changes, purge_props=purge_props, **kw)

    def replace_members(self, image_id: str, body: object) -> None:
        # Only the count matters here: the registry checks each entry.
        entries = body.get("memberships") if isinstance(body, dict) else None
        if isinstance(entries, list) and entries:
            self._check_members(len(entries))
        self.inner.replace_members(image_id, body)

    def set_member(self, image_id: str, member: str, can_share) -> None:
        # Counted even when the member exists already (a Glance wart, kept).
        self._check_members(len(self.inner.members(image_id)) + 1)
        self.inner.set_member(image_id, member, can_share)

    def upload(self, image: dict, chunks: Iterable[bytes], **kw) -> dict:
        cap_error = exceptions.LimitExceeded(
            f"Denying attempt to upload image larger than {self.size_cap} bytes."
        )
        limit, error = self.size_cap, cap_error
        if self.storage_quota > 0:
            remaining = self.storage_quota - self.inner.storage_usage(
                self.context.owner, image["id"]
            )
            declared = kw.get("declared_size") or 0
            if declared > remaining or (not declared and remaining <= 0):
                err = quota_error(declared, remaining)
                self.inner.kill(image["id"], reason=err, from_state=image["status"])
                raise err
            if remaining < limit:
                limit, error = remaining, quota_error(None, remaining)
            # checked again by the registry as it activates the image, atomically
            kw["storage_quota"] = (self.context.owner, self.storage_quota)
        return self.inner.upload(image, Limited(chunks, limit, error), **kw)


def quota_error(size: int | None, remaining: int) -> exceptions.LimitExceeded:
    detail = (
        f"The size of the data {size} will exceed the limit. "
        if size
        else "The size of the data will exceed the limit. "
    )
    return exceptions.LimitExceeded(f"{QUOTA_REFUSAL}{detail}{max(remaining, 0)} bytes remaining.")


class Limited:
    """`chunks` passed through until more than `limit` bytes went by, then `error` raised.

    The bytes that cross the limit are never passed on, so a store holds at most `limit`
    bytes of a body that is too large. Read by iteration, or with readinto() when
    `chunks` has one (then into at most limit + 1 bytes of the buffer: enough to tell).
    """

    def __init__(self, chunks: Iterable[bytes], limit: int, error: Exception):
        self._chunks = chunks
        self._left = limit
        self._error = error
        if hasattr(chunks, "readinto"):
            self.readinto = self._readinto

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self._left -= len(chunk)
            if self._left < 0:
                raise self._error
            yield chunk

    def _readinto(self, buffer) -> int:
        view = memoryview(buffer)
        if len(view) > self._left + 1:
            view = view[: self._left + 1]
        got = self._chunks.readinto(view)
        self._left -= got
        if self._left < 0:
            raise self._error
        return got


_QUOTA = re.compile(r"^(\d+)(B|KB|MB|GB|TB)?$")
_UNITS = {None: 1, "B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}


def parse_storage_quota(value: str) -> int:
    """`user_storage_quota` in bytes: digits with an optional unit, binary multiples."""
    match = _QUOTA.match(value.strip())
    if not match:
        raise exceptions.ConfigError(
            f"Invalid value for option user_storage_quota: {value!r}: a number with an "
            "optional unit B, KB, MB, GB or TB, without spaces"
        )
    return int(match.group(1)) * _UNITS[match.group(2)]
