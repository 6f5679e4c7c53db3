"""Upload leases on every backend: taken as an image goes saving, renewed by their
holder, gone as the image leaves saving, and swept (killed) only once expired."""

import datetime
import threading

import pytest
import sqlalchemy as sa

from glance_lite import exceptions
from glance_lite.db import models, session
from tests.helpers import admin_context, make_context

ALICE = make_context("alice")
BOB = make_context("bob")
ADMIN = admin_context("admins")
NODE_A = "host-a:9292"
NODE_B = "host-b:9292"


def saving_image(database, holder: str | None = NODE_A, duration: int = 60) -> str:
    """A queued image of alice's set saving as glance-api does, taking a lease."""
    image = database.image_create(ALICE, {"name": "up", "status": "queued"})
    lease = None if holder is None else (holder, duration)
    database.image_update(
        ALICE, image["id"], {"status": "saving"}, from_state="queued", lease=lease
    )
    return image["id"]


def leases(database) -> dict[str, tuple]:
    table = models.image_leases
    with database.engine.connect() as conn:
        found = conn.execute(sa.select(table.c.image_id, table.c.holder, table.c.expires_at))
        return {image_id: (holder, expires_at) for image_id, holder, expires_at in found}


def age(database, image_id: str, seconds: int) -> None:
    """Move the image's lease expiry and its updated_at `seconds` into the past."""
    delta = datetime.timedelta(seconds=seconds)
    images, table = models.images, models.image_leases
    lease = leases(database).get(image_id)
    with session.writer(database.engine).begin() as conn:
        if lease is not None:
            conn.execute(
                table.update()
                .where(table.c.image_id == image_id)
                .values(expires_at=lease[1] - delta)
            )
        conn.execute(
            images.update()
            .where(images.c.id == image_id)
            .values(updated_at=models.utcnow() - delta)
        )


def test_setting_an_image_saving_takes_the_lease_in_the_same_update(database):
    before = models.utcnow().replace(microsecond=0)
    image_id = saving_image(database, duration=120)
    holder, expires_at = leases(database)[image_id]
    assert holder == NODE_A
    assert before + datetime.timedelta(seconds=119) <= expires_at
    assert expires_at <= models.utcnow() + datetime.timedelta(seconds=121)


@pytest.mark.parametrize("status", ["active", "killed", "deleted", "queued"])
def test_the_lease_goes_as_the_image_leaves_saving(database, status):
    image_id = saving_image(database)
    database.image_update(ALICE, image_id, {"status": status}, from_state="saving")
    assert image_id not in leases(database)


def test_a_delete_of_a_saving_image_drops_its_lease(database):
    image_id = saving_image(database)
    database.image_destroy(ALICE, image_id)
    assert leases(database) == {}


def test_an_update_that_keeps_the_status_keeps_the_lease(database):
    image_id = saving_image(database)
    database.image_update(ALICE, image_id, {"name": "renamed"})
    assert image_id in leases(database)


def test_the_holder_renews_its_lease(database):
    image_id = saving_image(database, duration=60)
    age(database, image_id, 50)
    lease = database.image_lease_renew(ALICE, image_id, NODE_A, 60)
    assert lease["holder"] == NODE_A
    assert lease["expires_at"] > models.utcnow() + datetime.timedelta(seconds=55)
    assert leases(database)[image_id][1] > models.utcnow() + datetime.timedelta(seconds=55)


def test_another_node_cannot_take_a_live_lease_but_may_take_an_expired_one(database):
    image_id = saving_image(database)
    with pytest.raises(exceptions.Conflict, match=f"leased by {NODE_A}"):
        database.image_lease_renew(ALICE, image_id, NODE_B, 60)
    age(database, image_id, 120)
    database.image_lease_renew(ALICE, image_id, NODE_B, 60)
    assert leases(database)[image_id][0] == NODE_B


def test_a_saving_image_without_a_lease_gets_one_on_renewal(database):
    image_id = saving_image(database, holder=None)
    assert leases(database) == {}
    database.image_lease_renew(ALICE, image_id, NODE_A, 60)
    assert leases(database)[image_id][0] == NODE_A


def test_no_lease_on_an_image_that_is_not_saving(database):
    image_id = saving_image(database)
    database.image_update(ALICE, image_id, {"status": "active"}, from_state="saving")
    with pytest.raises(exceptions.Conflict, match="is active, not saving"):
        database.image_lease_renew(ALICE, image_id, NODE_A, 60)
    assert leases(database) == {}


def test_only_who_may_change_the_image_renews_its_lease(database):
    image_id = saving_image(database)
    with pytest.raises(exceptions.NotFound):
        database.image_lease_renew(BOB, image_id, NODE_A, 60)
    database.image_lease_renew(ADMIN, image_id, NODE_A, 60)


def test_release_by_the_holder_only(database):
    image_id = saving_image(database)
    with pytest.raises(exceptions.Conflict, match=f"held by {NODE_A}"):
        database.image_lease_release(ALICE, image_id, NODE_B)
    database.image_lease_release(ALICE, image_id, NODE_A)
    assert leases(database) == {}
    database.image_lease_release(ALICE, image_id, NODE_A)  # none left: nothing to do


def test_a_sweep_kills_only_saving_images_whose_lease_expired(database):
    live = saving_image(database, NODE_A)
    dead = saving_image(database, NODE_B)
    age(database, dead, 61)
    done = database.image_create(ALICE, {"name": "done", "status": "active"})
    killed = database.image_leases_sweep(ADMIN, grace=60, limit=100)
    assert [(lease["image_id"], lease["holder"]) for lease in killed] == [(dead, NODE_B)]
    assert database.image_get(ALICE, dead)["status"] == "killed"
    assert database.image_get(ALICE, live)["status"] == "saving"
    assert database.image_get(ALICE, done["id"])["status"] == "active"
    assert set(leases(database)) == {live}
    assert database.image_leases_sweep(ADMIN, grace=60, limit=100) == []


def test_a_killed_image_shows_killed_in_the_listing_documents(database):
    dead = saving_image(database)
    age(database, dead, 61)
    database.image_leases_sweep(ADMIN, grace=60, limit=100)
    since = {"changes_since": datetime.datetime(2000, 1, 1)}  # killed images show there only
    listed = database.image_get_all_documents(ADMIN, since, limit=10)
    assert b'"status": "killed"' in listed


def test_a_saving_image_without_a_lease_is_swept_after_the_grace(database):
    image_id = saving_image(database, holder=None)
    assert database.image_leases_sweep(ADMIN, grace=60, limit=100) == []
    age(database, image_id, 61)
    killed = database.image_leases_sweep(ADMIN, grace=60, limit=100)
    assert [(lease["image_id"], lease["holder"]) for lease in killed] == [(image_id, None)]
    assert database.image_get(ALICE, image_id)["status"] == "killed"


def test_a_renewal_after_the_sweep_finds_the_image_killed(database):
    image_id = saving_image(database)
    age(database, image_id, 61)
    database.image_leases_sweep(ADMIN, grace=60, limit=100)
    with pytest.raises(exceptions.Conflict, match="is killed, not saving"):
        database.image_lease_renew(ALICE, image_id, NODE_A, 60)
    with pytest.raises(exceptions.Conflict):
        database.image_update(ALICE, image_id, {"status": "active"}, from_state="saving")


def test_a_sweep_takes_at_most_limit_images(database):
    ids = [saving_image(database) for _ in range(3)]
    for image_id in ids:
        age(database, image_id, 61)
    first = database.image_leases_sweep(ADMIN, grace=60, limit=2)
    second = database.image_leases_sweep(ADMIN, grace=60, limit=2)
    assert len(first) == 2 and len(second) == 1
    assert {lease["image_id"] for lease in first + second} == set(ids)


def test_only_an_admin_sweeps(database):
    with pytest.raises(exceptions.Forbidden):
        database.image_leases_sweep(ALICE, grace=60, limit=100)


def test_concurrent_sweeps_kill_each_image_once(database):
    ids = [saving_image(database) for _ in range(6)]
    for image_id in ids:
        age(database, image_id, 61)
    results: list[list[dict]] = []
    start = threading.Barrier(3)

    def sweep():
        start.wait()
        results.append(database.image_leases_sweep(ADMIN, grace=60, limit=100))

    threads = [threading.Thread(target=sweep) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    killed = [lease["image_id"] for result in results for lease in result]
    assert sorted(killed) == sorted(ids)


def test_a_sweep_never_kills_an_image_activated_after_it_found_it(database, monkeypatch):
    """The sweep finds its candidates without locks, then locks and reads them again:
    an upload that went active in between is left alone, and so is a renewed lease."""
    activated = saving_image(database)
    renewed = saving_image(database)
    for image_id in (activated, renewed):
        age(database, image_id, 61)
    write = database._write

    def finish_uploads_first():
        monkeypatch.setattr(database, "_write", write)
        database.image_update(ALICE, activated, {"status": "active"}, from_state="saving")
        database.image_lease_renew(ALICE, renewed, NODE_A, 60)
        return write()

    monkeypatch.setattr(database, "_write", finish_uploads_first)
    assert database.image_leases_sweep(ADMIN, grace=60, limit=100) == []
    assert database.image_get(ALICE, activated)["status"] == "active"
    assert database.image_get(ALICE, renewed)["status"] == "saving"
