"""What only the file store does: files on disk, OS error mapping, strict locations."""

import contextlib
import errno
import fcntl
import os
import stat
import sys

import pytest

from glance_lite import exceptions, offload
from glance_lite.store import filesystem
from glance_lite.store.base import (
    BadStoreUri,
    Duplicate,
    ShortData,
    StorageFull,
    StorageWriteDenied,
)
from glance_lite.store.filesystem import DIRECT_ALIGN, FilesystemStore

IMAGE_ID = "71c675ab-d94f-49cd-a114-e12490b328d9"
# The store's write buffer, 64 KiB here instead of 4 MiB: the same batching, 64 times
# fewer bytes on disk (the store reads WRITE_BUFFER at each upload; the contract tests
# store images of several buffers of the real size).
WRITE_BUFFER = 16 * DIRECT_ALIGN


@pytest.fixture(autouse=True)
def small_write_buffer(monkeypatch):
    monkeypatch.setattr(filesystem, "WRITE_BUFFER", WRITE_BUFFER)


@pytest.fixture
def datadir(tmp_path):
    path = tmp_path / "images"
    path.mkdir()
    return path


@pytest.fixture
def store(datadir):
    return FilesystemStore(str(datadir))


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_the_image_is_a_plain_file_named_after_its_id(store, datadir):
    result = store.add(IMAGE_ID, iter([b"hello"]), 5)
    assert result.location == f"file://{datadir}/{IMAGE_ID}"
    assert (datadir / IMAGE_ID).read_bytes() == b"hello"
    assert os.listdir(datadir) == [IMAGE_ID]


def test_a_relative_datadir_gives_absolute_locations(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = FilesystemStore(".").add(IMAGE_ID, iter([b"x"]), None)
    assert result.location == f"file://{tmp_path}/{IMAGE_ID}"


def test_data_goes_to_a_hidden_temp_file_until_complete(store, datadir):
    seen = []

    def chunks():
        yield b"x" * (WRITE_BUFFER + 1)
        seen.extend(os.listdir(datadir))
        yield b"y"

    store.add(IMAGE_ID, chunks(), None)
    assert len(seen) == 1
    assert seen[0].startswith(f".{IMAGE_ID}.") and seen[0].endswith(".tmp")
    assert os.listdir(datadir) == [IMAGE_ID]


def test_the_filesystem_scheme_is_accepted_too(store, datadir):
    store.add(IMAGE_ID, iter([b"abc"]), None)
    assert store.get_size(f"filesystem://{datadir}/{IMAGE_ID}") == 3


def test_an_image_created_meanwhile_is_a_duplicate_and_is_not_overwritten(store, datadir):
    def chunks():
        yield b"mine"
        (datadir / IMAGE_ID).write_bytes(b"theirs")

    with pytest.raises(Duplicate):
        store.add(IMAGE_ID, chunks(), None)
    assert (datadir / IMAGE_ID).read_bytes() == b"theirs"
    assert os.listdir(datadir) == [IMAGE_ID]


def test_without_hard_links_the_temp_file_is_renamed(store, datadir, monkeypatch):
    def no_link(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_link)
    store.add(IMAGE_ID, iter([b"abc"]), None)
    assert os.listdir(datadir) == [IMAGE_ID]


@pytest.mark.parametrize("image_id", ["", ".hidden", "..", "a/b", "../etc", "x\0y", "i" * 201])
def test_an_image_id_that_is_no_plain_file_name_is_refused(store, datadir, image_id):
    with pytest.raises(exceptions.Invalid):
        store.add(image_id, iter([b"x"]), None)
    assert os.listdir(datadir) == []


# -- OS errors while writing


def fail_with(code):
    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    return fail


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EFBIG])
def test_a_full_medium_is_storage_full_and_leaves_nothing(store, datadir, monkeypatch, code):
    monkeypatch.setattr(os, "pwrite", fail_with(code))
    with pytest.raises(StorageFull) as caught:
        store.add(IMAGE_ID, iter([b"x" * 100]), None)
    assert caught.value.status == 413
    assert str(caught.value) == (
        "Image storage media is full: There is not enough disk space on the image storage media."
    )
    assert os.listdir(datadir) == []


def test_a_full_medium_found_at_fsync_is_storage_full_too(datadir):
    class FullAtFsync(offload.Direct):
        def __call__(self, fn, *args):
            if fn is os.fsync:
                raise OSError(errno.ENOSPC, "No space left on device")
            return fn(*args)

    with pytest.raises(StorageFull):
        FilesystemStore(str(datadir), offload=FullAtFsync()).add(IMAGE_ID, iter([b"x"]), None)
    assert os.listdir(datadir) == []


@pytest.mark.parametrize("code", [errno.EACCES, errno.EPERM, errno.EROFS])
def test_a_write_protected_medium_is_write_denied(store, datadir, monkeypatch, code):
    real_open = os.open

    def refuse_create(path, flags, *args, **kwargs):
        if flags & os.O_CREAT:
            raise OSError(code, os.strerror(code), path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse_create)
    with pytest.raises(StorageWriteDenied) as caught:
        store.add(IMAGE_ID, iter([b"x"]), None)
    assert caught.value.status == 503
    assert str(caught.value).startswith("Insufficient permissions on image storage media: ")
    assert os.listdir(datadir) == []


def test_a_denied_write_midway_removes_the_temp_file(store, datadir, monkeypatch):
    monkeypatch.setattr(os, "pwrite", fail_with(errno.EACCES))
    with pytest.raises(StorageWriteDenied):
        store.add(IMAGE_ID, iter([b"x" * 100]), None)
    assert os.listdir(datadir) == []


def test_another_os_error_while_writing_propagates_as_is(store, datadir, monkeypatch):
    monkeypatch.setattr(os, "pwrite", fail_with(errno.EIO))
    with pytest.raises(OSError) as caught:
        store.add(IMAGE_ID, iter([b"x"]), None)
    assert caught.value.errno == errno.EIO
    assert os.listdir(datadir) == []


def test_an_os_error_from_the_iterator_is_not_taken_for_a_full_medium(store, datadir):
    failure = OSError(errno.ENOSPC, "the caller's own error")

    def chunks():
        yield b"x"
        raise failure

    with pytest.raises(OSError) as caught:
        store.add(IMAGE_ID, chunks(), None)
    assert caught.value is failure
    assert os.listdir(datadir) == []


@pytest.mark.parametrize("io", ["direct", "buffered"])
def test_a_short_write_is_completed(datadir, monkeypatch, io):
    if io == "buffered":
        monkeypatch.delattr(os, "O_DIRECT", raising=False)
    real_pwrite = os.pwrite
    # short by whole blocks, as a disk written with O_DIRECT would be
    monkeypatch.setattr(
        os, "pwrite", lambda fd, data, offset: real_pwrite(fd, data[:DIRECT_ALIGN], offset)
    )
    data = [b"abcdef" * 1000, b"ghij", b"klmnop" * 3000]
    FilesystemStore(str(datadir)).add(IMAGE_ID, iter(data), None)
    assert (datadir / IMAGE_ID).read_bytes() == b"".join(data)


def test_blocking_work_goes_through_offload(datadir):
    calls = []

    class Recording(offload.Direct):
        def __call__(self, fn, *args):
            calls.append(fn.__name__)
            return fn(*args)

    store = FilesystemStore(str(datadir), offload=Recording())
    store.add(IMAGE_ID, iter([b"x" * WRITE_BUFFER, b"y"]), None)
    assert calls == [
        "_hash_block",
        "_write_block",
        "_hash_block",
        "_write_block",
        "fsync",
        "_fsync_dir",
    ]


# -- O_DIRECT


def direct_io_flags(monkeypatch) -> list[bool]:
    """Whether each block the store writes goes through an O_DIRECT descriptor."""
    seen = []
    real = filesystem._write_block

    def spy(fd, *args):
        seen.append(bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT))
        return real(fd, *args)

    monkeypatch.setattr(filesystem, "_write_block", spy)
    return seen


def takes_o_direct(directory) -> bool:
    """Whether the file system of `directory` lets a file be opened with O_DIRECT."""
    probe = os.path.join(directory, ".probe")
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o600))
    except OSError as err:
        if err.errno == errno.EINVAL:
            return False
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(probe)
    return True


@pytest.mark.skipif(not hasattr(os, "O_DIRECT"), reason="O_DIRECT is Linux's")
@pytest.mark.parametrize("size", [1, DIRECT_ALIGN, WRITE_BUFFER + DIRECT_ALIGN + 7])
def test_uploads_bypass_the_page_cache_and_keep_their_exact_size(datadir, monkeypatch, size):
    if not takes_o_direct(datadir):
        pytest.skip(f"the file system of {datadir} does not take O_DIRECT")
    seen = direct_io_flags(monkeypatch)
    data = os.urandom(size)
    result = FilesystemStore(str(datadir)).add(IMAGE_ID, iter([data[:5], data[5:]]), None)
    assert seen and all(seen)
    assert result.size == size
    assert (datadir / IMAGE_ID).read_bytes() == data


@pytest.mark.skipif(not hasattr(os, "O_DIRECT"), reason="O_DIRECT is Linux's")
def test_a_file_system_without_o_direct_gets_buffered_writes(datadir, monkeypatch):
    real_open = os.open

    def no_direct(path, flags, *args):
        if flags & os.O_DIRECT:
            os.close(real_open(path, flags & ~os.O_DIRECT, *args))  # created, then refused
            raise OSError(errno.EINVAL, "Invalid argument", path)
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", no_direct)
    seen = direct_io_flags(monkeypatch)
    data = b"z" * (WRITE_BUFFER + 3)
    FilesystemStore(str(datadir)).add(IMAGE_ID, iter([data]), None)
    assert seen == [False, False]
    assert os.listdir(datadir) == [IMAGE_ID]
    assert (datadir / IMAGE_ID).read_bytes() == data


@pytest.mark.skipif(not hasattr(os, "O_DIRECT"), reason="O_DIRECT is Linux's")
def test_direct_writes_refused_after_open_go_through_the_page_cache(datadir, monkeypatch):
    if not takes_o_direct(datadir):
        pytest.skip(f"the file system of {datadir} does not take O_DIRECT")
    real_pwrite = os.pwrite
    refused = []

    def picky(fd, data, offset):
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            refused.append(offset)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", picky)
    data = os.urandom(WRITE_BUFFER + DIRECT_ALIGN + 3)
    result = FilesystemStore(str(datadir)).add(IMAGE_ID, iter([data]), None)
    assert refused == [0]  # once: the descriptor then writes through the page cache
    assert result.size == len(data)
    assert (datadir / IMAGE_ID).read_bytes() == data


# -- write-behind (buffered writes)


def test_writeback_starts_for_each_batch_as_it_is_written(datadir, monkeypatch):
    monkeypatch.delattr(os, "O_DIRECT", raising=False)  # buffered writes only
    store = FilesystemStore(str(datadir))
    started = []
    real = filesystem._start_writeback

    def record(fd, offset, nbytes):
        started.append((offset, nbytes, os.fstat(fd).st_size))
        return real(fd, offset, nbytes)

    monkeypatch.setattr(filesystem, "_start_writeback", record)
    data = [b"a" * WRITE_BUFFER, b"b" * WRITE_BUFFER, b"c" * 10]
    store.add(IMAGE_ID, iter(data), None)
    # each range right after its own write (the file already that long), back to back
    assert started == [
        (0, WRITE_BUFFER, WRITE_BUFFER),
        (WRITE_BUFFER, WRITE_BUFFER, 2 * WRITE_BUFFER),
        (2 * WRITE_BUFFER, 10, 2 * WRITE_BUFFER + 10),
    ]
    assert (datadir / IMAGE_ID).read_bytes() == b"".join(data)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sync_file_range is Linux's")
def test_the_writeback_call_is_found_and_accepted_on_linux(tmp_path):
    assert filesystem._start_writeback is not None
    with open(tmp_path / "f", "wb") as f:
        f.write(b"x" * 8192)
        assert filesystem._start_writeback(f.fileno(), 0, 8192) == 0


def test_a_refused_writeback_only_leaves_the_work_to_the_final_fsync(datadir, monkeypatch):
    monkeypatch.delattr(os, "O_DIRECT", raising=False)  # buffered writes only
    monkeypatch.setattr(filesystem, "_start_writeback", lambda fd, offset, nbytes: -1)
    result = FilesystemStore(str(datadir)).add(IMAGE_ID, iter([b"x" * 100]), None)
    assert result.size == 100
    assert (datadir / IMAGE_ID).read_bytes() == b"x" * 100


# -- permissions


def test_new_files_get_the_configured_permission(datadir):
    FilesystemStore(str(datadir), file_perm=0o640).add(IMAGE_ID, iter([b"x"]), None)
    assert stat.S_IMODE(os.stat(datadir / IMAGE_ID).st_mode) == 0o640


def test_without_a_permission_new_files_follow_the_umask(store, datadir):
    old = os.umask(0o027)
    try:
        store.add(IMAGE_ID, iter([b"x"]), None)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(datadir / IMAGE_ID).st_mode) == 0o640


@pytest.mark.parametrize("perm", [0o200, 0o044, 0o10000, -1])
def test_a_permission_glance_could_not_read_or_no_mode_is_refused(datadir, perm):
    with pytest.raises(exceptions.ConfigError):
        FilesystemStore(str(datadir), file_perm=perm)


# -- strict locations


def escaping_locations(datadir):
    return [
        "file:///etc/passwd",
        f"file://{datadir}/../{IMAGE_ID}",
        f"file://{datadir}/./{IMAGE_ID}",
        f"file://{datadir}//{IMAGE_ID}",
        f"file://{datadir}/sub/{IMAGE_ID}",
        f"file://{datadir}/",
        f"file://{datadir}",
        f"file://{datadir}/.{IMAGE_ID}.0123.tmp",
        f"file://host{datadir}/{IMAGE_ID}",
        f"file:{datadir}/{IMAGE_ID}",
        f"file://images/{IMAGE_ID}",
    ]


@pytest.mark.parametrize("index", range(11))
@pytest.mark.parametrize("call", ["get", "get_size", "delete"])
def test_a_location_outside_the_datadir_is_a_bad_uri(store, datadir, index, call):
    (datadir / "sub").mkdir()
    location = escaping_locations(datadir)[index]
    with pytest.raises(BadStoreUri) as caught:
        getattr(store, call)(location)
    assert caught.value.status == 400


@pytest.mark.parametrize("call", ["get", "get_size", "delete"])
def test_a_symlink_out_of_the_datadir_is_a_bad_uri(store, datadir, tmp_path, call):
    secret = tmp_path / "secret"
    secret.write_bytes(b"secret")
    (datadir / IMAGE_ID).symlink_to(secret)
    with pytest.raises(BadStoreUri):
        getattr(store, call)(f"file://{datadir}/{IMAGE_ID}")
    assert secret.read_bytes() == b"secret"
    assert (datadir / IMAGE_ID).is_symlink()


def test_a_directory_in_place_of_an_image_is_a_bad_uri(store, datadir):
    (datadir / IMAGE_ID).mkdir()
    with pytest.raises(BadStoreUri):
        store.get(f"file://{datadir}/{IMAGE_ID}")


def test_a_negative_offset_is_invalid(store):
    location = store.add(IMAGE_ID, iter([b"abc"]), None).location
    with pytest.raises(exceptions.Invalid):
        store.get(location, offset=-1)


# -- reading


def test_get_reads_in_the_store_chunk_size_by_default(datadir):
    store = FilesystemStore(str(datadir), chunk_size=4)
    location = store.add(IMAGE_ID, iter([b"0123456789"]), None).location
    chunks, _ = store.get(location)
    assert list(chunks) == [b"0123", b"4567", b"89"]


def test_the_get_iterator_holds_one_descriptor_until_closed(store):
    location = store.add(IMAGE_ID, iter([b"x" * 10_000]), None).location
    before = fd_count()
    chunks, _ = store.get(location, chunk_size=100)
    next(chunks)
    assert fd_count() == before + 1
    chunks.close()
    assert fd_count() == before


def test_a_dropped_get_iterator_closes_its_descriptor(store):
    location = store.add(IMAGE_ID, iter([b"x" * 10_000]), None).location
    before = fd_count()
    chunks, _ = store.get(location, chunk_size=100)
    next(chunks)
    del chunks
    assert fd_count() == before


def test_data_that_shrinks_after_get_raises_instead_of_ending_early(store, datadir, caplog):
    location = store.add(IMAGE_ID, iter([b"x" * 10_000]), None).location
    before = fd_count()
    chunks, size = store.get(location, chunk_size=1000)
    assert size == 10_000
    assert next(chunks) == b"x" * 1000
    os.truncate(datadir / IMAGE_ID, 2500)
    assert next(chunks) == b"x" * 1000
    assert next(chunks) == b"x" * 500
    with pytest.raises(ShortData, match="ended 7500 bytes before its length"):
        next(chunks)
    assert fd_count() == before  # the descriptor went with the error
    assert list(chunks) == []
    assert f"{IMAGE_ID} ended 7500 bytes before its length" in caplog.text


def test_a_read_of_data_that_shrank_raises_too(store, datadir):
    # read(n) is how a server takes the first block before sending the rest by sendfile()
    location = store.add(IMAGE_ID, iter([b"y" * 10_000]), None).location
    chunks, _ = store.get(location)
    os.truncate(datadir / IMAGE_ID, 0)
    with pytest.raises(ShortData):
        chunks.read(4096)


def test_data_that_grows_after_get_is_given_up_to_its_length_only(store, datadir):
    location = store.add(IMAGE_ID, iter([b"z" * 3000]), None).location
    chunks, size = store.get(location, chunk_size=1000)
    with open(datadir / IMAGE_ID, "ab") as f:
        f.write(b"extra")
    assert b"".join(chunks) == b"z" * 3000 == b"z" * size


def test_deleting_a_file_that_cannot_be_removed_is_write_denied(store, monkeypatch):
    location = store.add(IMAGE_ID, iter([b"x"]), None).location
    monkeypatch.setattr(os, "unlink", fail_with(errno.EACCES))
    with pytest.raises(StorageWriteDenied):
        store.delete(location)


# -- temporary files of interrupted uploads


def test_an_abandoned_temporary_file_is_swept_and_one_in_use_is_kept(datadir):
    abandoned = datadir / f".{IMAGE_ID}.0123456789abcdef.tmp"
    abandoned.write_bytes(b"half an upload")
    in_use = datadir / ".other.fedcba9876543210.tmp"
    in_use.write_bytes(b"being written")
    unrelated = [datadir / ".hidden", datadir / "notes.tmp", datadir / IMAGE_ID]
    for path in unrelated:
        path.write_bytes(b"x")
    with open(in_use, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as the writing process holds it
        assert filesystem.sweep_stale_temps(str(datadir)) == [abandoned.name]
    assert not abandoned.exists() and in_use.exists()
    assert all(path.exists() for path in unrelated)


def test_an_upload_holds_its_temporary_file_until_it_has_its_name(datadir):
    store = FilesystemStore(str(datadir))
    swept = []

    def chunks():
        yield b"a" * 1000
        swept.extend(filesystem.sweep_stale_temps(str(datadir)))  # mid-upload
        yield b"b" * 1000

    result = store.add(IMAGE_ID, chunks(), None)
    assert swept == [] and result.size == 2000
    assert os.listdir(datadir) == [IMAGE_ID]


def test_discarding_the_partial_data_of_one_image_leaves_the_others(datadir):
    store = FilesystemStore(str(datadir))
    mine = datadir / f".{IMAGE_ID}.0123456789abcdef.tmp"
    other = datadir / ".71c675ab-0000-0000-0000-e12490b328d9.0123456789abcdef.tmp"
    held = datadir / f".{IMAGE_ID}.fedcba9876543210.tmp"
    for path in (mine, other, held):
        path.write_bytes(b"half an upload")
    with open(held, "rb") as fileobj:
        fcntl.flock(fileobj, fcntl.LOCK_EX)  # a live upload of the same id: kept
        store.discard_partial(IMAGE_ID, None)
    assert not mine.exists() and other.exists() and held.exists()


def test_an_upload_whose_new_temporary_file_a_sweep_removes_writes_another(
    store, datadir, monkeypatch
):
    """A worker that starts (a reload) sweeps abandoned temporary files; it may come
    between an upload's creating its file and locking it. The upload then must not write
    into the removed file (its publishing failed with ENOENT, and the upload with it)."""
    real_open = os.open
    swept = []

    def open_then_sweep(path, flags, *args, **kwargs):
        fd = real_open(path, flags, *args, **kwargs)
        if flags & os.O_CREAT and not swept:
            swept.extend(filesystem.sweep_stale_temps(str(datadir)))  # before its lock
        return fd

    monkeypatch.setattr(os, "open", open_then_sweep)
    result = store.add(IMAGE_ID, [b"abc"], 3)
    assert len(swept) == 1  # the sweep did remove the first file
    assert (datadir / IMAGE_ID).read_bytes() == b"abc"
    assert result.size == 3
    assert [p.name for p in datadir.iterdir()] == [IMAGE_ID]
