"""The registry's upload-lease routes: take with the saving update, renew, release,
sweep; and every bad body a clear 400."""

import pytest

from tests.unit.db.test_leases import age, leases
from tests.unit.registry.conftest import Caller, Registry

LEASE = {"holder": "node-a:9292", "duration": 60}


def saving(caller: Caller, lease: dict | None = LEASE) -> str:
    image_id = caller.create(name="up", status="queued")["id"]
    body = {"image": {"status": "saving"}, "from_state": "queued"}
    if lease is not None:
        body["lease"] = lease
    resp = caller.put(f"/images/{image_id}", body)
    assert resp.status_int == 200, resp.text
    return image_id


def test_take_renew_release_through_the_routes(registry: Registry):
    alice = registry.tenant("alice")
    image_id = saving(alice)
    assert leases(registry.database)[image_id][0] == "node-a:9292"
    renewed = alice.put(f"/images/{image_id}/lease", {"lease": LEASE})
    assert renewed.status_int == 200, renewed.text
    assert renewed.json["lease"]["holder"] == "node-a:9292"
    assert renewed.json["lease"]["expires_at"]
    taken = alice.put(f"/images/{image_id}/lease", {"lease": {**LEASE, "holder": "node-b"}})
    assert taken.status_int == 409 and "leased by node-a:9292" in taken.text
    released = alice.delete(f"/images/{image_id}/lease?holder=node-a:9292")
    assert released.status_int == 204
    assert leases(registry.database) == {}


def test_the_sweep_route_kills_expired_uploads_for_an_admin_only(registry: Registry):
    alice = registry.tenant("alice")
    image_id = saving(alice, {**LEASE, "holder": "dead-node"})
    age(registry.database, image_id, 61)
    refused = alice.post("/leases/sweep", {"grace": 60})
    assert refused.status_int == 403
    swept = registry.admin.post("/leases/sweep", {"grace": 60, "limit": 10})
    assert swept.status_int == 200, swept.text
    [lease] = swept.json["killed"]
    assert (lease["image_id"], lease["holder"], lease["partial_location"]) == (
        image_id,
        "dead-node",
        None,
    )
    assert alice.get(f"/images/{image_id}").json["image"]["status"] == "killed"
    assert registry.admin.post("/leases/sweep", {"grace": 60}).json == {"killed": []}


@pytest.mark.parametrize(
    ("lease", "message"),
    [
        ("node", "lease must be {"),
        ({"duration": 60}, "lease holder must be a string of 1 to 255"),
        ({"holder": "", "duration": 60}, "lease holder must be a string of 1 to 255"),
        ({"holder": "n" * 256, "duration": 60}, "lease holder must be a string of 1 to 255"),
        ({"holder": "a\x00b", "duration": 60}, "NUL characters"),
        ({"holder": "n"}, "duration must be a number of seconds from 1 to 86400"),
        ({"holder": "n", "duration": "60"}, "duration must be a number of seconds"),
        ({"holder": "n", "duration": True}, "duration must be a number of seconds"),
        ({"holder": "n", "duration": 0}, "duration must be a number of seconds"),
        ({"holder": "n", "duration": 2**70}, "duration must be a number of seconds"),
    ],
)
def test_a_bad_lease_is_a_400_naming_it(registry: Registry, lease, message):
    alice = registry.tenant("alice")
    image_id = alice.create(name="up", status="queued")["id"]
    body = {"image": {"status": "saving"}, "from_state": "queued", "lease": lease}
    resp = alice.put(f"/images/{image_id}", body)
    assert resp.status_int == 400 and message in resp.text, resp.text
    assert alice.get(f"/images/{image_id}").json["image"]["status"] == "queued"
    renew = alice.put(f"/images/{image_id}/lease", {"lease": lease})
    assert renew.status_int == 400 and message in renew.text, renew.text


def test_a_lease_without_the_saving_status_is_a_400(registry: Registry):
    alice = registry.tenant("alice")
    image_id = alice.create(name="up", status="queued")["id"]
    resp = alice.put(f"/images/{image_id}", {"image": {"name": "x"}, "lease": LEASE})
    assert resp.status_int == 400 and "sets status saving" in resp.text
    assert alice.get(f"/images/{image_id}").json["image"]["name"] == "up"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], 'The sweep body must be {"grace"'),
        ({}, "grace must be a number of seconds"),
        ({"grace": -1}, "grace must be a number of seconds"),
        ({"grace": 60, "limit": 0}, "limit must be an integer from 1 to 1000"),
        ({"grace": 60, "limit": 5000}, "limit must be an integer from 1 to 1000"),
    ],
)
def test_a_bad_sweep_body_is_a_400(registry: Registry, body, message):
    resp = registry.admin.post("/leases/sweep", body)
    assert resp.status_int == 400 and message in resp.text, resp.text


def test_release_needs_the_holder_and_renewal_a_saving_image(registry: Registry):
    alice = registry.tenant("alice")
    image_id = alice.create(name="up", status="queued")["id"]
    resp = alice.delete(f"/images/{image_id}/lease")
    assert resp.status_int == 400 and "holder is required" in resp.text
    resp = alice.put(f"/images/{image_id}/lease", {"lease": LEASE})
    assert resp.status_int == 409 and "is queued, not saving" in resp.text
    resp = alice.put("/images/00000000-0000-0000-0000-000000000000/lease", {"lease": LEASE})
    assert resp.status_int == 404
