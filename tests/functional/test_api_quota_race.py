"""user_storage_quota holds when one owner's uploads run at the same time: each passes
the check before streaming, and the registry's check as it activates them lets only
those through that fit together."""

import contextlib
import socket
import uuid

import pytest

from tests.functional.conftest import read_response
from tests.functional.servers import wait_for

pytestmark = pytest.mark.functional

QUOTA = 3000
SIZE = 1200  # two fit, three do not
QUOTA_TEXT = "Denying attempt to upload image because it exceeds the quota: "


def auth_headers(tenant: str) -> dict[str, str]:
    return {
        "X-Identity-Status": "Confirmed",
        "X-User-Id": f"u-{tenant}",
        "X-Tenant-Id": tenant,
        "X-Roles": "member",
    }


def start_upload(api, tenant: str, image_id: str) -> socket.socket:
    """A POST of SIZE bytes that sends its headers and half its body, then waits."""
    sock = api.connect()
    sock.sendall(
        (
            "POST /v1/images HTTP/1.1\r\nHost: test\r\n"
            "Content-Type: application/octet-stream\r\n"
            f"x-image-meta-id: {image_id}\r\n"
            "x-image-meta-disk-format: raw\r\nx-image-meta-container-format: bare\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in auth_headers(tenant).items())
            + f"Content-Length: {SIZE}\r\n\r\n"
        ).encode()
        + b"q" * (SIZE // 2)
    )
    return sock


def status(api, tenant: str, image_id: str) -> str | None:
    """The image's status, None while it is not created yet."""
    resp = api.head(f"/images/{image_id}", headers=auth_headers(tenant))
    return resp.headers.get("x-image-meta-status")


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mysql"])
def api(deploy, request):
    auth = {"flavor": "trusted-auth"}
    registry = dict(auth)
    if request.param != "sqlite":
        registry["db_url"] = request.getfixturevalue(f"{request.param}_url")
    return deploy(
        f"quota-race-{request.param}",
        registry_options=registry,
        send_identity_headers=True,
        user_storage_quota=f"{QUOTA}B",
        **auth,
    )


def test_concurrent_uploads_of_one_owner_never_pass_the_quota_together(api):
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    ids = [str(uuid.uuid4()) for _ in range(3)]
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(start_upload(api, tenant, i)) for i in ids]
        # every upload is streaming: each passed the check before streaming
        for image_id in ids:
            wait_for(lambda i=image_id: status(api, tenant, i) == "saving")
        for sock in socks:
            sock.sendall(b"q" * (SIZE - SIZE // 2))
        answers = [read_response(sock, deadline=20) for sock in socks]
    statuses = [head.split(b" ")[1] for head, _ in answers]
    assert sorted(statuses) == [b"201", b"201", b"413"], answers
    _, refusal = answers[statuses.index(b"413")]
    remaining = QUOTA - 2 * SIZE
    detail = f"The size of the data {SIZE} will exceed the limit. {remaining} bytes remaining."
    assert (QUOTA_TEXT + detail).encode() in refusal, refusal
    loser = ids[statuses.index(b"413")]
    assert status(api, tenant, loser) == "killed"
    assert api.no_file_for(loser)
    sizes = [
        int(api.meta(i, headers=auth_headers(tenant))["x-image-meta-size"])
        for i in ids
        if i != loser
    ]
    assert sum(sizes) <= QUOTA
    for image_id in ids:
        if image_id != loser:
            assert api.image_file(image_id).stat().st_size == SIZE
