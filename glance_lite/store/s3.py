"""The `s3` store: images as objects in one bucket of any S3-compatible endpoint (boto3).

Locations are those of Glance's s3 store (Mitaka, the last one before it was removed),
so that either reads the other's: `s3://<access key>:<secret key>@<host>/<bucket>/<id>`
for an http endpoint, `s3+https://...` for https. Glance wrote the keys as they are; a
':', '@' or '%' in them (an s3api key such as `account:user`) is percent-quoted here.

An image of known size under `s3_store_large_object_size` is one PUT; S3 signs the
body over http, so it goes through a spooled file (memory up to one chunk, disk beyond).
Larger images and those of unknown size are multipart uploads in parts of
`s3_store_large_object_chunk_size`. Each full part is hashed (md5, part after part in
order, on the offload's threads) while it is sent, and up to `s3_store_thread_pools`
parts are sent at the same time (each from a buffer of its own, in green threads of
the server: sending mostly waits on the network), so an upload holds at most that many
parts plus the one being filled, whatever its size.
A failed one waits for the parts still being sent, then is aborted, so no part stays
behind (a part that lands after the abort could outlive it). A download is the
object's body read in pieces, with `Range` for an offset. Unreachable endpoint,
refused keys or a missing bucket are BackendUnavailable (503), never showing the
secret key.
"""

import collections
import contextlib
import dataclasses
import functools
import hashlib
import io
import logging
import tempfile
import urllib.parse
from collections.abc import Iterable, Iterator

from oslo_config import cfg

from glance_lite import exceptions, opts
from glance_lite.offload import DIRECT, Job, Offload
from glance_lite.store.base import (
    AddResult,
    BackendUnavailable,
    BadStoreUri,
    Duplicate,
    ImageChunks,
    RemoteChunks,
    Store,
    StoreNotFound,
    read_full,
    readinto_of,
)

try:  # the extra glance-lite[s3]; from_conf says so when it is missing
    import boto3
    import botocore.config
    import botocore.exceptions
except ImportError:  # pragma: no cover - exercised by the start-up error only
    boto3 = None

LOG = logging.getLogger(__name__)

SCHEMES = ("s3", "s3+http", "s3+https")
MiB = 1024 * 1024  # the s3 options' MB
READ_CHUNK = 1024 * 1024
MIN_PART = 5 * MiB  # S3's smallest part but the last
NOT_FOUND = frozenset({"404", "NoSuchKey", "NoSuchBucket", "NotFound"})
REFUSED = frozenset({"403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"})
ADDRESSING = {"auto": "auto", "virtual": "virtual", "subdomain": "virtual", "path": "path"}


@dataclasses.dataclass(frozen=True)
class S3Location:
    endpoint: str  # http(s)://host[:port][/path]
    access_key: str
    secret_key: str = dataclasses.field(repr=False)
    bucket: str = ""
    key: str = ""

    def uri(self) -> str:
        return self._uri(_quote(self.access_key), _quote(self.secret_key))

    def redacted(self) -> str:
        return self._uri("***", "***")

    def _uri(self, access: str, secret: str) -> str:
        http, _, host = self.endpoint.partition("://")
        scheme = "s3+https" if http == "https" else "s3"
        return f"{scheme}://{access}:{secret}@{host.strip('/')}/{self.bucket}/{self.key}"


def _quote(text: str) -> str:
    return text.replace("%", "%25").replace(":", "%3A").replace("@", "%40")


def parse(location: str) -> S3Location:
    scheme, sep, rest = location.partition("://")
    if not sep or scheme.lower() not in SCHEMES:
        raise BadStoreUri(f"not an s3 location: {redact(location)}")
    if "://" in rest:
        raise BadStoreUri(
            "an s3 location holds one scheme: s3+https://key:secret@host/bucket/id, "
            "not s3://key:secret@https://host/..."
        )
    creds, at, path = rest.rpartition("@")
    access, colon, secret = creds.partition(":")
    if not at or not colon or not access:
        raise BadStoreUri("Badly formed S3 credentials")
    *host, bucket, key = path.strip("/").split("/")
    if not host or not bucket or not key:
        raise BadStoreUri("Badly formed S3 URI. Missing s3 service URL.")
    http = "https" if scheme.lower() == "s3+https" else "http"
    return S3Location(
        f"{http}://{'/'.join(host)}",
        urllib.parse.unquote(access),
        urllib.parse.unquote(secret),
        bucket,
        key,
    )


def redact(location: str) -> str:
    scheme, sep, rest = location.partition("://")
    if sep and "@" in rest:
        return f"{scheme}://***:***@{rest.rpartition('@')[2]}"
    return location


def _code(err: Exception) -> str:
    return str(getattr(err, "response", {}).get("Error", {}).get("Code", ""))


@contextlib.contextmanager
def _s3_errors(endpoint: str, access_key: str, shown: str) -> Iterator[None]:
    try:
        yield
    except botocore.exceptions.ClientError as err:
        code = _code(err)
        if code in NOT_FOUND:
            raise StoreNotFound(shown) from None
        if code in REFUSED:
            raise BackendUnavailable(
                f"S3 at {endpoint} refused the access key {access_key} ({code})"
            ) from None
        raise BackendUnavailable(f"S3 at {endpoint} failed: {code}") from None
    except botocore.exceptions.BotoCoreError as err:
        raise BackendUnavailable(f"S3 at {endpoint} is unreachable: {type(err).__name__}") from None


class S3Store(Store):
    schemes = SCHEMES

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        *,
        create_bucket: bool = False,
        addressing: str = "auto",
        large_object_size: int = 100 * MiB,
        chunk_size: int = 10 * MiB,
        thread_pools: int = 10,
        timeout: float = 60.0,
        offload: Offload = DIRECT,
    ):
        if chunk_size < MIN_PART:
            raise exceptions.ConfigError(
                f"s3_store_large_object_chunk_size must be at least 5 MB: {chunk_size} bytes"
            )
        if not endpoint.startswith(("http://", "https://")):
            endpoint = f"http://{endpoint}"  # as Glance: http unless said
        self._endpoint = endpoint.rstrip("/")
        self._access_key = access_key
        self._secret_key = secret_key
        self._bucket = bucket
        self._create_bucket = create_bucket
        self._large_object_size = large_object_size
        self._chunk_size = chunk_size
        self._thread_pools = thread_pools
        self._offload = offload
        self._config = botocore.config.Config(
            s3={"addressing_style": ADDRESSING[addressing]},
            signature_version="s3v4",
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"max_attempts": 2, "mode": "standard"},
            max_pool_connections=max(10, thread_pools + 1),  # the parts, and the rest
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._clients: dict[tuple[str, str, str], object] = {}
        self._bucket_seen = False

    # -- the four verbs

    def add(self, image_id: str, chunks: Iterable[bytes], size: int | None) -> AddResult:
        if not image_id or "/" in image_id:
            raise exceptions.Invalid(f"Invalid image id for the s3 store: {image_id!r}")
        loc = S3Location(self._endpoint, self._access_key, self._secret_key, self._bucket, image_id)
        client = self._client(loc)
        with self._errors(loc):
            self._ensure_bucket(client)
            if self._exists(client, image_id):
                raise Duplicate(image_id)
        md5 = hashlib.md5(usedforsecurity=False)
        if size is not None and size < self._large_object_size:
            nbytes = self._put_single(client, loc, chunks, md5)
        else:
            nbytes = self._put_multipart(client, loc, chunks, md5)
        return AddResult(loc.uri(), nbytes, md5.hexdigest(), {})

    def get(
        self, location: str, offset: int = 0, chunk_size: int | None = None
    ) -> tuple[ImageChunks, int | None]:
        if offset < 0:
            raise exceptions.Invalid(f"Negative offset into image data: {offset}")
        loc = parse(location)
        client = self._client(loc)
        with self._errors(loc):
            if offset:
                size = client.head_object(Bucket=loc.bucket, Key=loc.key)["ContentLength"]
                if offset >= size:
                    return _S3Chunks(None, 0, loc.redacted(), 0), 0
                resp = client.get_object(Bucket=loc.bucket, Key=loc.key, Range=f"bytes={offset}-")
            else:
                resp = client.get_object(Bucket=loc.bucket, Key=loc.key)
        length = resp["ContentLength"]
        body = _S3Chunks(resp["Body"], length, loc.redacted(), chunk_size or READ_CHUNK)
        return body, length

    def delete(self, location: str) -> None:
        loc = parse(location)
        client = self._client(loc)
        with self._errors(loc):
            client.head_object(Bucket=loc.bucket, Key=loc.key)  # S3 deletes what is not there
            client.delete_object(Bucket=loc.bucket, Key=loc.key)

    def get_size(self, location: str) -> int:
        loc = parse(location)
        with self._errors(loc):
            return self._client(loc).head_object(Bucket=loc.bucket, Key=loc.key)["ContentLength"]

    def redact(self, location: str) -> str:
        return redact(location)

    def open_to_clients(self, location: str) -> bool:
        """Only a location on the configured endpoint (s3_store_host): any other would make
        glance-api connect to any address the client names."""
        try:
            return parse(location).endpoint.rstrip("/") == self._endpoint
        except BadStoreUri:
            return False

    def check(self) -> None:
        """Look at the bucket once (start-up): warn, never fail."""
        loc = S3Location(self._endpoint, self._access_key, self._secret_key, self._bucket)
        try:
            with self._errors(loc):
                self._client(loc).head_bucket(Bucket=self._bucket)
        except StoreNotFound:
            if not self._create_bucket:
                LOG.warning(
                    "S3 bucket '%s' at %s does not exist and s3_store_create_bucket_on_put "
                    "is false: uploads will fail",
                    self._bucket,
                    self._endpoint,
                )
        except BackendUnavailable as err:
            LOG.warning("s3 store: %s; uploads and downloads fail until it works", err)

    # -- writing

    def _put_single(self, client, loc: S3Location, chunks, md5) -> int:
        with tempfile.SpooledTemporaryFile(max_size=self._chunk_size) as spool:
            nbytes = 0
            for chunk in chunks:
                md5.update(chunk)
                spool.write(chunk)
                nbytes += len(chunk)
            spool.seek(0)
            with self._errors(loc):
                client.put_object(Bucket=loc.bucket, Key=loc.key, Body=spool, ContentLength=nbytes)
        return nbytes

    def _put_multipart(self, client, loc: S3Location, chunks, md5) -> int:
        with self._errors(loc):
            upload_id = client.create_multipart_upload(Bucket=loc.bucket, Key=loc.key)["UploadId"]
        send = functools.partial(self._send_part, client, loc, upload_id)
        # per part not yet both sent and hashed, oldest first: (its send, its hashing, it)
        sending: collections.deque[tuple[Job, Job, bytearray]] = collections.deque()
        hashed = None  # the last part's hashing: each one runs after the one before
        free: list[bytearray] = []  # buffers of parts sent and hashed, filled again
        parts = []
        nbytes = 0
        try:
            for number, part in enumerate(_parts(chunks, self._chunk_size, free), 1):
                nbytes += len(part)
                if len(sending) == self._thread_pools:
                    parts.append(self._retire(sending, free))
                hashed = self._offload.start_after(hashed, md5.update, part)
                sending.append((self._offload.spawn(send, number, part), hashed, part))
                del part  # its jobs hold it until it is sent and hashed
            while sending:
                parts.append(self._retire(sending, free))
            with self._errors(loc):
                if not parts:  # nothing to complete a multipart upload with
                    client.abort_multipart_upload(
                        Bucket=loc.bucket, Key=loc.key, UploadId=upload_id
                    )
                    client.put_object(Bucket=loc.bucket, Key=loc.key, Body=b"")
                    return 0
                client.complete_multipart_upload(
                    Bucket=loc.bucket,
                    Key=loc.key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
        except BaseException:
            LOG.warning("upload to %s failed: aborting its multipart upload", loc.redacted())
            for job, _, _ in sending:  # a part still on its way could land after the abort
                with contextlib.suppress(Exception):
                    job.wait()
            try:
                client.abort_multipart_upload(Bucket=loc.bucket, Key=loc.key, UploadId=upload_id)
            except Exception as err:  # the upload's own error is the one to report
                LOG.error("could not abort the upload of %s: %s", loc.redacted(), err)
            raise
        return nbytes

    @staticmethod
    def _retire(sending: collections.deque, free: list[bytearray]) -> dict:
        """The oldest part's entry for completing the upload, once it is sent and hashed;
        its buffer goes back to `free`."""
        sent, hashed, part = sending.popleft()
        hashed.wait()
        entry = sent.wait()
        free.append(part)
        return entry

    def _send_part(self, client, loc: S3Location, upload_id: str, number: int, body) -> dict:
        with self._errors(loc):
            etag = client.upload_part(
                Bucket=loc.bucket,
                Key=loc.key,
                UploadId=upload_id,
                PartNumber=number,
                Body=_PartReader(body),
                ContentLength=len(body),
            )["ETag"]
        return {"ETag": etag, "PartNumber": number}

    def _ensure_bucket(self, client) -> None:
        if self._bucket_seen:
            return
        try:
            client.head_bucket(Bucket=self._bucket)
        except botocore.exceptions.ClientError as err:
            if _code(err) not in NOT_FOUND:
                raise
            if not self._create_bucket:
                raise BackendUnavailable(
                    f"The bucket {self._bucket} does not exist in S3 at {self._endpoint}. "
                    "Set s3_store_create_bucket_on_put to create it on upload."
                ) from None
            LOG.info("Creating S3 bucket %s", self._bucket)
            client.create_bucket(Bucket=self._bucket)
        self._bucket_seen = True

    def _exists(self, client, key: str) -> bool:
        try:
            client.head_object(Bucket=self._bucket, Key=key)
        except botocore.exceptions.ClientError as err:
            if _code(err) in NOT_FOUND:
                return False
            raise
        return True

    def _errors(self, loc: S3Location):
        return _s3_errors(loc.endpoint, loc.access_key, loc.redacted())

    def _client(self, loc: S3Location):
        key = (loc.endpoint, loc.access_key, loc.secret_key)
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = boto3.client(
                "s3",
                endpoint_url=loc.endpoint,
                aws_access_key_id=loc.access_key,
                aws_secret_access_key=loc.secret_key,
                region_name="us-east-1",
                config=self._config,
            )
        return client


def _parts(chunks: Iterable[bytes], size: int, free: list[bytearray]) -> Iterator[bytearray]:
    """The chunks in parts of `size` bytes (the last one shorter): received straight into
    a part where `chunks` has readinto (an upload's request body), else copied in. A
    part is not touched once handed out until the caller puts it in `free`, from which
    the next ones are taken (a new buffer of 10 MiB costs its page faults each time)."""
    readinto = readinto_of(chunks)
    while True:
        part = _buffer(size, free)
        filled = read_full(readinto, part)
        if filled < size:
            if filled:
                del part[filled:]
                yield part
            return
        yield part


class _PartReader(io.RawIOBase):
    """A part's buffer as the file boto3 reads it from: piece by piece, and rewound after
    signing it. Given the buffer itself, the green socket's sendall would copy what is
    left of it after every partial send.

    read() hands out views of the buffer, not copies: botocore hashes what it reads (the
    SigV4 payload hash, its checksum) and urllib3 sends it, and both take any bytes-like
    piece; a copy of each would cost glance-api two extra passes over every part. The
    buffer is filled again only once the part is sent (S3Store._retire)."""

    def __init__(self, part: bytearray):
        self._view = memoryview(part)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> memoryview:
        end = len(self._view) if size is None or size < 0 else self._pos + size
        piece = self._view[self._pos : end]
        self._pos += len(piece)
        return piece

    def readinto(self, buffer) -> int:
        piece = self.read(len(buffer))
        buffer[: len(piece)] = piece
        return len(piece)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos


def _buffer(size: int, free: list[bytearray]) -> bytearray:
    return free.pop() if free else bytearray(size)


class _S3Chunks(RemoteChunks):
    def __init__(self, body, length: int, shown: str, chunk_size: int):
        super().__init__(length, shown)
        self._body = body
        self._chunk_size = chunk_size

    def _read(self, at_most: int) -> bytes:
        return self._body.read(min(self._chunk_size, at_most)) if self._body else b""

    def _release(self, complete: bool) -> None:
        if self._body is not None:
            self._body.close()


def from_conf(conf: cfg.ConfigOpts, offload: Offload = DIRECT) -> S3Store:
    """The s3 store of `[glance_store]` (the entry point `s3`)."""
    if boto3 is None:
        raise exceptions.ConfigError("The s3 store needs boto3: pip install 'glance-lite[s3]'")
    opts.register_store_opts(conf)
    opts.register_s3_store_opts(conf)
    group = conf[opts.STORE_GROUP]
    missing = [
        name
        for name in (
            "s3_store_host",
            "s3_store_access_key",
            "s3_store_secret_key",
            "s3_store_bucket",
        )
        if not group[name]
    ]
    if missing:
        raise exceptions.ConfigError(f"The s3 store needs {', '.join(missing)}")
    store = S3Store(
        group.s3_store_host,
        group.s3_store_access_key,
        group.s3_store_secret_key,
        group.s3_store_bucket,
        create_bucket=group.s3_store_create_bucket_on_put,
        addressing=group.s3_store_bucket_url_format,
        large_object_size=group.s3_store_large_object_size * MiB,
        chunk_size=group.s3_store_large_object_chunk_size * MiB,
        thread_pools=group.s3_store_thread_pools,
        timeout=group.s3_store_timeout,
        offload=offload,
    )
    store.check()
    return store
