"""glance-replicator: copy, compare, dump and load images between Glance v1 servers.

    glance-replicator [options] <command> [args]

It speaks the v1 API over HTTP to glance-lite and to Glance alike, with x-auth-token:
listings from GET /v1/images/detail?is_public=None paged by marker, an image's presence
and metadata from HEAD, data streamed in --chunksize pieces from one server's GET to the
other's POST (or to and from files), never held whole. An image the target already has
is not copied again: its metadata is updated when it differs, and an active copy whose
checksum differs is reported. Each copy's checksum is compared with the source's.

A run that was interrupted (killed, connection cut) leaves the image it was copying
`killed` on the target (its api fails the cut upload). The next run uploads that image's
data with PUT to the same id, which glance-lite takes for a killed image without data
(docs/differences.md), so the job finishes without a duplicate; a Glance target refuses
it (409), which is logged, and the run goes on.
"""

import argparse
import dataclasses
import ipaddress
import json
import logging
import os
import re
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import requests
from tqdm import tqdm

LOG = logging.getLogger("glance-replicator")

DONT_REPLICATE = "created_at date deleted_at location updated_at"
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 300
FAILURES = (400, 401, 403, 409, 500)  # answers that stop a call, as Glance's tool
# Statuses of an image whose data an earlier run did not bring: the next run uploads it.
UNFINISHED = ("killed", "queued")
ALREADY_PRESENT = (
    "The image %s is already present on the target, but our check for it did not find "
    "it. This indicates that we do not have permissions to see all the images on the "
    "target server."
)

COMMANDS = """Commands:

    help <command>  Output help for one of the commands below

    compare         What is missing from the target glance?
    dump            Dump the contents of a glance instance to local disk.
    livecopy        Load the contents of one glance instance into another.
    load            Load the contents of a local directory into glance.
    size            Determine the size of a glance instance if dumped to disk.
"""

_HOSTNAME = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?$")


class ReplicatorError(Exception):
    """Stops the command: printed as `ERROR: <message>`, exit status 1."""


class ServerError(ReplicatorError):
    def __init__(self, server: "ImageService", resp: requests.Response):
        self.status = resp.status_code
        answer = f"{resp.status_code} {resp.reason}"
        if resp.status_code == 401:
            advice = "it is not valid there" if server.token else "none was given"
            message = (
                f"The {server.label} {server.name} refused the token ({answer}): {advice}; "
                f"pass a valid one with {server.flag} (or -t for both servers)"
            )
        else:
            message = f"The {server.label} {server.name} answered {answer}: {_text(resp)}"
        super().__init__(message)


def _text(resp: requests.Response) -> str:
    """An answer's body as one line of text: an HTML error page without its tags."""
    return " ".join(re.sub(r"<[^>]*>", " ", resp.text).split())[:500]


def parse_valid_host_port(text: str) -> tuple[str, int]:
    """`host:port` (an IPv6 address in brackets): ValueError in Glance's words if not."""
    advice = (
        "Please specify a host:port pair, where host is an IPv4 address, IPv6 address, "
        "hostname, or FQDN. If using an IPv6 address, enclose it in brackets separately "
        'from the port (i.e., "[fe80::a:b:c]:9876").'
    )
    match = re.fullmatch(r"\[([^\]]+)\]:(\d*)|([^:\[\]]+):(\d*)", text or "")
    if not match:
        raise ValueError(f'Host and port "{text}" is not valid. {advice}')
    host = match.group(1) or match.group(3)
    port = match.group(2) if match.group(1) else match.group(4)
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f'Port "{port}" is not valid. {advice}')
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOSTNAME.match(host) or host.replace(".", "").isdigit():
            raise ValueError(f'Host "{host}" is not valid. {advice}') from None
    return host, int(port)


class ImageService:
    """One Glance v1 server at `host:port`, called with `token` (when given); `role`
    ("source", "target" or "") and `flag` (its token option) name it and its token in errors."""

    def __init__(self, host_port: str, token: str, chunk_size: int, *, role: str, flag: str):
        host, port = parse_valid_host_port(host_port)
        self.name = f"{host}:{port}"
        self.label = f"{role} glance server" if role else "glance server"
        self.token = token
        self.flag = flag
        bracketed = f"[{host}]" if ":" in host else host
        self.base = f"http://{bracketed}:{port}"
        self.chunk_size = chunk_size
        self.session = requests.Session()
        if token:
            self.session.headers["x-auth-token"] = token

    def _request(self, method: str, path: str, **kw) -> requests.Response:
        try:
            resp = self.session.request(
                method, self.base + path, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT), **kw
            )
        except requests.ConnectionError as err:
            raise ReplicatorError(f"Could not reach the {self.label} {self.name}: {err}") from None
        except requests.Timeout:
            raise ReplicatorError(f"The {self.label} {self.name} did not answer in time") from None
        if resp.status_code in FAILURES:
            raise ServerError(self, resp)
        return resp

    def get_images(self) -> Iterator[dict]:
        """Every image the caller may see, page after page (`marker`) until an empty one."""
        params = {"is_public": "None"}
        while True:
            resp = self._request("GET", "/v1/images/detail", params=params)
            try:
                images = resp.json().get("images") or []
            except ValueError:
                raise ReplicatorError(
                    f"{self.name} did not answer a listing with JSON: is it a Glance v1 api?"
                ) from None
            if not images:
                return
            for image in images:
                params["marker"] = image["id"]
                yield image

    def get_image_data(self, image_id: str) -> requests.Response:
        resp = self._request("GET", f"/v1/images/{image_id}", stream=True)
        if resp.status_code != 200:
            raise ServerError(self, resp)
        return resp

    def get_image_meta(self, image_id: str) -> dict:
        """The image's metadata as its HEAD headers give it ({} when there is none)."""
        resp = self._request("HEAD", f"/v1/images/{image_id}")
        return headers_to_meta(resp.headers.items())

    def add_image(self, meta: dict, data: Iterable[bytes]) -> dict:
        return self._send("POST", "/v1/images", meta, data)

    def upload_image_data(self, meta: dict, data: Iterable[bytes]) -> dict:
        """Upload the data of an image the server has without data (queued, or killed
        by an upload that was cut: glance-lite takes it, Glance answers 409), with its
        metadata (but its status, which the upload sets)."""
        meta = {k: v for k, v in meta.items() if k != "status"}
        return self._send("PUT", f"/v1/images/{meta['id']}", meta, data)

    def _send(self, method: str, path: str, meta: dict, data: Iterable[bytes]) -> dict:
        headers = meta_to_headers(meta)
        headers["Content-Type"] = "application/octet-stream"
        body = SizedBody(data, int(meta["size"]))  # sent with its Content-Length, streamed
        return _uploaded(self._request(method, path, headers=headers, data=body))

    def add_image_meta(self, meta: dict) -> dict:
        headers = meta_to_headers(meta)
        headers["Content-Type"] = "application/octet-stream"
        resp = self._request("PUT", f"/v1/images/{meta['id']}", headers=headers, data=b"")
        return _uploaded(resp)


class SizedBody:
    """Chunks whose total length is known: requests then sends them with that
    Content-Length instead of chunked, still one chunk at a time."""

    def __init__(self, chunks: Iterable[bytes], size: int):
        self.chunks = chunks
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.chunks)


def _uploaded(resp: requests.Response) -> dict:
    try:
        return resp.json()["image"]
    except (ValueError, KeyError, TypeError):
        raise ReplicatorError(f"Unexpected answer to an upload: {resp.text[:500]}") from None


def headers_to_meta(headers: Iterable[tuple[str, str]]) -> dict:
    meta: dict = {}
    for name, value in headers:
        name = name.lower()
        if name.startswith("x-image-meta-property-"):
            meta.setdefault("properties", {})[name.removeprefix("x-image-meta-property-")] = value
        elif name.startswith("x-image-meta-"):
            meta[name.removeprefix("x-image-meta-")] = value
    return meta


def meta_to_headers(meta: dict) -> dict[str, str]:
    """x-image-meta-* headers of `meta`; a property that is None is sent empty, a core
    field that is None is left out (Glance sent the text 'None')."""
    headers = {}
    for key, value in meta.items():
        if key == "properties":
            for prop, pvalue in value.items():
                headers[f"x-image-meta-property-{prop}"] = "" if pvalue is None else str(pvalue)
        elif value is not None:
            headers[f"x-image-meta-{key}"] = str(value)
    return headers


def differs(source: dict, target: dict) -> list[str]:
    """The fields of `source` that `target` lacks or holds otherwise, compared as text
    (the target's come from headers); a None field counts as absent."""
    keys = []
    for key, value in source.items():
        if key == "properties":
            # an empty property has no header to show it: empty and absent are alike
            theirs = {k: v for k, v in (target.get("properties") or {}).items() if v != ""}
            mine = {k: str(v) for k, v in (value or {}).items() if v not in (None, "")}
            if mine != theirs:
                keys.append(key)
        elif value is None:
            if target.get(key) not in (None, "", "None"):
                keys.append(key)
        elif str(value) != target.get(key):
            keys.append(key)
    return keys


@dataclasses.dataclass
class Options:
    chunksize: int
    dontreplicate: list[str]
    metaonly: bool
    sourcetoken: str
    targettoken: str


def strip(meta: dict, opts: Options) -> dict:
    return {k: v for k, v in meta.items() if k not in opts.dontreplicate}


class Progress:
    """A bar per image and one overall on a terminal (tqdm); plain log lines otherwise."""

    def __init__(self, total_bytes: int, label: str):
        self.interactive = sys.stderr.isatty()
        self.overall = (
            tqdm(total=total_bytes, unit="B", unit_scale=True, unit_divisor=1024, desc=label)
            if self.interactive
            else None
        )

    def stream(self, chunks: Iterable[bytes], size: int, name: str) -> Iterator[bytes]:
        bar = None
        if self.interactive:
            bar = tqdm(
                total=size, unit="B", unit_scale=True, unit_divisor=1024, desc=name, leave=False
            )
        try:
            for chunk in chunks:
                if bar is not None:
                    bar.update(len(chunk))
                    self.overall.update(len(chunk))
                yield chunk
        finally:
            if bar is not None:
                bar.close()

    def close(self) -> None:
        if self.overall is not None:
            self.overall.close()


def _checked_copy(image: dict, stored: dict) -> None:
    if image.get("checksum") and stored.get("checksum") != image["checksum"]:
        raise ReplicatorError(
            f"Image {image['id']} was copied with checksum {stored.get('checksum')}, "
            f"not the source's {image['checksum']}"
        )


def _active_size(images: Iterable[dict]) -> int:
    return sum(int(i.get("size") or 0) for i in images if i.get("status") == "active")


# --- the commands -------------------------------------------------------------------------


def replication_size(opts: Options, args: list[str]) -> None:
    """%(prog)s size <server:port>

    Determine the size of a glance instance if dumped to disk.

    server:port: the location of the glance instance.
    """
    if len(args) < 1:
        raise TypeError("Too few arguments.")
    client = target_service(args[-1], opts, role="")
    active = [image for image in client.get_images() if image["status"] == "active"]
    total = _active_size(active)
    print(f"Total size is {total} bytes ({human_size(total)}) across {len(active)} images")


def human_size(num: float) -> str:
    for unit in ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi"):
        if abs(num) < 1024.0:
            return f"{num:3.1f} {unit}B"
        num /= 1024.0
    return f"{num:.1f} YiB"


def replication_dump(opts: Options, args: list[str]) -> None:
    """%(prog)s dump <server:port> <path>

    Dump the contents of a glance instance to local disk.

    server:port: the location of the glance instance.
    path:        a directory on disk to contain the data.
    """
    if len(args) < 2:
        raise TypeError("Too few arguments.")
    path = Path(args[-1])
    client = source_service(args[-2], opts)
    images = list(client.get_images())
    progress = Progress(0 if opts.metaonly else _active_size(images), "dump")
    try:
        for image in images:
            meta_path = path / image["id"]
            if meta_path.exists():
                continue
            LOG.info(
                "Storing: %s (%s) (%s bytes) in %s",
                image["id"],
                image.get("name") or "--unnamed--",
                image.get("size"),
                f"{meta_path}.img",
            )
            if image["status"] == "active" and not opts.metaonly:
                resp = client.get_image_data(image["id"])
                chunks = resp.iter_content(opts.chunksize)
                # the data first, under a temporary name, then the metadata: an
                # interrupted dump leaves no image that looks complete
                partial = path / f".{image['id']}.img.part"
                with open(partial, "wb") as out:
                    for chunk in progress.stream(chunks, int(image["size"]), image["id"]):
                        out.write(chunk)
                os.replace(partial, f"{meta_path}.img")
            tmp = path / f".{image['id']}.part"
            tmp.write_text(json.dumps(image), encoding="utf-8")
            os.replace(tmp, meta_path)
    finally:
        progress.close()


def replication_load(opts: Options, args: list[str]) -> list[str]:
    """%(prog)s load <server:port> <path>

    Load the contents of a local directory into glance.

    server:port: the location of the glance instance.
    path:        a directory on disk containing the data.
    """
    if len(args) < 2:
        raise TypeError("Too few arguments.")
    path = Path(args[-1])
    client = target_service(args[-2], opts)
    names = sorted(name for name in os.listdir(path) if _is_uuid(name))
    metas = [json.loads((path / name).read_text(encoding="utf-8")) for name in names]
    wanted = [m for m in metas if (path / f"{m['id']}.img").exists()]
    progress = Progress(_active_size(wanted), "load")
    updated = []
    try:
        for meta in metas:
            LOG.info("Considering: %s", meta["id"])
            meta = strip(meta, opts)
            data_path = path / f"{meta['id']}.img"

            def data(meta: dict = meta, data_path: Path = data_path) -> Iterator[bytes]:
                with open(data_path, "rb") as f:
                    chunks = iter(lambda: f.read(opts.chunksize), b"")
                    yield from progress.stream(chunks, int(meta["size"]), meta["id"])

            present = client.get_image_meta(meta["id"])
            if _sync_one(client, meta, present, data if data_path.exists() else None, opts):
                updated.append(meta["id"])
    finally:
        progress.close()
    return updated


def replication_livecopy(opts: Options, args: list[str]) -> list[str]:
    """%(prog)s livecopy <fromserver:port> <toserver:port>

    Load the contents of one glance instance into another.

    fromserver:port: the location of the source glance instance.
    toserver:port:   the location of the target glance instance.
    """
    source, target = _two_servers(opts, args)
    images = list(source.get_images())
    progress = Progress(0 if opts.metaonly else _active_size(images), "livecopy")
    updated = []
    try:
        for image in images:
            LOG.debug("Considering %s", image["id"])

            def data(image: dict = image) -> Iterator[bytes]:
                resp = source.get_image_data(image["id"])
                with resp:
                    chunks = resp.iter_content(opts.chunksize)
                    yield from progress.stream(chunks, int(image["size"]), image["id"])

            present = target.get_image_meta(image["id"])
            if image["status"] != "active" and "status" not in present:
                continue  # only active images are copied
            if _sync_one(target, strip(image, opts), present, data, opts):
                updated.append(image["id"])
    finally:
        progress.close()
    return updated


def _sync_one(
    target: ImageService,
    meta: dict,
    present: dict,
    data: Callable[[], Iterator[bytes]] | None,
    opts: Options,
) -> bool:
    """Bring one image to the target, which has `present` of it (its HEAD metadata, {}
    when none): its metadata when the target has it (and it is active there), else the
    image with its data. True when something was written."""
    if "status" in present:
        if present["status"] in UNFINISHED and _has_data(meta, data, opts):
            return _finish_copy(target, meta, present["status"], data)
        if present["status"] == "saving":
            LOG.warning(
                "Image %s is being uploaded on the target (saving): not copied now; run "
                "again once that upload has ended (a dead one is killed when its lease runs out)",
                meta["id"],
            )
            return False
        if present["status"] != "active":
            LOG.warning(
                "Image %s is %s on the target, not active: not copied again",
                meta["id"],
                present["status"],
            )
            return False
        if meta.get("checksum") and present.get("checksum") not in (None, meta["checksum"]):
            LOG.error(
                "Image %s differs in data on the target (checksum %s, source %s): left alone",
                meta["id"],
                present.get("checksum"),
                meta["checksum"],
            )
            return False
        changed = differs(meta, strip(present, opts))
        if not changed:
            return False
        LOG.info(
            "Image %s (%s) metadata has changed", meta["id"], meta.get("name") or "--unnamed--"
        )
        target.add_image_meta(meta)
        return True
    if not _has_data(meta, data, opts):
        LOG.debug("%s: no data to copy, skipped", meta["id"])
        return False
    LOG.info(
        "Image %s (%s) (%s bytes) is being synced",
        meta["id"],
        meta.get("name") or "--unnamed--",
        meta.get("size"),
    )
    try:
        stored = target.add_image(meta, data())
    except ServerError as err:
        if err.status == 409:
            LOG.error(ALREADY_PRESENT, meta["id"])
            return False
        raise
    _checked_copy(meta, stored)
    return True


def _has_data(meta: dict, data: Callable | None, opts: Options) -> bool:
    """Whether the source's image has data this run copies."""
    return data is not None and not opts.metaonly and meta.get("status") == "active"


def _finish_copy(target: ImageService, meta: dict, status: str, data: Callable) -> bool:
    """Upload the data of an image the target has without it: one an interrupted run
    left `killed` (or `queued`). glance-lite takes data for such an image; a server
    that refuses it (Glance: 409 for anything not queued) is logged, and the run goes on."""
    LOG.info(
        "Image %s (%s) (%s bytes) is %s on the target: uploading its data",
        meta["id"],
        meta.get("name") or "--unnamed--",
        meta.get("size"),
        status,
    )
    try:
        stored = target.upload_image_data(meta, data())
    except ServerError as err:
        if err.status != 409:
            raise
        LOG.error(
            "Image %s is %s on the target, which refuses its data (%s): not copied. "
            "That server cannot take the image again under this id",
            meta["id"],
            status,
            err,
        )
        return False
    _checked_copy(meta, stored)
    return True


def _two_servers(opts: Options, args: list[str]) -> tuple[ImageService, ImageService]:
    """The source and the target of `<fromserver:port> <toserver:port>`."""
    if len(args) < 2:
        raise TypeError("Too few arguments.")
    target = target_service(args[-1], opts)
    return source_service(args[-2], opts), target


def source_service(host_port: str, opts: Options) -> ImageService:
    return ImageService(
        host_port,
        opts.sourcetoken,
        opts.chunksize,
        role="source",
        flag="--sourcetoken",
    )


def target_service(host_port: str, opts: Options, role: str = "target") -> ImageService:
    return ImageService(
        host_port,
        opts.targettoken,
        opts.chunksize,
        role=role,
        flag="--targettoken",
    )


def replication_compare(opts: Options, args: list[str]) -> dict[str, str]:
    """%(prog)s compare <fromserver:port> <toserver:port>

    Compare the contents of fromserver with those of toserver.

    fromserver:port: the location of the source glance instance.
    toserver:port:   the location of the target glance instance.
    """
    source, target = _two_servers(opts, args)
    differences = {}
    for image in source.get_images():
        theirs = target.get_image_meta(image["id"])
        if "status" in theirs:
            mine = strip(image, opts)
            for key in differs(mine, strip(theirs, opts)):
                LOG.warning(
                    "%s: field %s differs (source is %s, destination is %s)",
                    image["id"],
                    key,
                    mine[key],
                    theirs.get(key, "undefined"),
                )
                differences[image["id"]] = "diff"
        elif image["status"] == "active":
            LOG.warning(
                'Image %s ("%s") entirely missing from the destination',
                image["id"],
                image.get("name") or "--unnamed",
            )
            differences[image["id"]] = "missing"
    return differences


def _is_uuid(name: str) -> bool:
    try:
        uuid.UUID(name)
    except ValueError:
        return False
    return True


def print_help(opts: Options, args: list[str]) -> None:
    """%(prog)s help <command>

    Output help for one of the commands.
    """
    if not args:
        print(COMMANDS)
        return
    command = lookup_command(args[-1])
    print((command.__doc__ or "") % {"prog": "glance-replicator"})


def lookup_command(name: str | None) -> Callable:
    commands = {
        "help": print_help,
        "compare": replication_compare,
        "dump": replication_dump,
        "livecopy": replication_livecopy,
        "load": replication_load,
        "size": replication_size,
    }
    if not name:
        return print_help
    try:
        return commands[name]
    except KeyError:
        sys.exit(f"Unknown command: {name}")


def parse(argv: list[str]) -> tuple[Options, str | None, list[str]]:
    parser = argparse.ArgumentParser(prog="glance-replicator", description=COMMANDS)
    parser.add_argument("-c", "--chunksize", type=int, default=65536)
    parser.add_argument("-D", "--dontreplicate", default=DONT_REPLICATE)
    parser.add_argument("-m", "--metaonly", action="store_true")
    parser.add_argument("-t", "--token", default="")
    parser.add_argument("--sourcetoken", "-M", "--mastertoken", default="")
    parser.add_argument("--targettoken", "-S", "--slavetoken", default="")
    parser.add_argument("-d", "--debug", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("command", nargs="?")
    parser.add_argument("args", nargs="*")
    try:
        args = parser.parse_intermixed_args(argv)
    except SystemExit as exc:
        if exc.code:
            sys.exit("Please specify one command")
        raise
    opts = Options(
        chunksize=args.chunksize,
        dontreplicate=args.dontreplicate.split(),
        metaonly=args.metaonly,
        sourcetoken=args.token or args.sourcetoken,
        targettoken=args.token or args.targettoken,
    )
    level = logging.DEBUG if args.debug else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s")
    return opts, args.command, args.args


def main(argv: list[str] | None = None) -> None:
    opts, name, args = parse(sys.argv[1:] if argv is None else argv)
    command = lookup_command(name)
    try:
        command(opts, list(args))
    except (TypeError, ValueError) as err:
        LOG.error((command.__doc__ or "") % {"prog": command.__name__})
        sys.exit(f"ERROR: {err}")
    except ReplicatorError as err:
        sys.exit(f"ERROR: {err}")


if __name__ == "__main__":
    main()
