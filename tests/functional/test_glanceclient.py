"""python-glanceclient 4.13.0 (the v1 CLI and library) against real glance-api/registry.

The CLI reads image data from standard input whenever stdin is not a terminal, so every
CLI call gets an explicit stdin: a pseudo-terminal when no data is meant, a file or a pipe
when it is. Images are private and owned by nobody (noauth admin), so listings that must see
them use `--all-tenants` (`is_public=None`); every test tags its images with a unique name or
`batch` property so the tests share one deployment without seeing each other's images.
"""

import concurrent.futures
import hashlib
import io
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import glanceclient
import pytest
from glanceclient import exc

from tests.functional.conftest import md5

pytestmark = [
    pytest.mark.functional,
    pytest.mark.filterwarnings("ignore:`version` keyword is being deprecated"),
]

GLANCE = str(Path(sys.executable).parent / "glance")
EMPTY_MD5 = hashlib.md5(b"").hexdigest()


@pytest.fixture(scope="module")
def client(default_api):
    return glanceclient.Client("1", endpoint=default_api.url, token="anything")


@pytest.fixture(scope="module")
def cli(default_api):
    return Cli(default_api.url)


def blob(tmp_path: Path, size: int, name: str = "image.raw") -> tuple[Path, bytes]:
    data = os.urandom(size)
    path = tmp_path / name
    path.write_bytes(data)
    return path, data


class Cli:
    """The `glance` console script, v1, with a token and the api URL (no keystone)."""

    def __init__(self, url: str):
        self.base = [
            GLANCE,
            "--os-image-api-version",
            "1",
            "--os-image-url",
            url,
            "--os-auth-token",
            "anything",
        ]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}

    def run(
        self, *args: str, stdin: Path | bytes | None = None, debug: bool = False
    ) -> subprocess.CompletedProcess:
        """Run one command. `stdin` None means a terminal (no data), a Path a file, bytes a pipe."""
        command = self.base[:1] + (["--debug"] if debug else []) + self.base[1:] + list(args)
        if isinstance(stdin, bytes):
            return self._spawn(command, input=stdin)
        if isinstance(stdin, Path):
            with open(stdin, "rb") as fileobj:
                return self._spawn(command, stdin=fileobj)
        main, terminal = os.openpty()
        try:
            return self._spawn(command, stdin=terminal)
        finally:
            os.close(terminal)
            os.close(main)

    def _spawn(self, command: list[str], **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(
            command, capture_output=True, env=self.env, timeout=60, check=False, **kwargs
        )

    def ok(self, *args: str, stdin: Path | bytes | None = None) -> str:
        result = self.run(*args, stdin=stdin)
        out = result.stdout.decode()
        assert result.returncode == 0, out + result.stderr.decode()
        return out

    def show(self, *args: str, stdin: Path | bytes | None = None) -> dict[str, str]:
        """Run a command printing one image (create, update, show) and parse its table."""
        return table_dict(self.ok(*args, stdin=stdin))

    def listing(self, *args: str) -> list[dict[str, str]]:
        return table_list(self.ok(*args))

    def many(self, *commands: list[str]) -> list[subprocess.CompletedProcess]:
        """Run independent commands at once, without data (each CLI start costs ~0.5 s)."""
        with concurrent.futures.ThreadPoolExecutor(len(commands)) as pool:
            return list(pool.map(lambda args: self.run(*args), commands))

    def listings(self, *commands: list[str]) -> list[list[dict[str, str]]]:
        results = self.many(*commands)
        for result in results:
            assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
        return [table_list(result.stdout.decode()) for result in results]


def table_rows(text: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in line.strip()[1:-1].split("|")]
        for line in text.splitlines()
        if line.startswith("|")
    ]


def table_dict(text: str) -> dict[str, str]:
    rows = table_rows(text)
    assert rows and rows[0] == ["Property", "Value"], text
    return {key: value for key, value in rows[1:]}


def table_list(text: str) -> list[dict[str, str]]:
    rows = table_rows(text)
    assert rows, text
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def names(rows: list[dict[str, str]]) -> list[str]:
    return [row["Name"] for row in rows]


def create_args(name: str, *extra: str) -> list[str]:
    return [
        "image-create",
        "--name",
        name,
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
        *extra,
    ]


# --- CLI -------------------------------------------------------------------------------


def test_cli_creates_an_image_from_a_file_with_its_md5_size_and_properties(cli, tmp_path, uid):
    path, data = blob(tmp_path, 70_000)
    shown = cli.show(*create_args(uid, "--file", str(path), "--property", "distro=ubuntu"))
    assert shown["status"] == "active"
    assert shown["checksum"] == md5(data)
    assert shown["size"] == str(len(data))
    assert (shown["disk_format"], shown["container_format"]) == ("raw", "bare")
    assert shown["is_public"] == "False"
    assert shown["Property 'distro'"] == "ubuntu"

    again = cli.show("image-show", shown["id"])
    assert again["checksum"] == md5(data)
    assert again["status"] == "active"
    assert again["Property 'distro'"] == "ubuntu"
    assert again["name"] == uid


def test_cli_creates_an_image_from_piped_stdin_without_a_size(cli, uid):
    data = os.urandom(200_000)
    shown = cli.show(*create_args(uid), stdin=data)
    assert shown["status"] == "active"
    assert shown["size"] == str(len(data))
    assert shown["checksum"] == md5(data)


def test_cli_create_with_empty_stdin_makes_an_active_empty_image(cli, client, uid):
    # /dev/null is seekable: the client sends x-image-meta-size: 0 and an empty chunked
    # body. Glance reserves the image active (size 0) and still "uploads" the empty body.
    shown = cli.show(*create_args(uid), stdin=Path(os.devnull))
    assert shown["status"] == "active"
    assert shown["size"] == "0"
    assert shown["checksum"] == EMPTY_MD5
    assert [i.name for i in client.images.list(filters={"name": uid}, is_public=None)] == [uid]


def test_cli_reserves_without_data_then_uploads_with_image_update(cli, tmp_path, uid):
    reserved = cli.show(*create_args(uid, "--property", "stage=reserved"))
    assert reserved["status"] == "queued"
    assert reserved["size"] == "0"
    assert reserved["checksum"] == "None"

    path, data = blob(tmp_path, 33_333)
    updated = cli.show("image-update", reserved["id"], "--file", str(path))
    assert updated["status"] == "active"
    assert updated["checksum"] == md5(data)
    assert updated["size"] == str(len(data))
    assert updated["Property 'stage'"] == "reserved"


def test_cli_reserve_with_size_zero_is_an_active_empty_image(cli, tmp_path, uid):
    shown = cli.show(*create_args(uid, "--size", "0"))
    assert (shown["status"], shown["size"], shown["checksum"]) == ("active", "0", "None")
    target = tmp_path / "empty"
    cli.ok("image-download", "--file", str(target), shown["id"])
    assert target.read_bytes() == b""


def test_cli_refuses_to_upload_to_an_active_image(cli, tmp_path, uid):
    path, _ = blob(tmp_path, 100)
    shown = cli.show(*create_args(uid, "--file", str(path)))
    result = cli.run("image-update", shown["id"], "--file", str(path))
    assert result.returncode != 0
    assert "Unable to upload image data to an image which is active" in result.stderr.decode()


@pytest.fixture
def batch(client, uid):
    """Five images tagged batch=<uid>; two public. Sizes grow with the name, formats vary."""
    specs = [("a", "raw", True), ("b", "qcow2", True), ("c", "raw", False)]
    specs += [("d", "qcow2", False), ("e", "raw", False)]
    for index, (suffix, disk_format, public) in enumerate(specs):
        client.images.create(
            name=f"{uid}-{suffix}",
            disk_format=disk_format,
            container_format="bare",
            is_public=public,
            properties={"batch": uid, "parity": "odd" if index % 2 else "even"},
            data=io.BytesIO(b"x" * (10 + index)),
        )
    return uid


def test_cli_lists_with_property_format_name_and_size_filters(cli, batch):
    mine = ["image-list", "--all-tenants", "--property-filter", f"batch={batch}"]
    everything, qcow2, named, odd, sized = cli.listings(
        mine,
        [*mine, "--disk-format", "qcow2"],
        [*mine, "--name", f"{batch}-c"],
        [*mine, "--property-filter", "parity=odd"],
        [*mine, "--size-min", "12", "--size-max", "13"],
    )
    assert names(everything) == [f"{batch}-{s}" for s in "abcde"]
    assert [row["Size"] for row in everything] == ["10", "11", "12", "13", "14"]
    assert {row["Status"] for row in everything} == {"active"}
    assert names(qcow2) == [f"{batch}-b", f"{batch}-d"]
    assert {row["Disk Format"] for row in qcow2} == {"qcow2"}
    assert names(named) == [f"{batch}-c"]
    assert names(odd) == [f"{batch}-b", f"{batch}-d"]
    assert names(sized) == [f"{batch}-c", f"{batch}-d"]


def test_cli_default_listing_shows_the_ownerless_admin_public_images_only(cli, batch):
    filters = ["--property-filter", f"batch={batch}"]
    default, public = cli.listings(
        ["image-list", *filters], ["image-list", "--is-public", "True", *filters]
    )
    assert names(default) == [f"{batch}-a", f"{batch}-b"]
    assert names(public) == [f"{batch}-a", f"{batch}-b"]


def test_cli_lists_sorted_by_name_and_size_in_both_directions(cli, batch):
    mine = ["image-list", "--all-tenants", "--property-filter", f"batch={batch}"]
    by_name_desc, by_size, by_size_desc, paged_by_size, paged_by_format = cli.listings(
        [*mine, "--sort-key", "name", "--sort-dir", "desc"],
        [*mine, "--sort-key", "size", "--sort-dir", "asc"],
        [*mine, "--sort-key", "size", "--sort-dir", "desc"],
        [*mine, "--sort-key", "size", "--sort-dir", "desc", "--page-size", "2"],
        [*mine, "--sort-key", "disk_format", "--sort-dir", "asc", "--page-size", "1"],
    )
    assert names(by_name_desc) == [f"{batch}-{s}" for s in "edcba"]
    assert [row["Size"] for row in by_size] == ["10", "11", "12", "13", "14"]
    assert names(by_size_desc) == [f"{batch}-{s}" for s in "edcba"]
    assert names(paged_by_size) == [f"{batch}-{s}" for s in "edcba"]
    # equal disk formats fall back to created_at, then id, in the same direction
    assert names(paged_by_format) == [f"{batch}-{s}" for s in "bdace"]


def test_cli_pages_through_more_images_than_one_page(cli, batch):
    args = ["image-list", "--all-tenants", "--property-filter", f"batch={batch}"]
    result = cli.run(*args, "--page-size", "2", debug=True)
    out = result.stdout.decode()
    assert result.returncode == 0, out + result.stderr.decode()
    assert names(table_list(out[out.index("+--") :])) == [f"{batch}-{s}" for s in "abcde"]
    debug_log = out + result.stderr.decode()
    requests_sent = set(re.findall(r"curl .*?/v1/images/detail\?(\S+)", debug_log))
    assert all("limit=2" in query for query in requests_sent)
    assert len([q for q in requests_sent if "marker=" in q]) == 2


def test_cli_update_merges_properties_and_purges_with_purge_props(cli, tmp_path, uid):
    path, _ = blob(tmp_path, 64)
    image_id = cli.show(*create_args(uid, "--file", str(path), "--property", "a=1"))["id"]

    merged = cli.show("image-update", image_id, "--property", "b=2")
    assert (merged["Property 'a'"], merged["Property 'b'"]) == ("1", "2")

    renamed = cli.show("image-update", image_id, "--name", f"{uid}-renamed")
    assert renamed["name"] == f"{uid}-renamed"
    assert (renamed["Property 'a'"], renamed["Property 'b'"]) == ("1", "2")

    purged = cli.show("image-update", image_id, "--purge-props", "--property", "c=3")
    assert purged["Property 'c'"] == "3"
    assert "Property 'a'" not in purged and "Property 'b'" not in purged

    changed = cli.show("image-update", image_id, "--property", "c=4", "--property", "d=5")
    assert (changed["Property 'c'"], changed["Property 'd'"]) == ("4", "5")

    emptied = cli.show("image-update", image_id, "--purge-props")
    assert not [key for key in emptied if key.startswith("Property '")]
    assert not [key for key in cli.show("image-show", image_id) if key.startswith("Property '")]


def test_cli_downloads_to_a_file_and_to_stdout_with_the_same_md5(cli, client, tmp_path, uid):
    data = os.urandom(300_000)
    image_id = client.images.create(
        name=uid, disk_format="raw", container_format="bare", data=io.BytesIO(data)
    ).id
    target = tmp_path / "downloaded"
    to_file, to_stdout = cli.many(
        ["image-download", "--file", str(target), image_id], ["image-download", image_id]
    )
    assert to_file.returncode == 0, to_file.stderr.decode()
    assert md5(target.read_bytes()) == md5(data)
    assert to_stdout.returncode == 0, to_stdout.stderr.decode()
    assert md5(to_stdout.stdout) == md5(data)


def test_cli_download_of_a_queued_image_fails_with_not_active(cli, tmp_path, uid):
    image_id = cli.show(*create_args(uid))["id"]
    result = cli.run("image-download", "--file", str(tmp_path / "none"), image_id)
    assert result.returncode != 0
    assert f"Image {image_id} is not active" in result.stderr.decode()


def test_cli_deletes_an_image_and_it_is_gone(cli, client, tmp_path, uid):
    image_id = client.images.create(
        name=uid, disk_format="raw", container_format="bare", data=io.BytesIO(b"doomed")
    ).id
    cli.ok("image-delete", image_id)

    shown, listed, download, again = cli.many(
        ["image-show", image_id],
        ["image-list", "--all-tenants", "--name", uid],
        ["image-download", "--file", str(tmp_path / "out"), image_id],
        ["image-delete", image_id],
    )
    shown = table_dict(shown.stdout.decode())
    assert (shown["status"], shown["deleted"]) == ("deleted", "True")
    assert shown["deleted_at"] != "None"
    assert table_list(listed.stdout.decode()) == []
    assert download.returncode != 0
    assert f"Image {image_id} is not active" in download.stderr.decode()
    assert again.returncode != 0
    assert f"No image with an ID of '{image_id}' exists." in again.stderr.decode()


def test_cli_creates_lists_and_deletes_members(cli, client, uid):
    image_id = client.images.create(name=uid, disk_format="raw", container_format="bare").id
    cli.ok("member-create", image_id, f"{uid}-t1")
    cli.ok("member-create", "--can-share", image_id, f"{uid}-t2")

    by_image, by_tenant = cli.listings(
        ["member-list", "--image-id", image_id], ["member-list", "--tenant-id", f"{uid}-t2"]
    )
    assert [(m["Image ID"], m["Member ID"], m["Can Share"]) for m in by_image] == [
        (image_id, f"{uid}-t1", ""),  # print_list shows a false value as blank
        (image_id, f"{uid}-t2", "True"),
    ]
    assert [(m["Image ID"], m["Member ID"], m["Can Share"]) for m in by_tenant] == [
        (image_id, f"{uid}-t2", "True")
    ]

    cli.ok("member-delete", image_id, f"{uid}-t1")
    by_image, by_tenant = cli.listings(
        ["member-list", "--image-id", image_id], ["member-list", "--tenant-id", f"{uid}-t1"]
    )
    assert [m["Member ID"] for m in by_image] == [f"{uid}-t2"]
    assert by_tenant == []
    again = cli.run("member-delete", image_id, f"{uid}-t1")
    assert again.returncode != 0
    assert "Membership could not be found." in again.stderr.decode()


def test_cli_public_and_protected_flags_and_refused_delete(cli, client, tmp_path, uid):
    path, _ = blob(tmp_path, 256)
    args = create_args(uid, "--is-public", "True", "--is-protected", "True", "--file", str(path))
    shown = cli.show(*args)
    assert (shown["is_public"], shown["protected"]) == ("True", "True")

    listed, refused = cli.many(["image-list", "--name", uid], ["image-delete", shown["id"]])
    assert names(table_list(listed.stdout.decode())) == [uid]
    assert "Image is protected" in refused.stdout.decode() + refused.stderr.decode()
    assert client.images.get(shown["id"]).status == "active"

    flags = ["--is-protected", "False", "--is-public", "False"]
    updated = cli.show("image-update", shown["id"], *flags)
    assert (updated["is_public"], updated["protected"]) == ("False", "False")
    assert names(cli.listing("image-list", "--name", uid)) == []
    cli.ok("image-delete", shown["id"])
    assert client.images.get(shown["id"]).status == "deleted"


def test_cli_bad_disk_format_shows_the_api_message_and_fails(cli, client, uid):
    result = cli.run("image-create", "--name", uid, "--disk-format", "floppy")
    assert result.returncode != 0
    err = result.stderr.decode()
    assert "400" in err
    assert "Invalid disk format" in err and "floppy" in err
    assert list(client.images.list(filters={"name": uid}, is_public=None)) == []


def test_cli_relayed_registry_error_is_readable_text(cli):
    result = cli.run(*create_args("bad-id", "--id", "notauuid"))
    assert result.returncode != 0
    err = result.stderr.decode()
    assert "Failed to reserve image" in err and "Invalid image id format" in err
    assert "&lt;" not in err and "<html>" not in err


def test_cli_bad_container_format_on_update_fails_and_changes_nothing(cli, uid):
    image_id = cli.show(*create_args(uid))["id"]
    result = cli.run("image-update", image_id, "--container-format", "crate")
    assert result.returncode != 0
    assert "Invalid container format" in result.stderr.decode()
    assert cli.show("image-show", image_id)["container_format"] == "bare"


# --- library -----------------------------------------------------------------------------


def test_library_creates_with_data_and_downloads_the_same_bytes(client, uid):
    data = os.urandom(150_000)
    image = client.images.create(
        name=uid,
        disk_format="qcow2",
        container_format="bare",
        min_ram=256,
        properties={"Distro": "fedora"},
        data=io.BytesIO(data),
    )
    assert (image.status, image.size, image.checksum) == ("active", len(data), md5(data))
    assert image.min_ram == 256

    shown = client.images.get(image.id)
    assert (shown.status, shown.size, shown.checksum) == ("active", len(data), md5(data))
    assert shown.properties == {"distro": "fedora"}
    assert shown.is_public is False and shown.protected is False and shown.deleted is False
    assert (shown.disk_format, shown.container_format, shown.min_ram) == ("qcow2", "bare", 256)

    body = client.images.data(image.id)
    assert len(body) == len(data)
    assert b"".join(body) == data


def test_library_reserves_then_uploads_with_update(client, tmp_path, uid):
    image = client.images.create(name=uid, disk_format="raw", container_format="bare")
    assert (image.status, image.size, image.checksum) == ("queued", 0, None)
    path, data = blob(tmp_path, 4_096)
    with open(path, "rb") as fileobj:
        updated = client.images.update(image.id, data=fileobj)
    assert (updated.status, updated.size, updated.checksum) == ("active", len(data), md5(data))
    assert b"".join(client.images.data(image.id)) == data


def test_library_lists_with_filters_and_pages(client, batch):
    request_ids: list[str] = []
    found = client.images.list(
        filters={"properties": {"batch": batch}, "disk_format": "raw"},
        is_public=None,
        page_size=2,
        sort_key="name",
        sort_dir="desc",
        return_req_id=request_ids,
    )
    assert [i.name for i in found] == [f"{batch}-e", f"{batch}-c", f"{batch}-a"]
    assert len(request_ids) == 2
    newest_first = client.images.list(
        filters={"properties": {"batch": batch}}, is_public=None, page_size=2
    )
    assert [i.name for i in newest_first] == [f"{batch}-{s}" for s in "edcba"]
    every = list(client.images.list(filters={"properties": {"batch": batch}}, page_size=1))
    assert sorted(i.name for i in every) == [f"{batch}-a", f"{batch}-b"]
    limited = client.images.list(filters={"properties": {"batch": batch}}, is_public=None, limit=3)
    assert len(list(limited)) == 3


def test_library_update_merges_and_purges_properties(client, uid):
    image = client.images.create(
        name=uid, disk_format="raw", container_format="bare", properties={"a": "1"}
    )
    merged = client.images.update(image.id, properties={"b": "2"})
    assert merged.properties == {"a": "1", "b": "2"}
    assert client.images.update(image.id, min_disk=3).properties == {"a": "1", "b": "2"}
    purged = client.images.update(image.id, properties={"c": "3"}, purge_props=True)
    assert purged.properties == {"c": "3"}
    shown = client.images.get(image.id)
    assert (shown.properties, shown.min_disk) == ({"c": "3"}, 3)


def test_library_creates_lists_replaces_and_deletes_members(client, uid):
    image = client.images.create(name=uid, disk_format="raw", container_format="bare")
    client.image_members.create(image, f"{uid}-t1", can_share=True)
    members = client.image_members.list(image=image)
    assert [(m.image_id, m.member_id, m.can_share) for m in members] == [
        (image.id, f"{uid}-t1", True)
    ]
    client.image_members.create(image, f"{uid}-t1")  # the client always sends can_share
    assert [m.can_share for m in client.image_members.list(image=image)] == [False]

    client.image_members.replace(
        image, [{"member_id": f"{uid}-t2"}, {"member_id": f"{uid}-t3", "can_share": True}]
    )
    members = client.image_members.list(image=image)
    assert [(m.member_id, m.can_share) for m in members] == [
        (f"{uid}-t2", False),
        (f"{uid}-t3", True),
    ]
    shared = client.image_members.list(member=f"{uid}-t3")
    assert [(m.image_id, m.member_id, m.can_share) for m in shared] == [
        (image.id, f"{uid}-t3", True)
    ]
    assert client.image_members.list(member=f"{uid}-t1") == []

    client.image_members.delete(image.id, f"{uid}-t2")
    assert [m.member_id for m in client.image_members.list(image=image)] == [f"{uid}-t3"]
    with pytest.raises(exc.HTTPNotFound, match="Membership could not be found"):
        client.image_members.delete(image.id, f"{uid}-t2")

    client.images.delete(image.id)
    assert client.image_members.list(member=f"{uid}-t3") == []
    with pytest.raises(exc.HTTPNotFound, match="has been deleted"):
        client.image_members.list(image=image)


def test_library_protected_image_refuses_delete_until_unprotected(client, uid):
    image = client.images.create(
        name=uid,
        disk_format="raw",
        container_format="bare",
        is_public=True,
        protected=True,
        data=io.BytesIO(b"protected bytes"),
    )
    assert (image.is_public, image.protected) == (True, True)
    with pytest.raises(exc.HTTPForbidden, match="Image is protected"):
        client.images.delete(image.id)
    assert client.images.get(image.id).status == "active"

    client.images.update(image.id, protected=False)
    client.images.delete(image.id)
    gone = client.images.get(image.id)
    assert (gone.status, gone.deleted) == ("deleted", True)
    with pytest.raises(exc.HTTPNotFound, match="is not active"):
        client.images.data(image.id)
    with pytest.raises(exc.HTTPNotFound):
        client.images.delete(image.id)


def test_library_bad_disk_format_raises_the_api_message(client, uid):
    with pytest.raises(exc.HTTPBadRequest, match="Invalid disk format"):
        client.images.create(name=uid, disk_format="floppy", container_format="bare")
    with pytest.raises(exc.HTTPNotFound):
        client.images.get(str(uuid.uuid4()))


def test_library_reports_a_checksum_mismatch_and_the_image_ends_killed(client, uid):
    with pytest.raises(exc.HTTPBadRequest, match=r"Supplied checksum .* did not match"):
        client.images.create(
            name=uid,
            disk_format="raw",
            container_format="bare",
            checksum="0" * 32,
            data=io.BytesIO(b"some bytes"),
        )
    filters = {"name": uid, "changes-since": "2000-01-01T00:00:00"}
    assert [i.status for i in client.images.list(filters=filters, is_public=None)] == ["killed"]
    assert list(client.images.list(filters={"name": uid}, is_public=None)) == []


def test_library_honours_a_client_chosen_id_and_refuses_a_duplicate(client, uid):
    image_id = str(uuid.uuid4())
    image = client.images.create(id=image_id, name=uid, owner=f"{uid}-owner", min_disk=5)
    assert (image.id, image.owner, image.min_disk, image.status) == (
        image_id,
        f"{uid}-owner",
        5,
        "queued",
    )
    with pytest.raises(exc.HTTPConflict, match=f"An image with identifier {image_id} already"):
        client.images.create(id=image_id, name=uid)
