"""Registry writes whose answers are lost (applied, then no answer): the client gets 503
with Retry-After, and what the write left open is settled in the background."""

import json
import time


def wait_for(predicate, timeout: float = 5.0) -> None:
    """Until `predicate()` holds (the settling runs in a background thread)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "not settled in time"
        time.sleep(0.01)


def once(predicate):
    """A loses_answer that picks the first request `predicate` accepts, and no other."""
    picked = []

    def loses(request) -> bool:
        if not picked and predicate(request):
            picked.append(request)
            return True
        return False

    return loses


def sets_status(status: str):
    def predicate(request) -> bool:
        if request.method != "PUT" or not request.body:
            return False
        return json.loads(request.body)["image"].get("status") == status

    return predicate


def status(api, image_id: str) -> str:
    return api.call("HEAD", f"/images/{image_id}").headers["x-image-meta-status"]


def test_an_activation_whose_answer_is_lost_is_503_and_the_image_keeps_its_data(make_api):
    api = make_api(loses_answer=once(sets_status("active")))
    resp = api.upload(b"kept bytes")
    assert resp.status_int == 503, resp.text
    assert int(resp.headers["Retry-After"]) > 0
    listing = api.call("GET", "/images/detail").json
    (image,) = listing["images"]
    image_id = image["id"]
    assert api.store._used() == len(b"kept bytes")  # the data was not removed
    assert status(api, image_id) == "active"
    resp = api.call("GET", f"/images/{image_id}")
    assert resp.status_int == 200 and resp.body == b"kept bytes"


def test_a_delete_whose_status_change_is_answered_late_is_finished(make_api):
    api = make_api(loses_answer=once(sets_status("deleted")))
    image_id = api.upload(b"doomed").json["image"]["id"]
    resp = api.call("DELETE", f"/images/{image_id}")
    assert resp.status_int == 503, resp.text
    wait_for(lambda: api.call("HEAD", f"/images/{image_id}").status_int == 404)
    assert api.store._used() == 0


def test_a_start_of_saving_answered_late_leaves_the_image_killed(make_api):
    api = make_api(loses_answer=once(sets_status("saving")))
    resp = api.upload(b"never stored")
    assert resp.status_int == 503, resp.text
    listing = api.call("GET", "/images/detail?changes-since=2000-01-01T00:00:00").json
    (image,) = listing["images"]
    wait_for(lambda: status(api, image["id"]) == "killed")
    assert api.store._used() == 0


def posts(request) -> bool:
    return request.method == "POST"


def test_a_create_answered_late_leaves_a_killed_record_not_a_live_image(make_api):
    api = make_api(loses_answer=once(posts))
    resp = api.call("POST", "/images", headers={"x-image-meta-name": "late"})
    assert resp.status_int == 503, resp.text

    def killed() -> bool:
        listing = api.call("GET", "/images/detail?changes-since=2000-01-01T00:00:00").json
        return [i["status"] for i in listing["images"]] == ["killed"]

    wait_for(killed)
    assert api.call("GET", "/images/detail").json["images"] == []
