from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest

from runctl.errors import LocalIOError, NetworkError, NotFoundError, UsageError
from runctl.stores.base import Entry, ProgressFn, Reader, Store
from runctl.stores.local import TMP_MARK, LocalStore, safe_relpath


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


async def collect(it: AsyncIterator[Entry]) -> list[Entry]:
    return [e async for e in it]


def all_names(root: Path) -> list[str]:
    """Every file and directory below ``root`` (hidden ones included), relative."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


# -- a source store in memory, with fault injection -------------------------------------


class FaultInjectingReader(Reader):
    def __init__(self, store: MemoryStore, data: bytes, offset: int, length: int | None) -> None:
        self.size = len(data)
        self.mtime = store.mtime
        self._store = store
        self._offset = offset
        self._data = data[offset : None if length is None else offset + length]

    async def chunks(self) -> AsyncIterator[bytes]:
        self._store.active += 1
        self._store.max_active = max(self._store.max_active, self._store.active)
        try:
            for n, i in enumerate(range(0, len(self._data), self._store.chunk)):
                if n >= 1 and self._store.should_fail(self._offset):
                    raise self._store.fail_with
                await asyncio.sleep(0)  # let other parts run, as a network read would
                if self._store.block is not None and n >= 1:
                    await self._store.block.wait()
                yield self._data[i : i + self._store.chunk]
        finally:
            self._store.active -= 1


class MemoryStore(Store):
    """A source store whose files live in memory. ``fail_with`` makes every read (or only
    reads at ``fail_offsets``) raise after its first chunk: a connection dropped mid-file."""

    def __init__(
        self,
        files: dict[str, bytes],
        *,
        mtime: float | None = 1_600_000_000.25,
        chunk: int = 256,
        fail_with: BaseException | None = None,
        fail_offsets: set[int] | None = None,
    ) -> None:
        self.url = "mem://"
        self.files = files
        self.mtime = mtime
        self.chunk = chunk
        self.fail_with = fail_with
        self.fail_offsets = fail_offsets
        self.opens: list[tuple[int, int | None]] = []
        self.active = 0
        self.max_active = 0
        self.block: asyncio.Event | None = None

    def should_fail(self, offset: int) -> bool:
        return self.fail_with is not None and (self.fail_offsets is None or offset in self.fail_offsets)

    def entry(self, path: str) -> Entry:
        return Entry(path, len(self.files[path]), 1_500_000_000.0)

    async def list(self) -> AsyncIterator[Entry]:
        for path in sorted(self.files):
            yield self.entry(path)

    async def stat(self, path: str) -> Entry | None:
        return self.entry(path) if path in self.files else None

    async def open(
        self, path: str, offset: int = 0, length: int | None = None, version: str | None = None
    ) -> Reader:
        self.opens.append((offset, length))
        return FaultInjectingReader(self, self.files[path], offset, length)

    async def write(self, path: str, src: Store, entry: Entry, progress: ProgressFn) -> None:
        raise NotImplementedError

    async def delete(self, paths: Iterable[str]) -> None:
        raise NotImplementedError


def payload(n: int) -> bytes:
    return bytes((i * 7 + i // 251) % 256 for i in range(n))


# -- safe_relpath -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["a", "a/b.txt", "dir with space/ünï cödé.txt", ".hidden", "a..b", "..a", "a/...", "x/.y/z"],
)
def test_safe_relpath_accepts_paths_inside_the_root(path: str) -> None:
    assert safe_relpath(path) == path


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/abs",
        "/",
        "..",
        ".",
        "../x",
        "../../etc/passwd",
        "a/../b",
        "a/..",
        "./a",
        "a/./b",
        "a//b",
        "a/",
        "a\0b",
    ],
)
def test_safe_relpath_refuses_paths_that_escape_or_are_not_clean(path: str) -> None:
    assert safe_relpath(path) is None


@pytest.mark.parametrize("path", ["back\\slash.py", "C:\\windows-path.txt", "a\\..\\b", "d/x\\y"])
def test_safe_relpath_keeps_backslash_names_on_posix(path: str) -> None:
    """One legal POSIX name each (git, tar and rsync copy them): no separator inside."""
    assert safe_relpath(path) == path


# -- listing, stat, open ----------------------------------------------------------------


def test_list_is_sorted_recursive_and_skips_temp_files_and_dirs(tmp_path: Path) -> None:
    (tmp_path / "b" / "c").mkdir(parents=True)
    (tmp_path / "empty-dir").mkdir()
    (tmp_path / "b" / "c" / "deep.txt").write_bytes(b"12345")
    (tmp_path / "a.txt").write_bytes(b"")
    (tmp_path / "b" / "z.txt").write_bytes(b"z")
    (tmp_path / "b" / f".z.txt{TMP_MARK}abcd").write_bytes(b"partial")
    entries = run(collect(LocalStore(tmp_path).list()))
    assert [e.path for e in entries] == ["a.txt", "b/c/deep.txt", "b/z.txt"]
    assert [e.size for e in entries] == [0, 5, 1]
    assert entries[1].mtime == (tmp_path / "b" / "c" / "deep.txt").stat().st_mtime


def test_list_of_missing_root_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        run(collect(LocalStore(tmp_path / "nope").list()))


def test_stat(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "f").write_bytes(b"abc")
    store = LocalStore(tmp_path)
    entry = run(store.stat("f"))
    assert entry is not None and (entry.path, entry.size) == ("f", 3)
    assert run(store.stat("missing")) is None
    assert run(store.stat("d")) is None
    with pytest.raises(UsageError):
        run(store.stat("../f"))


def test_open_reads_a_byte_range(tmp_path: Path) -> None:
    data = payload(3 * 1024 * 1024 + 17)
    (tmp_path / "f").write_bytes(data)
    store = LocalStore(tmp_path)

    async def read(offset: int, length: int | None) -> bytes:
        reader = await store.open("f", offset, length)
        assert reader.size == len(data)
        return b"".join([c async for c in reader.chunks()])

    assert run(read(0, None)) == data
    assert run(read(1_000_000, 2_000_000)) == data[1_000_000:3_000_000]
    assert run(read(len(data) - 5, None)) == data[-5:]


def test_open_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        run(LocalStore(tmp_path).open("missing"))


# -- writing ------------------------------------------------------------------------------


def test_write_from_local_store_copies_bytes_and_mtime(tmp_path: Path) -> None:
    src_root, dst_root = tmp_path / "src", tmp_path / "dst"
    src_root.mkdir()
    data = payload(100_000)
    (src_root / "f.bin").write_bytes(data)
    os.utime(src_root / "f.bin", (1_600_000_000.123456, 1_600_000_000.123456))
    src, dst = LocalStore(src_root), LocalStore(dst_root)
    moved: list[int] = []
    run(dst.write("x/y/f.bin", src, run(src.stat("f.bin")), moved.append))
    out = dst_root / "x" / "y" / "f.bin"
    assert out.read_bytes() == data
    assert abs(out.stat().st_mtime - 1_600_000_000.123456) < 1e-3
    assert sum(moved) == len(data)
    assert all_names(dst_root) == ["x", "x/y", "x/y/f.bin"]


def test_write_small_file_from_a_stream(tmp_path: Path) -> None:
    data = payload(5000)
    src = MemoryStore({"f": data})
    dst = LocalStore(tmp_path, part_size=8192)
    moved: list[int] = []
    run(dst.write("f", src, src.entry("f"), moved.append))
    assert (tmp_path / "f").read_bytes() == data
    assert src.opens == [(0, None)]  # one whole read: no ranges for a small file
    assert sum(moved) == len(data)
    # The reader's recorded mtime (S3 metadata) wins over the listing's LastModified.
    assert abs((tmp_path / "f").stat().st_mtime - 1_600_000_000.25) < 1e-3


def test_write_uses_listing_mtime_when_the_source_recorded_none(tmp_path: Path) -> None:
    src = MemoryStore({"f": b"abc"}, mtime=None)
    run(LocalStore(tmp_path).write("f", src, src.entry("f"), lambda n: None))
    assert (tmp_path / "f").stat().st_mtime == 1_500_000_000.0


def test_write_empty_file(tmp_path: Path) -> None:
    src = MemoryStore({"empty": b""})
    run(LocalStore(tmp_path).write("empty", src, src.entry("empty"), lambda n: None))
    assert (tmp_path / "empty").read_bytes() == b""
    assert all_names(tmp_path) == ["empty"]


def test_write_large_file_with_ranged_reads_in_flight(tmp_path: Path) -> None:
    part = 1000
    data = payload(10 * part + 500)
    src = MemoryStore({"big": data}, chunk=300)
    dst = LocalStore(tmp_path, part_size=part, parts_in_flight=3)
    moved: list[int] = []
    run(dst.write("big", src, src.entry("big"), moved.append))
    assert (tmp_path / "big").read_bytes() == data
    assert sorted(src.opens) == [(off, min(part, len(data) - off)) for off in range(0, len(data), part)]
    assert src.max_active <= 3
    assert src.max_active >= 2  # parts really overlap
    assert sum(moved) == len(data)
    assert all_names(tmp_path) == ["big"]


def test_write_overwrites_an_existing_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"old contents that are longer than the new")
    src = MemoryStore({"f": b"new"})
    run(LocalStore(tmp_path).write("f", src, src.entry("f"), lambda n: None))
    assert (tmp_path / "f").read_bytes() == b"new"
    assert all_names(tmp_path) == ["f"]


@pytest.mark.parametrize("path", ["../escape", "/abs", "a/../../b", ""])
def test_write_refuses_unsafe_paths(tmp_path: Path, path: str) -> None:
    dst_root = tmp_path / "dst"
    dst_root.mkdir()
    src = MemoryStore({path: b"evil"})
    with pytest.raises(UsageError):
        run(LocalStore(dst_root).write(path, src, src.entry(path), lambda n: None))
    assert all_names(tmp_path) == ["dst"]


# -- fault injection: a failed transfer leaves nothing behind ----------------------------

SMALL = 700  # below the part size (1000 in these tests): one stream
LARGE = 10_500  # above it: ranged reads in flight
FAULTS = [
    pytest.param(NetworkError("connection reset"), NetworkError, id="network-error"),
    pytest.param(OSError(5, "Input/output error"), LocalIOError, id="os-error"),
    pytest.param(RuntimeError("boom"), RuntimeError, id="unexpected-error"),
]


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["small", "multipart"])
@pytest.mark.parametrize(("fault", "raised"), FAULTS)
def test_fault_injection_reader_dies_after_first_chunk_leaves_no_file(
    tmp_path: Path, size: int, fault: BaseException, raised: type[BaseException]
) -> None:
    src = MemoryStore({"f": payload(size)}, chunk=256, fail_with=fault)
    dst = LocalStore(tmp_path / "dst", part_size=1000, parts_in_flight=3)
    with pytest.raises(Exception):  # noqa: B017 - the type is checked by the next test
        run(dst.write("sub/f", src, src.entry("f"), lambda n: None))
    assert not (tmp_path / "dst" / "sub" / "f").exists()
    leftovers = [n for n in all_names(tmp_path / "dst") if n != "sub"]
    assert leftovers == [], f"temp files left behind: {leftovers}"


@pytest.mark.parametrize(
    ("size", "fail_offsets"),
    [(SMALL, None), (LARGE, None), (LARGE, {7000})],
    ids=["small", "multipart-every-part", "multipart-one-later-part"],
)
@pytest.mark.parametrize(("fault", "raised"), FAULTS)
def test_fault_injection_error_is_raised_as_its_own_type_not_an_exception_group(
    tmp_path: Path,
    size: int,
    fault: BaseException,
    raised: type[BaseException],
    fail_offsets: set[int] | None,
) -> None:
    """The executor retries NetworkError and records other RunctlErrors per file; both need
    the error itself, not an ExceptionGroup from the ranged parts' TaskGroup."""
    src = MemoryStore({"f": payload(size)}, chunk=256, fail_with=fault, fail_offsets=fail_offsets)
    dst = LocalStore(tmp_path, part_size=1000, parts_in_flight=3)
    with pytest.raises(BaseException) as info:
        run(dst.write("f", src, src.entry("f"), lambda n: None))
    exc = info.value
    assert type(exc) is raised, f"expected {raised.__name__}, got {type(exc).__name__}: {exc!r}"
    assert all_names(tmp_path) == []


@pytest.mark.parametrize(("fault", "raised"), FAULTS)
def test_fault_injection_failure_in_a_later_part_only_leaves_no_file(
    tmp_path: Path, fault: BaseException, raised: type[BaseException]
) -> None:
    src = MemoryStore({"f": payload(LARGE)}, chunk=256, fail_with=fault, fail_offsets={7000})
    dst = LocalStore(tmp_path, part_size=1000, parts_in_flight=2)
    with pytest.raises(Exception):  # noqa: B017 - the type is checked above
        run(dst.write("f", src, src.entry("f"), lambda n: None))
    assert (0, 1000) in src.opens  # the first part was read before the failure
    assert (7000, 1000) in src.opens
    assert all_names(tmp_path) == []


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["small", "multipart"])
def test_fault_injection_failure_keeps_the_previous_version_intact(tmp_path: Path, size: int) -> None:
    (tmp_path / "f").write_bytes(b"previous version")
    src = MemoryStore({"f": payload(size)}, fail_with=NetworkError("reset"))
    with pytest.raises(Exception):  # noqa: B017
        run(LocalStore(tmp_path, part_size=1000).write("f", src, src.entry("f"), lambda n: None))
    assert (tmp_path / "f").read_bytes() == b"previous version"
    assert all_names(tmp_path) == ["f"]


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["small", "multipart"])
def test_fault_injection_cancelled_write_leaves_no_file(tmp_path: Path, size: int) -> None:
    src = MemoryStore({"f": payload(size)}, chunk=256)
    dst = LocalStore(tmp_path, part_size=1000, parts_in_flight=2)

    async def scenario() -> None:
        src.block = asyncio.Event()  # every read stalls after its first chunk
        task = asyncio.create_task(dst.write("f", src, src.entry("f"), lambda n: None))
        while not src.opens or src.active == 0:
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.01)
        assert not task.done()  # stalled mid-read
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(scenario())
    assert all_names(tmp_path) == []


# -- delete -------------------------------------------------------------------------------


def test_delete_removes_files_and_ignores_missing_ones(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"1")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b").write_bytes(b"2")
    run(LocalStore(tmp_path).delete(["a", "d/b", "never-existed"]))
    assert all_names(tmp_path) == ["d"]


def test_delete_refuses_unsafe_paths(tmp_path: Path) -> None:
    (tmp_path / "keep").write_bytes(b"1")
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(UsageError):
        run(LocalStore(root).delete(["../keep"]))
    assert (tmp_path / "keep").exists()


# -- digests and naming ---------------------------------------------------------------


def test_local_store_computes_every_digest_kind_it_declares(tmp_path: Path) -> None:
    import hashlib

    from runctl.digests import MD5, S3_ETAG, SHA256, DigestSpec

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(b"abcdefghij")
    store = LocalStore(tmp_path)
    entry = Entry("d/f", 10, 1.0)
    assert store.digests == {MD5, SHA256, S3_ETAG}
    assert run(store.digest(entry, DigestSpec(MD5))) == hashlib.md5(b"abcdefghij").hexdigest()
    assert run(store.digest(entry, DigestSpec(SHA256))) == hashlib.sha256(b"abcdefghij").hexdigest()
    parts = b"".join(hashlib.md5(p).digest() for p in (b"abcdef", b"ghij"))
    assert run(store.digest(entry, DigestSpec(S3_ETAG, 6))) == hashlib.md5(parts).hexdigest() + "-2"
    assert store.listed_digest(entry) is None  # a directory listing carries no digest
    with pytest.raises(UsageError):
        run(store.digest(Entry("../f", 10, 1.0), DigestSpec(MD5)))  # never outside the root


def test_local_store_names_entries_by_full_path(tmp_path: Path) -> None:
    assert (LocalStore(tmp_path).item_field, LocalStore(tmp_path).display_prefix) == ("path", f"{tmp_path}/")
    assert LocalStore(Path("/")).display_prefix == "/"
