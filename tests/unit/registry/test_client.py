"""The registry client against the real registry app, in-process (no socket)."""

import json
import socket
import threading
import time

import pytest
import urllib3.connection

from glance_lite import context, exceptions
from glance_lite.registry.app import make_app
from glance_lite.registry.client import RegistryClient
from glance_lite.registry.secret import secured
from tests.helpers import admin_context, make_context
from tests.wsgi_transport import session_for

URL = "http://registry.test"


def trusted_registry(database, secret=None):
    app = make_app(
        database=database, api_limit_max=1000, limit_param_default=25, max_json_body=1 << 20
    )
    app = context.TrustedAuthContext(
        app,
        owner_is_tenant=True,
        admin_role="admin",
        allow_anonymous_access=False,
        max_request_id_length=64,
    )
    return secured(app, secret)


@pytest.fixture
def client(sqlite_database):
    app = trusted_registry(sqlite_database, secret="s3")
    return RegistryClient(URL, secret="s3", send_identity_headers=True, session=session_for(app))


ALICE = make_context("alice", auth_token="tok-a")
BOB = make_context("bob")


def test_create_show_update_and_delete_round_trip(client):
    image = client.add_image(ALICE, {"name": "one", "status": "queued", "properties": {"a": "1"}})
    assert image["owner"] == "alice"
    assert client.get_image(ALICE, image["id"])["properties"] == {"a": "1"}

    updated = client.update_image(ALICE, image["id"], {"properties": {"b": "2"}})
    assert updated["properties"] == {"a": "1", "b": "2"}
    purged = client.update_image(ALICE, image["id"], {"properties": {"c": "3"}}, purge_props=True)
    assert purged["properties"] == {"c": "3"}

    deleted = client.delete_image(ALICE, image["id"])
    assert deleted["deleted"] is True
    with pytest.raises(exceptions.NotFound):
        client.get_image(ALICE, image["id"])


def test_from_state_mismatch_is_a_conflict(client):
    image = client.add_image(ALICE, {"name": "x", "status": "queued"})
    with pytest.raises(exceptions.Conflict):
        client.update_image(ALICE, image["id"], {"status": "active"}, from_state="saving")


def names(client, context, *, detail: bool) -> list[str]:
    listing = json.loads(client.get_images_json(context, "", detail=detail))
    return [i["name"] for i in listing["images"]]


def test_registry_errors_keep_their_status_and_text(client):
    with pytest.raises(exceptions.Invalid, match="limit param must be an integer"):
        client.get_images_json(ALICE, "limit=x", detail=False)
    with pytest.raises(exceptions.NotFound):
        client.get_image(BOB, client.add_image(ALICE, {"status": "queued"})["id"])


def test_identity_headers_make_the_registry_see_the_tenant(client):
    client.add_image(ALICE, {"name": "a", "status": "queued"})
    client.add_image(BOB, {"name": "b", "status": "queued"})
    assert names(client, ALICE, detail=True) == ["a"]
    assert names(client, BOB, detail=False) == ["b"]


def test_a_wrong_secret_is_refused(sqlite_database):
    app = trusted_registry(sqlite_database, secret="s3")
    client = RegistryClient(
        URL, secret="nope", send_identity_headers=True, session=session_for(app)
    )
    with pytest.raises(exceptions.NotAuthenticated):
        client.get_images_json(ALICE, "", detail=False)


def test_members_and_shared_images(client):
    image = client.add_image(ALICE, {"name": "s", "status": "queued"})
    client.add_member(ALICE, image["id"], "bob", can_share=None)
    client.add_member(ALICE, image["id"], "carol", can_share=True)
    members = client.get_image_members(ALICE, image["id"])
    assert [(m["member_id"], m["can_share"]) for m in members] == [("bob", False), ("carol", True)]
    assert client.get_member_images(BOB, "bob") == [{"image_id": image["id"], "can_share": False}]
    client.replace_members(
        ALICE, image["id"], {"memberships": [{"member_id": "dave", "can_share": False}]}
    )
    assert [m["member_id"] for m in client.get_image_members(ALICE, image["id"])] == ["dave"]
    client.delete_member(ALICE, image["id"], "dave")
    with pytest.raises(exceptions.NotFound, match="Membership could not be found"):
        client.delete_member(ALICE, image["id"], "dave")


def test_storage_usage_counts_the_owners_sized_images(client):
    admin = admin_context("ops")
    one = client.add_image(ALICE, {"status": "active", "size": 100, "location": "file:///x/1"})
    client.add_image(ALICE, {"status": "active", "size": 50, "location": "file:///x/2"})
    client.add_image(BOB, {"status": "active", "size": 7, "location": "file:///x/3"})
    assert client.get_storage_usage(ALICE, "alice") == 150
    assert client.get_storage_usage(ALICE, "alice", exclude_image_id=one["id"]) == 50
    assert client.get_storage_usage(admin, "bob") == 7
    with pytest.raises(exceptions.Forbidden):
        client.get_storage_usage(BOB, "alice")


def test_unreachable_registry_is_service_unavailable_and_nothing_was_sent():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = RegistryClient(f"http://127.0.0.1:{port}", timeout=2, connect_timeout=2)
    with pytest.raises(exceptions.RegistryUnavailable, match="registry is unavailable") as caught:
        client.update_image(ALICE, "abc", {"name": "x"})
    assert not caught.value.maybe_applied
    assert caught.value.status == 503 and caught.value.retry_after > 0


def test_a_registry_that_never_answers_is_unavailable_after_the_read_timeout():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)  # the kernel accepts connections; no one reads them
        client = RegistryClient(
            f"http://127.0.0.1:{server.getsockname()[1]}", timeout=0.05, connect_timeout=1
        )
        started = time.monotonic()
        waited = r"no answer within 0\.05 seconds"
        with pytest.raises(exceptions.RegistryUnavailable, match=waited) as caught:
            client.update_image(ALICE, "abc", {"name": "x"})
        assert time.monotonic() - started < 2
    assert caught.value.maybe_applied  # it was sent: it may still be applied


def test_storage_usage_of_no_owner_counts_the_ownerless_images(client):
    admin = admin_context(None)
    client.add_image(admin, {"status": "active", "size": 30, "location": "file:///x/9"})
    client.add_image(ALICE, {"status": "active", "size": 5, "location": "file:///x/8"})
    assert client.get_storage_usage(admin, None) == 30


@pytest.mark.parametrize("image_id", ["..", ".", "a/b", "%2e%2e"])
def test_ids_with_dots_or_slashes_stay_one_path_segment(client, image_id):
    with pytest.raises(exceptions.NotFound):
        client.get_image(ALICE, image_id)
    with pytest.raises(exceptions.NotFound):
        client.get_image_members(ALICE, image_id)


def test_a_registry_that_answers_503_is_unavailable_with_its_own_explanation():
    def app(environ, start_response):
        start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
        return [b"503 Service Unavailable\n\nCould not reach the image database: down"]

    client = RegistryClient(URL, session=session_for(app))
    with pytest.raises(exceptions.RegistryUnavailable) as caught:
        client.get_image(ALICE, "abc")
    assert caught.value.retry_after > 0
    assert not caught.value.maybe_applied  # it answered: nothing left undecided
    assert caught.value.detail == "Could not reach the image database: down"


def test_a_listing_query_too_long_for_the_registry_is_a_414_before_sending(client):
    query = "name=" + "x" * 8200
    with pytest.raises(exceptions.URITooLong, match=r"too long for the image registry: 8205"):
        client.get_images_json(ALICE, query, detail=True)


def test_the_registrys_414_stays_a_414():
    assert isinstance(exceptions.from_status(414, "Request URI Too Long"), exceptions.URITooLong)


class ClosingRegistry:
    """A registry stand-in on a real socket: on its first connection it answers the
    first request (kept alive), then reads the next one and closes without answering,
    as a registry worker going away does to a request that arrives as it closes an idle
    connection; every later connection is answered. `requests` lists what it read."""

    ANSWER = b'{"image": {"id": "abc", "name": "x", "properties": {}}}'

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.requests: list[bytes] = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        first = True
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn, conn.makefile("rb") as reader:
                conn.settimeout(5)
                while self.read_request(reader):
                    if first and len(self.requests) == 2:
                        break  # the second request on the first connection: closed unread
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"Content-Length: %d\r\n\r\n%s" % (len(self.ANSWER), self.ANSWER)
                    )
            first = False

    def read_request(self, reader) -> bool:
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            line = reader.readline()
            if not line:
                return False
            head += line
        length = [
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ]
        if length and length[0]:
            reader.read(length[0])
        self.requests.append(head.split(b" ", 1)[0])
        return True

    def close(self) -> None:
        self.server.close()


def test_a_read_on_a_kept_alive_connection_closed_under_it_is_sent_once_more():
    registry = ClosingRegistry()
    try:
        client = RegistryClient(registry.url, timeout=5, connect_timeout=5)
        assert client.get_image(ALICE, "abc")["name"] == "x"
        assert client.get_image(ALICE, "abc")["name"] == "x"  # closed unanswered, then again
        assert registry.requests == [b"GET", b"GET", b"GET"]
    finally:
        registry.close()


def test_a_write_on_a_kept_alive_connection_closed_under_it_is_not_sent_twice():
    registry = ClosingRegistry()
    try:
        client = RegistryClient(registry.url, timeout=5, connect_timeout=5)
        assert client.get_image(ALICE, "abc")["name"] == "x"
        with pytest.raises(exceptions.RegistryUnavailable) as caught:
            client.update_image(ALICE, "abc", {"name": "y"})
        assert caught.value.maybe_applied  # the caller settles it; it is never sent again
        assert registry.requests == [b"GET", b"PUT"]
    finally:
        registry.close()


def test_a_request_and_its_body_go_out_in_one_send(monkeypatch):
    """http.client sends a request's head and its body apart: a second send() for the
    api and a second wake-up and read for the registry on every create and update."""
    sent: list[bytes] = []
    plain_send = urllib3.connection.HTTPConnection.send

    def recording(self, data):
        sent.append(bytes(data))
        return plain_send(self, data)

    monkeypatch.setattr(urllib3.connection.HTTPConnection, "send", recording)
    registry = ClosingRegistry()
    try:
        client = RegistryClient(registry.url, timeout=5, connect_timeout=5)
        assert client.update_image(ALICE, "abc", {"name": "y"})["name"] == "x"
    finally:
        registry.close()
    assert len(sent) == 1
    assert sent[0].startswith(b"PUT /images/abc HTTP/1.1\r\n")
    assert sent[0].endswith(b'\r\n\r\n{"image": {"name": "y"}}')
