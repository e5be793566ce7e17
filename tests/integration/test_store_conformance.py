"""Store conformance suite, in the manner of rclone's fstests.

Every test here runs once per store kind, against a fresh, empty store, through the
``store_under_test`` fixture. The tests speak only the ``Store`` interface, and every
write or delete goes through the engine (a Plan run by ``execute``), as every command
does: what passes here for one kind passes for all, so sync and upload/download can
treat stores alike.

To add a store kind, write one more factory (an async context manager that yields a
fresh, empty Store and cleans up after it) and register it in ``STORE_KINDS``.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import pytest

from runctl.engine.compare import SizeAndMtime
from runctl.engine.execute import ExecOptions, Outcome, execute
from runctl.engine.plan import Action, Plan, plan_copy_all
from runctl.engine.sync_plan import plan_sync
from runctl.events import BytesMoved, Event, FileDeleted, FileDone, FileFailed
from runctl.remote import open_remote
from runctl.remote.shell import RemoteShell
from runctl.remote.target import ConnectOptions, SSHClient, parse_dest
from runctl.settings import MIN_PART, Settings
from runctl.stores.base import Entry, ProgressFn, Reader, Store
from runctl.stores.factory import open_store
from runctl.stores.local import CHUNK, LocalReader, LocalStore
from runctl.stores.remote_tree import RemoteTreeStore
from tests import sshd
from tests.conftest import S3Server, write_tree

pytestmark = pytest.mark.integration

T = TypeVar("T")
MiB = 1024 * 1024
PART = MIN_PART
"""Part size for every kind (5 MiB, S3's minimum): multipart paths start at small sizes."""
BASE_SETTINGS = Settings(part_size=PART, range_size=PART)


# -- store kinds -------------------------------------------------------------------------


@dataclass
class KindContext:
    """What a factory may use: pytest's request (to pull in server fixtures lazily, so a
    kind's server starts only when its tests run), a private tmp dir, base settings."""

    request: pytest.FixtureRequest
    tmp_path: Path
    settings: Settings


StoreFactory = Callable[[KindContext], AbstractAsyncContextManager["Opened"]]


@dataclass
class Opened:
    store: Store
    observer: Store
    """The same place, for looking while the store is busy: a remote tree runs one plan
    at a time in its shell, so a look mid-write goes through a second shell."""


@asynccontextmanager
async def local_kind(ctx: KindContext) -> AsyncIterator[Opened]:
    root = ctx.tmp_path / "store-under-test"
    root.mkdir()
    store, key = open_store(root, ctx.settings, directory=True)
    assert key == ""
    async with store:
        yield Opened(store, store)


@asynccontextmanager
async def s3_kind(ctx: KindContext) -> AsyncIterator[Opened]:
    server: S3Server = ctx.request.getfixturevalue("s3_env")  # credentials via the environment
    settings = replace(ctx.settings, endpoint_url=server.endpoint)
    store, key = open_store(server.fresh_prefix(), settings, directory=True, scheme="s3")
    assert key == ""
    async with store:
        yield Opened(store, store)


def remote_kind(client: SSHClient) -> StoreFactory:
    """A directory on the test sshd (a real OpenSSH server on loopback), over ``client``."""

    @asynccontextmanager
    async def factory(ctx: KindContext) -> AsyncIterator[Opened]:
        server: sshd.SSHServer = ctx.request.getfixturevalue("ssh_server")
        monkeypatch: pytest.MonkeyPatch = ctx.request.getfixturevalue("monkeypatch")
        monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)  # only the test key may be used
        root = ctx.tmp_path / "remote-store-under-test"
        root.mkdir()
        target = parse_dest(server.dest(root))
        remote = await open_remote(target, ConnectOptions(config=server.config, client=client))
        store, observer = (
            RemoteTreeStore(RemoteShell(remote), str(root)),
            RemoteTreeStore(RemoteShell(remote), str(root)),
        )
        try:
            yield Opened(store, observer)
        finally:
            await store.close()
            await observer.close()
            await remote.close()

    return factory


# One entry per store kind: the fixture below is parametrized over these names. A new kind
# (e.g. a remote directory over SSH) is one more factory above and one more entry here.
STORE_KINDS: dict[str, StoreFactory] = {
    "local": local_kind,
    "s3": s3_kind,
    "remote-asyncssh": remote_kind("asyncssh"),
    "remote-openssh": remote_kind("openssh"),
}


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop  # what runctl.aio.run uses: the CLI and API run on it
    except ImportError:  # pragma: no cover
        return None
    return uvloop.new_event_loop


class StoreUnderTest:
    """A fresh, empty store of one kind, and one event loop that owns it (connections of
    some stores are bound to the loop that opened them), plus engine-driven helpers."""

    def __init__(self, kind: str, ctx: KindContext) -> None:
        self.kind = kind
        self._tmp = ctx.tmp_path
        self._sources = 0
        self._runner = asyncio.Runner(loop_factory=_loop_factory())
        self._cm = STORE_KINDS[kind](ctx)
        opened = self._runner.run(self._cm.__aenter__())
        self.store: Store = opened.store
        self.observer: Store = opened.observer

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run ``coro`` on the store's loop, bounded so a hang fails the test."""

        async def bounded() -> T:
            async with asyncio.timeout(timeout):
                return await coro

        return self._runner.run(bounded())

    def close(self) -> None:
        try:
            self._runner.run(self._cm.__aexit__(None, None, None))
        finally:
            self._runner.close()

    # -- helpers: everything goes through the engine --------------------------------------

    def source_tree(self, files: dict[str, bytes], mtimes: dict[str, float] | None = None) -> LocalStore:
        """A new local source tree holding ``files`` (with ``mtimes`` set where given)."""
        self._sources += 1
        root = self._tmp / f"source-{self._sources}"
        root.mkdir()
        write_tree(root, files)
        for path, mtime in (mtimes or {}).items():
            os.utime(root / path, (mtime, mtime))
        return LocalStore(root, part_size=PART)

    async def put(
        self, files: dict[str, bytes], mtimes: dict[str, float] | None = None, *, stream: bool = False
    ) -> tuple[Outcome, list[Event]]:
        """Copy ``files`` into the store: a local source tree, ``plan_copy_all``, ``execute``.
        ``stream=True`` hides the source's local path, so writers must read it through
        ``open``/``chunks`` (as they do from any non-local source)."""
        local = self.source_tree(files, mtimes)
        src: Store = StreamingSource(local) if stream else local
        events: list[Event] = []
        async with local:
            plan = await plan_copy_all(src.list(), where=src.url)
            assert len(plan.copies) == len(files) and plan.warnings == []
            out = await execute(plan, src, self.store, events.append, ExecOptions(backoff=0.01))
        failed = [e for e in events if isinstance(e, FileFailed)]
        assert out.failed == [] and failed == [], f"{self.kind}: {failed}"
        assert out.files == len(files)
        return out, events

    async def remove(self, paths: Iterable[str]) -> tuple[Outcome, list[Event]]:
        """Delete ``paths`` through a plan of delete actions."""
        plan = Plan([Action("delete", p, 0, "test") for p in paths])
        events: list[Event] = []
        nothing = self.source_tree({})
        out = await execute(plan, nothing, self.store, events.append, ExecOptions(backoff=0.01))
        return out, events

    async def listing(self, store: Store | None = None) -> list[Entry]:
        """The files listed (a store that keeps trees lists directories too: left out)."""
        return [e async for e in (store or self.store).list() if e.kind == "file"]

    async def paths(self) -> list[str]:
        return [e.path for e in await self.listing()]

    async def read(self, path: str, offset: int = 0, length: int | None = None) -> bytes:
        reader = await self.store.open(path, offset, length)
        return b"".join([bytes(c) async for c in reader.chunks()])


@pytest.fixture(params=list(STORE_KINDS))
def store_under_test(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreUnderTest]:
    sut = StoreUnderTest(request.param, KindContext(request, tmp_path, BASE_SETTINGS))
    try:
        yield sut
    finally:
        sut.close()


# -- test-only source stores -------------------------------------------------------------


class StreamingSource(Store):
    """A LocalStore seen as a remote source: no ``local_file``, so a writer must stream
    the bytes through ``open``/``chunks``. Reads may be held at a byte offset (``gate``)."""

    def __init__(self, inner: LocalStore, gate: Gate | None = None) -> None:
        self.inner = inner
        self.url = f"stream+{inner.url}"
        self.mtime_precision = inner.mtime_precision
        self.gate = gate

    def list(self) -> AsyncIterator[Entry]:
        return self.inner.list()

    async def stat(self, path: str) -> Entry | None:
        return await self.inner.stat(path)

    async def open(
        self, path: str, offset: int = 0, length: int | None = None, version: str | None = None
    ) -> Reader:
        reader = await self.inner.open(path, offset, length)
        assert isinstance(reader, LocalReader)
        return reader if self.gate is None else GatedReader(reader, offset, self.gate)

    async def write(self, path: str, src: Store, entry: Entry, progress: ProgressFn) -> None:
        raise NotImplementedError("a source only")

    async def delete(self, paths: Iterable[str]) -> None:
        raise NotImplementedError("a source only")


@dataclass
class Gate:
    """Hold every read at or past byte ``at`` until ``release`` is set; ``reached`` is set
    when the first read gets there."""

    at: int
    reached: asyncio.Event
    release: asyncio.Event


class GatedReader(Reader):
    def __init__(self, inner: LocalReader, offset: int, gate: Gate) -> None:
        self.inner = inner
        self.size = inner.size
        self.mtime = inner.mtime
        self.offset = offset
        self.gate = gate

    async def chunks(self) -> AsyncIterator[bytes]:
        position = self.offset
        async for chunk in self.inner.chunks():
            if position >= self.gate.at and not self.gate.release.is_set():
                self.gate.reached.set()
                await self.gate.release.wait()
            position += len(chunk)
            yield chunk


def pseudo_random(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


# -- listing -----------------------------------------------------------------------------

ORDER_NAMES = ["a-b", "a/b", "a.b", "A", "b", "é.txt", "日本.txt", "ｱ.txt", "😀.txt", "a0"]
"""``a-b`` (0x2d) < ``a.b`` (0x2e) < ``a/b`` (0x2f) < ``a0`` in byte order, while a store
that walks directories would list ``a/b`` first. U+FF71 sorts before U+1F600 in UTF-8
(and code point) order, but after it in UTF-16 order (surrogates start at 0xD800)."""


def test_fresh_store_is_empty(store_under_test: StoreUnderTest) -> None:
    assert store_under_test.run(store_under_test.listing()) == []


def test_listing_is_sorted_by_utf8_bytes_of_the_path(store_under_test: StoreUnderTest) -> None:
    sut = store_under_test
    # For these names Python's str order (code points) is UTF-8 byte order (S3's order):
    by_bytes = sorted(ORDER_NAMES, key=lambda p: p.encode())
    assert sorted(ORDER_NAMES) == by_bytes
    assert by_bytes.index("a-b") < by_bytes.index("a.b") < by_bytes.index("a/b") < by_bytes.index("a0")
    assert by_bytes.index("ｱ.txt") < by_bytes.index("😀.txt")

    sut.run(sut.put({name: name.encode() for name in ORDER_NAMES}))
    assert sut.run(sut.paths()) == by_bytes


def test_a_second_sync_with_delete_changes_nothing(store_under_test: StoreUnderTest) -> None:
    """What the listing order is for: sync merges the two sorted listings. Run twice, the
    second plan must be all skips; dropping one source file must plan exactly one delete."""
    sut = store_under_test
    files = {name: name.encode() for name in ORDER_NAMES}
    local = sut.source_tree(files)

    async def sync_once() -> Plan:
        plan = await plan_sync(local, sut.store, SizeAndMtime(local, sut.store), delete=True)
        out = await execute(plan, local, sut.store, lambda e: None, ExecOptions(backoff=0.01))
        assert out.failed == []
        return plan

    async def go() -> None:
        first = await sync_once()
        assert sorted(a.path for a in first.copies) == sorted(files)
        second = await sync_once()
        assert [(a.kind, a.path) for a in second.actions if a.kind != "skip"] == []
        assert await sut.paths() == sorted(files)
        (local.root / "a.b").unlink()
        third = await sync_once()
        assert [(a.kind, a.path) for a in third.actions if a.kind != "skip"] == [("delete", "a.b")]
        assert await sut.paths() == sorted(set(files) - {"a.b"})

    sut.run(go())


def test_listing_reports_sizes_and_only_files(store_under_test: StoreUnderTest) -> None:
    """Files with their sizes; directories only from a store that declares it keeps trees."""
    sut = store_under_test
    files = {"d/e/f.bin": b"x" * 10, "d/g.bin": b"", "h.bin": b"yy"}
    sut.run(sut.put(files))

    async def everything() -> list[Entry]:
        return [e async for e in sut.store.list()]

    listed = [(e.path, e.size, e.kind) for e in sut.run(everything())]
    dirs = [("d", 0, "dir"), ("d/e", 0, "dir")] if sut.store.lists_directories else []
    assert sorted(listed) == sorted(
        [("d/e/f.bin", 10, "file"), ("d/g.bin", 0, "file"), ("h.bin", 2, "file"), *dirs]
    )


# -- names -------------------------------------------------------------------------------

AWKWARD_NAMES = [
    "with space.txt",
    "  leading and trailing spaces  ",
    "it's.txt",
    'say "hi".txt',
    "$HOME.txt",
    "`whoami`.txt",
    "a;b.txt",
    "-rf",
    "dir with space/-n",
    "ünïcödé/日本語.txt",
    "emoji 🎉/party 🎈.md",
    "100%.txt",
    "a+b=c&d,e@f.txt",
    "q?x=1#frag.txt",
    "(paren)[bracket]{brace}~!.txt",
    "*glob*",
    ".hidden",
]


@pytest.mark.parametrize("name", AWKWARD_NAMES)
def test_awkward_names_round_trip(store_under_test: StoreUnderTest, name: str) -> None:
    sut = store_under_test
    data = f"content of {name!r}\n".encode()

    async def go() -> None:
        _, events = await sut.put({name: data})
        assert [e.path for e in events if isinstance(e, FileDone)] == [name]
        assert await sut.paths() == [name]
        assert await sut.read(name) == data
        entry = await sut.store.stat(name)
        assert entry is not None and entry.path == name and entry.size == len(data)

    sut.run(go())


# -- stat --------------------------------------------------------------------------------


def test_stat_of_a_missing_path_is_none(store_under_test: StoreUnderTest) -> None:
    sut = store_under_test

    async def go() -> None:
        assert await sut.store.stat("missing.txt") is None  # empty store
        await sut.put({"d/present.txt": b"here"})
        assert await sut.store.stat("missing.txt") is None
        assert await sut.store.stat("d/missing.txt") is None
        assert await sut.store.stat("nope/deeper/missing.txt") is None
        folder = await sut.store.stat("d")  # a directory (prefix) is not a file
        assert folder is None or (sut.store.lists_directories and folder.kind == "dir")
        assert await sut.store.stat("d/present.tx") is None  # a prefix of a name is not the name
        entry = await sut.store.stat("d/present.txt")
        assert entry is not None and entry.size == 4

    sut.run(go())


# -- reading -----------------------------------------------------------------------------


def test_ranged_open_reads_exactly_that_range(store_under_test: StoreUnderTest) -> None:
    sut = store_under_test
    data = pseudo_random(3 * CHUNK + 123, seed=1)

    async def go() -> None:
        await sut.put({"r.bin": data})
        for offset, length in [(0, 1), (1, 10), (CHUNK - 1, 2), (CHUNK, CHUNK), (len(data) - 5, 5)]:
            assert await sut.read("r.bin", offset, length) == data[offset : offset + length]
        assert await sut.read("r.bin", 2 * CHUNK) == data[2 * CHUNK :]  # to the end
        reader = await sut.store.open("r.bin", 10, 20)
        assert reader.size == len(data)  # the whole file's size, not the range's

    sut.run(go())


# -- atomic writes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "gate_at"),
    [(3 * MiB, CHUNK), (2 * PART + 2 * MiB, PART + MiB)],
    ids=["single-part", "multipart"],
)
def test_nothing_appears_at_the_final_name_until_the_whole_file_is_there(
    store_under_test: StoreUnderTest, size: int, gate_at: int
) -> None:
    """The source's reader stops at ``gate_at`` bytes; while it waits, the destination has
    nothing at that path (stat None, not listed, and no temporary name listed either)."""
    sut = store_under_test
    data = pseudo_random(size, seed=size)
    local = sut.source_tree({"big.bin": data})
    multipart = size > PART

    async def go() -> None:
        gate = Gate(gate_at, asyncio.Event(), asyncio.Event())
        src = StreamingSource(local, gate)
        entry = await src.stat("big.bin")
        assert entry is not None and entry.size == size
        events: list[Event] = []
        plan = Plan([Action("copy", "big.bin", size, "new", entry)])
        task = asyncio.create_task(execute(plan, src, sut.store, events.append, ExecOptions(backoff=0.01)))
        try:
            await asyncio.wait_for(gate.reached.wait(), 10)
            await asyncio.sleep(0.3)  # let the writer do everything it can before the gate
            assert not task.done()
            assert await sut.observer.stat("big.bin") is None
            assert await sut.listing(sut.observer) == []  # neither the final name nor a temporary one
            moved = sum(e.nbytes for e in events if isinstance(e, BytesMoved))
            if multipart:
                # The writer is really mid-file (parts written or uploaded), not yet started.
                assert 0 < moved < size
            assert not any(isinstance(e, FileDone) for e in events)
        finally:
            gate.release.set()
        out = await task
        assert out.files == 1 and out.failed == [] and out.bytes == size
        assert await sut.paths() == ["big.bin"]
        assert await sut.read("big.bin") == data

    sut.run(go())


# -- overwrite and delete ----------------------------------------------------------------


def test_a_write_replaces_an_existing_file(store_under_test: StoreUnderTest) -> None:
    sut = store_under_test

    async def go() -> None:
        await sut.put({"f.txt": b"the first, longer version", "other.txt": b"o"})
        await sut.put({"f.txt": b"second"})
        assert await sut.paths() == ["f.txt", "other.txt"]
        assert await sut.read("f.txt") == b"second"
        entry = await sut.store.stat("f.txt")
        assert entry is not None and entry.size == 6

    sut.run(go())


def test_delete_removes_files_and_ignores_missing_ones(store_under_test: StoreUnderTest) -> None:
    sut = store_under_test
    files = {"a.txt": b"a", "b.txt": b"b", "d/c.txt": b"c", "d/e.txt": b"e", "d/f/g.txt": b"g"}

    async def go() -> None:
        await sut.put(files)
        doomed = ["a.txt", "d/c.txt", "d/f/g.txt", "missing.txt", "nope/missing.txt"]
        out, events = await sut.remove(doomed)
        assert out.deleted == len(doomed) and out.failed == []
        assert [e.path for e in events if isinstance(e, FileDeleted)] == doomed
        assert await sut.paths() == ["b.txt", "d/e.txt"]
        for path in ("a.txt", "d/c.txt", "d/f/g.txt"):
            assert await sut.store.stat(path) is None
        assert await sut.read("d/e.txt") == b"e"  # the others are untouched

        out, _ = await sut.remove(["b.txt", "d/e.txt"])
        assert out.deleted == 2
        assert await sut.listing() == []

    sut.run(go())


def test_deleting_from_an_empty_store_is_not_an_error(store_under_test: StoreUnderTest) -> None:
    sut = store_under_test
    out, _ = sut.run(sut.remove(["never.txt", "x/y/z.txt"]))
    assert out.deleted == 2
    assert sut.run(sut.listing()) == []


# -- mtimes ------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["from-path", "streamed"])
def test_mtime_round_trips_within_the_stores_precision(
    store_under_test: StoreUnderTest, stream: bool
) -> None:
    sut = store_under_test
    store = sut.store
    mtimes = {
        "old.bin": 1_000_000_000.25,  # 2001, with a fraction
        "recent.bin": 1_700_000_000.123456,
        "d/whole.bin": 1_600_000_000.0,
    }
    files = {path: path.encode() * 3 for path in mtimes}

    async def go() -> None:
        await sut.put(files, mtimes, stream=stream)
        listed = {e.path: e.mtime for e in await sut.listing()}
        for path, mtime in mtimes.items():
            recorded = await store.source_mtime(path)
            assert recorded is not None, path
            assert abs(recorded - mtime) <= store.mtime_precision, (path, recorded, mtime)
            if store.listing_mtime_is_source:
                assert abs(listed[path] - mtime) <= store.mtime_precision, (path, listed[path], mtime)
            reader = await store.open(path)
            assert reader.mtime is not None
            assert abs(reader.mtime - mtime) <= store.mtime_precision, (path, reader.mtime, mtime)

    sut.run(go())


# -- sizes -------------------------------------------------------------------------------

SIZES = [0, 1, 1023, CHUNK - 1, CHUNK, CHUNK + 1, PART, PART + 1]


@pytest.mark.parametrize("stream", [False, True], ids=["from-path", "streamed"])
def test_sizes_round_trip_including_empty_files(store_under_test: StoreUnderTest, stream: bool) -> None:
    """Sizes around the read chunk and the part size (the single/multipart boundary), and
    empty files, at the top and in a subdirectory."""
    sut = store_under_test
    files = {f"s/{size:08d}.bin": pseudo_random(size, seed=size) for size in SIZES}
    files["empty"] = b""
    files["deep/er/empty.txt"] = b""

    async def go() -> None:
        out, events = await sut.put(files, stream=stream)
        total = sum(len(v) for v in files.values())
        assert out.bytes == total
        assert sum(e.nbytes for e in events if isinstance(e, BytesMoved)) == total
        entries = await sut.listing()
        assert {e.path: e.size for e in entries} == {p: len(v) for p, v in files.items()}
        for path, data in files.items():
            entry = await sut.store.stat(path)
            assert entry is not None and entry.size == len(data), path
            assert await sut.read(path) == data, path

    sut.run(go())


# -- digests -----------------------------------------------------------------------------


def test_digests_a_store_declares_match_the_content(store_under_test: StoreUnderTest) -> None:
    """Every whole-file digest kind a store says it computes (and any its listing carries)
    is the digest of the bytes written: --checksum compares stores by these."""
    import hashlib

    from runctl.digests import MD5, SHA256, DigestSpec

    sut = store_under_test
    data = pseudo_random(300_000, seed=7)
    sut.run(sut.put({"d/blob.bin": data}))
    (entry,) = sut.run(sut.listing())
    kinds = sorted(sut.store.digests & {MD5, SHA256})
    for kind in kinds:
        got = sut.run(sut.store.digest(entry, DigestSpec(kind)))
        assert got == hashlib.new(kind, data).hexdigest(), kind
    listed = sut.store.listed_digest(entry)
    if listed is not None:
        spec, value = listed
        if spec.kind in (MD5, SHA256):
            assert value == hashlib.new(spec.kind, data).hexdigest()
    assert kinds or listed is not None, f"{sut.kind} offers no digest at all"
