"""An upload may retry a killed image that has no data (glance-lite's own), and each upload
holds its image under a lease of its own: an earlier upload that wakes up late (its lease
swept, the image retried meanwhile) neither activates over the retry, nor kills it, nor
removes its data."""

import hashlib
import threading

import pytest
import webob

from tests.helpers import admin_context
from tests.unit.db.test_leases import age, leases

HEADERS = {
    "Content-Type": "application/octet-stream",
    "x-image-meta-disk_format": "raw",
    "x-image-meta-container_format": "bare",
}


class HeldBody:
    """A request body that sends `head`, then waits for `go` before the rest (or, with
    `fail`, ends there as a client that went away)."""

    def __init__(self, head: bytes, rest: bytes, *, fail: bool = False):
        self.parts = [head, rest]
        self.sent_head = threading.Event()
        self.go = threading.Event()
        self.fail = fail

    def read(self, size: int = -1) -> bytes:
        if not self.parts:
            return b""
        if len(self.parts) == 1:
            self.sent_head.set()
            assert self.go.wait(10)
            if self.fail:
                raise OSError("connection reset")
        return self.parts.pop(0)


def put_data(api, image_id: str, data: bytes, body=None) -> webob.Response:
    req = webob.Request.blank(f"/images/{image_id}", method="PUT")
    req.headers.update(
        {
            "X-Identity-Status": "Confirmed",
            "X-Tenant-Id": "alice",
            "X-User-Id": "user-alice",
            "X-Roles": "member",
            **HEADERS,
        }
    )
    if body is None:
        req.body = data
    else:
        req.environ["wsgi.input"] = body
        req.content_length = len(data)
    return req.get_response(api.app)


def killed_image(api) -> str:
    """An image whose upload failed (the client went away): killed, no data."""
    image = api.call("POST", "/images", headers={**HEADERS, "x-image-meta-name": "r"}).json
    image_id = image["image"]["id"]
    body = HeldBody(b"abc", b"", fail=True)
    body.go.set()
    assert put_data(api, image_id, b"abcdef", body).status_int == 400
    assert api.registry.get_image(admin_context(), image_id)["status"] == "killed"
    return image_id


def test_an_upload_to_a_killed_image_without_data_activates_it(api):
    image_id = killed_image(api)
    data = b"retried bytes" * 1000
    resp = put_data(api, image_id, data)
    assert resp.status_int == 200, resp.text
    assert resp.json["image"]["status"] == "active"
    assert resp.json["image"]["checksum"] == hashlib.md5(data).hexdigest()
    got = api.call("GET", f"/images/{image_id}")
    assert got.body == data
    # the retry's data has a name of its own in the store
    location = api.registry.get_image(admin_context(), image_id)["location"]
    assert location.startswith(f"memory://{image_id}.")
    assert list(api.store._images) == [location.removeprefix("memory://")]


def test_an_upload_to_a_killed_image_with_data_or_an_active_one_is_refused(api):
    image_id = killed_image(api)
    api.registry.update_image(admin_context(), image_id, {"location": "memory://elsewhere"})
    resp = put_data(api, image_id, b"more")
    assert resp.status_int == 409
    assert "Cannot upload to an unqueued image" in resp.text
    active = api.upload(b"bytes").json["image"]["id"]
    assert put_data(api, active, b"more").status_int == 409


def test_a_retry_with_a_wrong_checksum_kills_the_image_again_and_leaves_no_data(api):
    image_id = killed_image(api)
    resp = put_data(api, image_id, b"x" * 10)
    assert resp.status_int == 200  # and it may be retried once more after a failure too
    other = killed_image(api)
    api.registry.update_image(admin_context(), other, {"checksum": "0" * 32})
    assert put_data(api, other, b"y" * 10).status_int == 400
    assert api.registry.get_image(admin_context(), other)["status"] == "killed"
    assert all(not key.startswith(other) for key in api.store._images)


@pytest.mark.parametrize("stale_ends", ["complete", "broken"])
def test_a_stale_upload_that_wakes_up_late_changes_nothing_of_the_retry(
    api, sqlite_database, stale_ends
):
    """Upload 1 stalls; its lease runs out and a sweep kills the image; upload 2 retries
    it. Upload 1 wakes up while upload 2 still streams, its data complete or its stream
    broken: it neither activates nor kills the image, and upload 2 then activates it
    with its own data; nothing of upload 1 is left behind."""
    image = api.call("POST", "/images", headers={**HEADERS, "x-image-meta-name": "r"}).json
    image_id = image["image"]["id"]
    stale_data, new_data = b"A" * 5000, b"B" * 7000
    stale_body = HeldBody(stale_data[:100], stale_data[100:], fail=stale_ends == "broken")
    new_body = HeldBody(new_data[:100], new_data[100:])
    answers = {}

    def upload(n: int, data: bytes, body: HeldBody) -> threading.Thread:
        thread = threading.Thread(
            target=lambda: answers.setdefault(n, put_data(api, image_id, data, body))
        )
        thread.start()
        assert body.sent_head.wait(10)
        return thread

    stale = upload(1, stale_data, stale_body)
    (stale_holder,) = [holder for holder, _ in leases(sqlite_database).values()]
    age(sqlite_database, image_id, 120)
    swept = api.registry.sweep_leases(admin_context(), 60, 10)
    assert [lease["image_id"] for lease in swept] == [image_id]

    retry = upload(2, new_data, new_body)
    stale_body.go.set()
    stale.join(10)
    assert answers[1].status_int in (400, 409), answers[1].text
    assert api.registry.get_image(admin_context(), image_id)["status"] == "saving"
    new_body.go.set()
    retry.join(10)
    assert answers[2].status_int == 200, answers[2].text

    current = api.registry.get_image(admin_context(), image_id)
    assert current["status"] == "active"
    assert current["checksum"] == hashlib.md5(new_data).hexdigest()
    assert api.call("GET", f"/images/{image_id}").body == new_data
    # only the retry's data is in the store: the stale upload's was removed
    assert list(api.store._images) == [current["location"].removeprefix("memory://")]
    assert stale_holder.startswith("unit-node#")


def test_a_stale_upload_cannot_activate_or_kill_an_image_another_upload_holds(api):
    """The registry's side: activation and kill name their lease holder; another's gets
    409 and the image is unchanged."""
    image = api.registry.add_image(admin_context(), {"name": "x", "status": "queued"})
    image_id = image["id"]
    ctx = admin_context()
    api.registry.update_image(
        ctx, image_id, {"status": "saving"}, from_state="queued", lease=("node#new", 60)
    )
    for changes in ({"status": "active", "size": 1}, {"status": "killed"}):
        with pytest.raises(Exception) as caught:
            api.registry.update_image(
                ctx, image_id, changes, from_state="saving", held_by="node#stale"
            )
        assert getattr(caught.value, "status", None) == 409
        assert api.registry.get_image(ctx, image_id)["status"] == "saving"
    done = api.registry.update_image(
        ctx, image_id, {"status": "active", "size": 1}, from_state="saving", held_by="node#new"
    )
    assert done["status"] == "active"


def test_an_upload_that_finds_the_image_taken_in_the_meantime_is_409(api, sqlite_database):
    """Another upload takes the image to saving between this one's checks and its own
    start (here: while its metadata update runs): this one goes no further."""
    image_id = api.call("POST", "/images", headers={**HEADERS, "x-image-meta-name": "r"}).json
    image_id = image_id["image"]["id"]
    other = "other-node#0123456789abcdef"
    update = api.registry.update_image

    def racing(context, target, meta, **kw):
        if "status" not in meta:  # the metadata update that comes before the upload
            update(
                admin_context(),
                target,
                {"status": "saving"},
                from_state="queued",
                lease=(other, 60),
            )
        return update(context, target, meta, **kw)

    api.registry.update_image = racing
    resp = put_data(api, image_id, b"late bytes")
    assert resp.status_int == 409, resp.text
    assert api.registry.get_image(admin_context(), image_id)["status"] == "saving"
    assert leases(sqlite_database)[image_id][0] == other
