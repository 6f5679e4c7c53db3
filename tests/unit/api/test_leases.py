"""glance-api's side of upload leases: taken with the saving update, renewed on a
timer while the bytes stream, gone with the upload; the sweeper kills expired ones
and removes their partial data."""

import datetime
import re
import socket
import time

import pytest
import sqlalchemy as sa
from oslo_config import cfg

from glance_lite import exceptions, opts
from glance_lite.api.leases import (
    LeaseKeeper,
    LeaseTerms,
    Sweeper,
    node_id_from_conf,
    terms_from_conf,
)
from glance_lite.crypt import LocationCipher
from glance_lite.db import models
from glance_lite.registry.client import RegistryClient
from glance_lite.store.base import StoreNotFound
from tests.helpers import admin_context, make_context
from tests.unit.db.test_leases import age, leases

ALICE = make_context("alice", roles=["member"])
TERMS = LeaseTerms(node_id="unit-node", duration=60)


def test_the_lease_is_taken_by_the_saving_update_and_dropped_by_the_activation(
    api, sqlite_database, monkeypatch
):
    during = []
    add = api.store.add

    def add_and_look(image_id, chunks, size):
        during.append(leases(sqlite_database))
        return add(image_id, chunks, size)

    monkeypatch.setattr(api.store, "add", add_and_look)
    resp = api.upload(b"x" * 10000)
    assert resp.status_int == 201, resp.text
    image_id = resp.json["image"]["id"]
    # each upload holds the lease under a name of its own: the node's id and a token
    [[(leased, holder)]] = [[(k, v[0]) for k, v in found.items()] for found in during]
    assert leased == image_id
    assert re.fullmatch(r"unit-node#[0-9a-f]{16}", holder)
    assert leases(sqlite_database) == {}


def saving_image(api) -> str:
    image = api.registry.add_image(ALICE, {"name": "up", "status": "queued", "owner": "alice"})
    api.registry.update_image(
        ALICE, image["id"], {"status": "saving"}, from_state="queued", lease=("unit-node", 60)
    )
    return image["id"]


class BriskTerms(LeaseTerms):
    """Terms whose keeper renews every 20 ms: the real timer, a short wait."""

    @property
    def renew_every(self) -> float:
        return 0.02


def test_a_lease_is_renewed_three_times_per_duration():
    assert TERMS.renew_every == 20


def test_a_keeper_renews_on_its_timer_until_stopped(api, sqlite_database):
    image_id = saving_image(api)
    age(sqlite_database, image_id, 59)
    expiry = leases(sqlite_database)[image_id][1]
    terms = BriskTerms(node_id="unit-node", duration=60)
    with LeaseKeeper(api.registry, ALICE, image_id, terms) as keeper:
        deadline = time.monotonic() + 5
        while keeper.renewals < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
    assert keeper.renewals >= 2
    # renewed for the terms' duration, not for the 20 ms between renewals
    assert leases(sqlite_database)[image_id][1] - expiry > datetime.timedelta(seconds=50)
    renewals = keeper.renewals
    time.sleep(5 * terms.renew_every)
    assert keeper.renewals <= renewals + 1  # at most the one under way when it stopped


def test_a_keeper_stops_once_the_lease_is_lost_and_retries_an_outage(api, sqlite_database):
    image_id = saving_image(api)
    keeper = LeaseKeeper(api.registry, ALICE, image_id, TERMS, start=lambda fn: None)
    assert keeper.renew() == TERMS.renew_every and keeper.renewals == 1

    class Down:
        def renew_lease(self, *args):
            raise exceptions.RegistryUnavailable("down", maybe_applied=True)

    assert LeaseKeeper(Down(), ALICE, image_id, TERMS).renew() == 2.0
    api.registry.update_image(ALICE, image_id, {"status": "killed"}, from_state="saving")
    assert keeper.renew() is None


def test_the_sweeper_kills_expired_uploads_and_discards_their_partial_data(api, sqlite_database):
    dead, live = saving_image(api), saving_image(api)
    partial = api.store.add(dead, [b"half"], None).location
    api.registry.renew_lease(ALICE, dead, "unit-node", 60, partial)
    age(sqlite_database, dead, 61)
    sweeper = Sweeper(api.registry, api.stores, admin_context(None), grace=60, interval=1)
    assert sweeper.sweep() == [dead]
    assert api.registry.get_image(ALICE, dead)["status"] == "killed"
    assert api.registry.get_image(ALICE, live)["status"] == "saving"
    with pytest.raises(StoreNotFound):
        api.store.get_size(partial)
    assert sweeper.sweep() == []


def test_a_partial_location_is_stored_encrypted_and_comes_back_in_clear(api, sqlite_database):
    cipher = LocationCipher("k" * 32)
    registry = RegistryClient(
        "http://registry.test", send_identity_headers=True, session=api.registry.session
    )
    registry.cipher = cipher
    image_id = saving_image(api)
    lease = registry.renew_lease(ALICE, image_id, "unit-node", 60, "memory://partial")
    assert lease["partial_location"] == "memory://partial"
    table = models.image_leases
    with sqlite_database.engine.connect() as conn:
        stored = conn.execute(sa.select(table.c.partial_location)).scalar_one()
    assert stored != "memory://partial" and cipher.decrypt(stored) == "memory://partial"
    age(sqlite_database, image_id, 61)
    [killed] = registry.sweep_leases(admin_context(None), 60, 10)
    assert killed["partial_location"] == "memory://partial"


def test_a_holder_releases_its_lease_through_the_client(api, sqlite_database):
    image_id = saving_image(api)
    with pytest.raises(exceptions.Conflict):
        api.registry.release_lease(ALICE, image_id, "other-node")
    api.registry.release_lease(ALICE, image_id, "unit-node")
    assert leases(sqlite_database) == {}


def test_the_node_id_defaults_to_the_hostname_and_the_bind_port():
    conf = cfg.ConfigOpts()
    opts.register_api_opts(conf)
    conf(args=[], default_config_files=[])
    assert node_id_from_conf(conf) == f"{socket.gethostname()}:9292"
    conf.set_override("bind_port", 9393)
    assert node_id_from_conf(conf) == f"{socket.gethostname()}:9393"
    conf.set_override("node_id", "api-7")
    assert terms_from_conf(conf) == LeaseTerms(node_id="api-7", duration=300)
