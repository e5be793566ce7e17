"""Unit tests of the per-file worker pool, ``runctl.engine.execute.execute``.

Source and destination are real LocalStore trees in tmp_path; where a fault is needed,
``FlakyStore`` wraps the LocalStore destination and fails on purpose.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

from runctl import events
from runctl.engine import execute as execute_module
from runctl.engine.execute import ExecOptions, Outcome, PlanSession, PoolSession, announce, execute
from runctl.engine.plan import Action, Plan, plan_copy_all
from runctl.errors import (
    BucketNotFoundError,
    CredentialsError,
    LocalIOError,
    NetworkError,
    NotFoundError,
    RunctlError,
)
from runctl.events import BytesMoved, Event, FileDeleted, FileDone, FileFailed, FileSkipped, Notice, Planned
from runctl.stores.base import Entry, ProgressFn, Reader, Store
from runctl.stores.local import LocalStore
from tests.conftest import read_tree, write_tree

T = TypeVar("T")
FAST = ExecOptions(backoff=0.01)


def run(coro: Coroutine[Any, Any, T], timeout: float = 5.0) -> T:
    """Run one test body on a fresh loop, bounded so a hang fails instead of stalling."""

    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(bounded())


class Recorder:
    """A reporter that keeps every event."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: type[T]) -> list[T]:
        return [e for e in self.events if isinstance(e, kind)]

    def bytes_for(self, path: str) -> list[int]:
        return [e.nbytes for e in self.of(BytesMoved) if e.path == path]


Fault = Callable[[str, ProgressFn], Coroutine[Any, Any, None]]


class FlakyStore(Store):
    """A LocalStore destination that fails on purpose.

    ``faults[path]`` is a queue: each write of ``path`` pops the next fault (a coroutine
    function taking the path and the progress callback, expected to raise) and runs it
    instead of writing; once the queue is empty, writes go through to the real store.
    Every operation is appended to ``log`` so tests can check what ran, and in what order.
    """

    def __init__(self, inner: LocalStore, faults: dict[str, list[Fault]] | None = None) -> None:
        self.inner = inner
        self.url = f"flaky+{inner.url}"
        self.mtime_precision = inner.mtime_precision
        self.faults = faults or {}
        self.log: list[tuple[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.write_delay = 0.0

    def list(self) -> AsyncIterator[Entry]:
        return self.inner.list()

    async def stat(self, path: str) -> Entry | None:
        return await self.inner.stat(path)

    async def open(
        self, path: str, offset: int = 0, length: int | None = None, version: str | None = None
    ) -> Reader:
        return await self.inner.open(path, offset, length)

    async def write(self, path: str, src: Store, entry: Entry, progress: ProgressFn) -> None:
        self.log.append(("write", path))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.write_delay:
                await asyncio.sleep(self.write_delay)
            queue = self.faults.get(path)
            if queue:
                await queue.pop(0)(path, progress)
            await self.inner.write(path, src, entry, progress)
            self.log.append(("written", path))
        finally:
            self.in_flight -= 1

    async def delete(self, paths: Iterable[str]) -> None:
        paths = list(paths)
        self.log.append(("delete", ",".join(paths)))
        await self.inner.delete(paths)

    async def set_mtimes(self, items: Sequence[tuple[str, float]]) -> None:
        self.log.append(("touch", ",".join(path for path, _ in items)))
        for path, mtime in items:
            os.utime(self.inner.root / path, (mtime, mtime))

    async def close(self) -> None:
        await self.inner.close()


def raises(exc: RunctlError, *, after_bytes: int = 0) -> Fault:
    """A fault that reports ``after_bytes`` of progress, then raises ``exc``."""

    async def fault(path: str, progress: ProgressFn) -> None:
        if after_bytes:
            progress(after_bytes)
        raise exc

    return fault


def hangs(started: asyncio.Event) -> Fault:
    """A fault that never finishes (until cancelled)."""

    async def fault(path: str, progress: ProgressFn) -> None:
        started.set()
        await asyncio.Event().wait()

    return fault


def make_tree(root: Path, files: dict[str, bytes]) -> LocalStore:
    root.mkdir(parents=True, exist_ok=True)
    write_tree(root, files)
    return LocalStore(root)


async def copy_all_plan(src: Store) -> Plan:
    return await plan_copy_all(src.list(), where=src.url)


FILES = {"a.bin": b"a" * 1000, "b/c.bin": b"c" * 2500, "d e/ü.txt": "héllo".encode()}


# -- the happy path ----------------------------------------------------------------------


def test_copies_every_file_and_counts_files_and_bytes(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", FILES)
    dst = LocalStore(tmp_path / "dst")
    rec = Recorder()

    async def go() -> Outcome:
        return await execute(await copy_all_plan(src), src, dst, rec, FAST)

    out = run(go())
    assert read_tree(tmp_path / "dst") == FILES
    assert out.files == 3 and out.bytes == sum(len(v) for v in FILES.values())
    assert out.failed == [] and out.deleted == 0 and out.skipped == 0
    assert out.seconds >= 0
    assert sorted(e.path for e in rec.of(FileDone)) == sorted(FILES)
    assert {e.path: e.size for e in rec.of(FileDone)} == {k: len(v) for k, v in FILES.items()}
    for path, data in FILES.items():
        assert sum(rec.bytes_for(path)) == len(data)


def test_planned_event_carries_number_of_copies_and_their_bytes_and_comes_first(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", FILES)
    dst = make_tree(tmp_path / "dst", {"old.txt": b"x"})
    rec = Recorder()
    entries = {p: Entry(p, len(d), 0.0) for p, d in FILES.items()}
    plan = Plan(
        [
            Action("copy", "a.bin", 1000, "new", entries["a.bin"]),
            Action("skip", "b/c.bin", 2500, "unchanged"),
            Action("copy", "d e/ü.txt", len(FILES["d e/ü.txt"]), "size differs", entries["d e/ü.txt"]),
            Action("delete", "old.txt", 1, "not in source"),
        ]
    )
    run(execute(plan, src, dst, rec, FAST))
    planned = rec.of(Planned)
    assert planned == [Planned(2, 1000 + len(FILES["d e/ü.txt"]))]  # skips and deletes not counted
    first_transfer = min(i for i, e in enumerate(rec.events) if isinstance(e, BytesMoved | FileDone))
    assert rec.events.index(planned[0]) < first_transfer


def test_skips_are_reported_and_counted_but_not_copied(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", FILES)
    dst = LocalStore(tmp_path / "dst")
    rec = Recorder()
    plan = Plan([Action("skip", "a.bin", 1000, "unchanged"), Action("skip", "b/c.bin", 2500, "excluded")])
    out = run(execute(plan, src, dst, rec, FAST))
    assert out.skipped == 2 and out.files == 0 and out.bytes == 0
    assert rec.of(FileSkipped) == [FileSkipped("a.bin", "unchanged"), FileSkipped("b/c.bin", "excluded")]
    assert not (tmp_path / "dst").exists()


def test_empty_plan_reports_zero_and_writes_nothing(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {})
    dst = LocalStore(tmp_path / "dst")
    rec = Recorder()
    out = run(execute(Plan(), src, dst, rec, FAST))
    assert rec.events == [Planned(0, 0)]
    assert (out.files, out.bytes, out.deleted, out.skipped, out.failed) == (0, 0, 0, 0, [])


def test_single_file_copy_lands_at_dst_path(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"x/model.pt": b"weights"})
    dst = LocalStore(tmp_path / "dst")
    rec = Recorder()

    async def go() -> Outcome:
        entry = await src.stat("x/model.pt")
        assert entry is not None
        plan = Plan([Action("copy", "x/model.pt", entry.size, "new", entry, "renamed.pt")])
        return await execute(plan, src, dst, rec, FAST)

    out = run(go())
    assert read_tree(tmp_path / "dst") == {"renamed.pt": b"weights"}
    assert rec.of(FileDone) == [FileDone("renamed.pt", 7)]
    assert out.files == 1


def test_concurrency_bounds_writes_in_flight(tmp_path: Path) -> None:
    files = {f"f{i:02d}": bytes([i]) * 10 for i in range(12)}
    src = make_tree(tmp_path / "src", files)
    dst = FlakyStore(LocalStore(tmp_path / "dst"))
    dst.write_delay = 0.02

    async def go() -> Outcome:
        return await execute(await copy_all_plan(src), src, dst, Recorder(), ExecOptions(concurrency=3))

    out = run(go())
    assert out.files == 12
    assert dst.max_in_flight == 3
    assert read_tree(tmp_path / "dst") == files


def test_default_in_flight_is_what_the_stores_declare(tmp_path: Path) -> None:
    files = {f"f{i:02d}": bytes([i]) * 10 for i in range(12)}
    src = make_tree(tmp_path / "src", files)
    dst = FlakyStore(LocalStore(tmp_path / "dst"))
    dst.write_delay = 0.02
    dst.files_in_flight = 5  # the larger of the two stores' numbers: src (local) has 16
    src.files_in_flight = 2

    async def go() -> Outcome:
        return await execute(await copy_all_plan(src), src, dst, Recorder(), ExecOptions())

    assert run(go()).files == 12
    assert dst.max_in_flight == 5


def test_default_in_flight_is_bounded_by_bytes(tmp_path: Path) -> None:
    files = {f"f{i:02d}": bytes([i]) * 100 for i in range(8)}
    files["huge"] = b"h" * 1000  # above the whole budget: runs, alone
    src = make_tree(tmp_path / "src", files)
    dst = FlakyStore(LocalStore(tmp_path / "dst"))
    dst.write_delay = 0.02
    seen: list[tuple[int, bool]] = []
    write = dst.write

    async def watched(path: str, src_: Store, entry: Entry, progress: ProgressFn) -> None:
        seen.append((dst.in_flight, path == "huge"))
        await write(path, src_, entry, progress)

    dst.write = watched  # type: ignore[method-assign]

    async def go() -> Outcome:
        opts = ExecOptions(bytes_in_flight=250, transfer_peak=10_000)
        return await execute(await copy_all_plan(src), src, dst, Recorder(), opts)

    assert run(go()).files == 9
    assert dst.max_in_flight == 2  # 100-byte files, 250 bytes of budget
    assert (0, True) in seen  # nothing else was in flight when the huge file started
    assert read_tree(tmp_path / "dst") == files


def test_a_pinned_concurrency_has_no_byte_bound(tmp_path: Path) -> None:
    files = {f"f{i:02d}": bytes([i]) * 100 for i in range(6)}
    src = make_tree(tmp_path / "src", files)
    dst = FlakyStore(LocalStore(tmp_path / "dst"))
    dst.write_delay = 0.02

    async def go() -> Outcome:
        opts = ExecOptions(concurrency=6, bytes_in_flight=100)
        return await execute(await copy_all_plan(src), src, dst, Recorder(), opts)

    assert run(go()).files == 6
    assert dst.max_in_flight == 6


def test_a_plan_with_spilled_copies_copies_them_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from runctl.engine import plan as plan_module

    monkeypatch.setattr(plan_module, "COPIES_IN_MEMORY", 3)
    files = {f"d{i % 3}/f{i:02d}": bytes([i]) * (i + 1) for i in range(20)}
    src = make_tree(tmp_path / "src", files)
    dst = LocalStore(tmp_path / "dst")
    rec = Recorder()

    async def go() -> Outcome:
        plan = await copy_all_plan(src)
        assert plan.spilled is not None and len(plan.spilled) == 17
        return await execute(plan, src, dst, rec, ExecOptions())

    out = run(go())
    assert out.files == 20 and read_tree(tmp_path / "dst") == files
    assert rec.of(Planned) == [Planned(20, sum(len(v) for v in files.values()))]


# -- retries -----------------------------------------------------------------------------


def test_network_error_once_is_retried_after_a_jittered_backoff(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = make_tree(tmp_path / "src", {"f.bin": b"z" * 4096})
    dst = FlakyStore(LocalStore(tmp_path / "dst"), {"f.bin": [raises(NetworkError("connection reset"))]})
    uniform_calls: list[tuple[float, float]] = []
    sleeps: list[float] = []
    real_sleep = asyncio.sleep

    def fake_uniform(a: float, b: float) -> float:
        uniform_calls.append((a, b))
        return b  # the top of the jitter range: deterministic and the longest wait allowed

    async def recording_sleep(delay: float, *args: Any) -> Any:
        sleeps.append(delay)
        return await real_sleep(delay, *args)

    monkeypatch.setattr(random, "uniform", fake_uniform)
    monkeypatch.setattr(execute_module.asyncio, "sleep", recording_sleep)
    rec = Recorder()

    async def go() -> Outcome:
        return await execute(await copy_all_plan(src), src, dst, rec, FAST)

    out = run(go())
    assert out.files == 1 and out.failed == [] and out.bytes == 4096
    assert (tmp_path / "dst" / "f.bin").read_bytes() == b"z" * 4096
    assert [op for op in dst.log if op[1] == "f.bin"] == [
        ("write", "f.bin"),
        ("write", "f.bin"),
        ("written", "f.bin"),
    ]
    assert uniform_calls == [(0, 0.01)]  # full jitter over [0, backoff * 2**0]
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 0.01
    assert rec.of(FileFailed) == []


def test_backoff_doubles_with_each_attempt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = make_tree(tmp_path / "src", {"f.bin": b"z" * 10})
    faults = [raises(NetworkError("reset 1")), raises(NetworkError("reset 2"))]
    dst = FlakyStore(LocalStore(tmp_path / "dst"), {"f.bin": faults})
    uniform_calls: list[tuple[float, float]] = []

    def fake_uniform(a: float, b: float) -> float:
        uniform_calls.append((a, b))
        return 0.0

    monkeypatch.setattr(random, "uniform", fake_uniform)

    async def go() -> Outcome:
        return await execute(
            await copy_all_plan(src), src, dst, Recorder(), ExecOptions(retries=2, backoff=0.01)
        )

    out = run(go())
    assert out.files == 1 and out.failed == []
    assert uniform_calls == [(0, 0.01), (0, 0.02)]


def test_real_jitter_stays_within_the_backoff_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without patching random: the actual wait is drawn from [0, backoff * 2**attempt]."""
    src = make_tree(tmp_path / "src", {f"f{i}": b"q" for i in range(5)})
    faults = {f"f{i}": [raises(NetworkError("reset"))] for i in range(5)}
    dst = FlakyStore(LocalStore(tmp_path / "dst"), faults)
    sleeps: list[float] = []
    real_sleep = asyncio.sleep

    async def recording_sleep(delay: float, *args: Any) -> Any:
        sleeps.append(delay)
        return await real_sleep(delay, *args)

    monkeypatch.setattr(execute_module.asyncio, "sleep", recording_sleep)

    async def go() -> Outcome:
        return await execute(await copy_all_plan(src), src, dst, Recorder(), FAST)

    out = run(go())
    assert out.files == 5
    assert len(sleeps) == 5 and all(0 <= s <= 0.01 for s in sleeps)


def test_network_error_that_persists_is_raised_after_the_retries(tmp_path: Path) -> None:
    """NetworkError is fatal: once the retries are spent, the whole run stops with it."""
    src = make_tree(tmp_path / "src", {"f.bin": b"z"})
    faults = [raises(NetworkError("down 1")), raises(NetworkError("down 2"))]
    dst = FlakyStore(LocalStore(tmp_path / "dst"), {"f.bin": faults})

    async def go() -> Outcome:
        return await execute(await copy_all_plan(src), src, dst, Recorder(), FAST)

    with pytest.raises(NetworkError, match="down 2"):
        run(go())
    assert dst.log == [("write", "f.bin"), ("write", "f.bin")]  # retries=1: two attempts in all
    assert not (tmp_path / "dst" / "f.bin").exists()


def test_non_network_errors_are_not_retried(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"f.bin": b"z"})
    dst = FlakyStore(LocalStore(tmp_path / "dst"), {"f.bin": [raises(LocalIOError("disk hiccup"))]})

    async def go() -> Outcome:
        return await execute(await copy_all_plan(src), src, dst, Recorder(), FAST)

    out = run(go())
    assert dst.log == [("write", "f.bin")]
    assert [f.path for f in out.failed] == ["f.bin"] and out.files == 0


# -- byte counters -----------------------------------------------------------------------


def test_byte_counters_roll_back_on_retry(tmp_path: Path) -> None:
    files = {"big.bin": b"B" * 5000, "small.bin": b"s" * 300}
    src = make_tree(tmp_path / "src", files)
    fault = raises(NetworkError("reset mid-body"), after_bytes=1234)
    dst = FlakyStore(LocalStore(tmp_path / "dst"), {"big.bin": [fault]})
    rec = Recorder()

    async def go() -> Outcome:
        return await execute(await copy_all_plan(src), src, dst, rec, FAST)

    out = run(go())
    moved = rec.bytes_for("big.bin")
    assert moved[:2] == [1234, -1234]  # progress, then the roll-back before the retry
    assert sum(moved) == 5000
    assert sum(rec.bytes_for("small.bin")) == 300
    assert out.bytes == 5300 and out.files == 2 and out.failed == []
    # Every BytesMoved event sums to the bytes actually delivered.
    assert sum(e.nbytes for e in rec.of(BytesMoved)) == out.bytes


def test_byte_counters_roll_back_when_a_file_fails(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"f.bin": b"F" * 800})
    fault = raises(LocalIOError("disk full"), after_bytes=500)
    dst = FlakyStore(LocalStore(tmp_path / "dst"), {"f.bin": [fault]})
    rec = Recorder()

    async def go() -> Outcome:
        return await execute(await copy_all_plan(src), src, dst, rec, FAST)

    out = run(go())
    assert rec.bytes_for("f.bin") == [500, -500]
    assert out.bytes == 0 and out.files == 0 and len(out.failed) == 1


# -- failures ----------------------------------------------------------------------------


def test_non_fatal_error_is_recorded_and_the_other_files_are_copied(tmp_path: Path) -> None:
    files = {f"f{i}.bin": bytes([65 + i]) * (i + 1) for i in range(5)}
    src = make_tree(tmp_path / "src", files)
    error = NotFoundError("source file vanished: f2.bin")
    assert not error.fatal
    dst = FlakyStore(LocalStore(tmp_path / "dst"), {"f2.bin": [raises(error)]})
    rec = Recorder()

    async def go() -> Outcome:
        return await execute(await copy_all_plan(src), src, dst, rec, FAST)

    out = run(go())
    assert [(f.path, f.error) for f in out.failed] == [("f2.bin", "source file vanished: f2.bin")]
    assert out.failed[0].exc is error
    assert out.failed[0].to_dict() == {"path": "f2.bin", "error": "source file vanished: f2.bin"}
    assert rec.of(FileFailed) == [FileFailed("f2.bin", "source file vanished: f2.bin")]
    assert out.files == 4
    assert out.bytes == sum(len(v) for k, v in files.items() if k != "f2.bin")
    assert read_tree(tmp_path / "dst") == {k: v for k, v in files.items() if k != "f2.bin"}
    assert "f2.bin" not in {e.path for e in rec.of(FileDone)}


@pytest.mark.parametrize(
    "error",
    [CredentialsError("credentials rejected"), BucketNotFoundError("bucket not found: s3://nope")],
    ids=["credentials", "bucket-not-found"],
)
def test_fatal_error_cancels_the_rest_and_is_raised(tmp_path: Path, error: RunctlError) -> None:
    assert error.fatal
    files = {f"f{i}.bin": b"x" * 10 for i in range(8)}
    src = make_tree(tmp_path / "src", files)
    dst = FlakyStore(LocalStore(tmp_path / "dst"), {"f2.bin": [raises(error)]})
    rec = Recorder()

    async def go() -> Outcome:
        return await execute(
            await copy_all_plan(src), src, dst, rec, ExecOptions(concurrency=1, backoff=0.01)
        )

    with pytest.raises(type(error)) as caught:
        run(go())
    assert caught.value is error  # the typed error itself, not an ExceptionGroup
    # One worker, in plan order: f0 and f1 made it, f2 failed, nothing after it was tried.
    assert read_tree(tmp_path / "dst") == {"f0.bin": b"x" * 10, "f1.bin": b"x" * 10}
    assert [p for op, p in dst.log if op == "write"] == ["f0.bin", "f1.bin", "f2.bin"]
    assert rec.of(FileFailed) == []  # a fatal error is raised, not reported per file


def test_fatal_error_cancels_writes_in_flight(tmp_path: Path) -> None:
    """With several workers, a fatal error on one also cancels a write that would never end."""
    src = make_tree(tmp_path / "src", {"hang.bin": b"h", "boom.bin": b"b", "later.bin": b"l"})
    started = asyncio.Event()

    async def boom(path: str, progress: ProgressFn) -> None:
        await started.wait()  # fail only once the other write is certainly in flight
        raise CredentialsError("access key revoked")

    dst = FlakyStore(LocalStore(tmp_path / "dst"), {"hang.bin": [hangs(started)], "boom.bin": [boom]})

    async def go() -> Outcome:
        plan = await copy_all_plan(src)  # boom.bin, hang.bin, later.bin
        return await execute(plan, src, dst, Recorder(), ExecOptions(concurrency=2, backoff=0.01))

    with pytest.raises(CredentialsError):
        run(go(), timeout=3)
    assert not (tmp_path / "dst").exists() or read_tree(tmp_path / "dst") == {}
    assert ("write", "later.bin") not in dst.log


def test_fatal_error_skips_the_deletes(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"a.bin": b"a"})
    dst = FlakyStore(
        make_tree(tmp_path / "dst", {"keep.txt": b"k"}), {"a.bin": [raises(CredentialsError("denied"))]}
    )

    async def go() -> Outcome:
        plan = await copy_all_plan(src)
        plan.actions.append(Action("delete", "keep.txt", 1, "not in source"))
        return await execute(plan, src, dst, Recorder(), FAST)

    with pytest.raises(CredentialsError):
        run(go())
    assert (tmp_path / "dst" / "keep.txt").read_bytes() == b"k"
    assert not any(op == "delete" for op, _ in dst.log)


# -- deletes -----------------------------------------------------------------------------


def test_deletes_run_after_the_copies_and_emit_file_deleted(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"new1.bin": b"1", "new2.bin": b"22"})
    dst_local = make_tree(tmp_path / "dst", {"old/a.txt": b"a", "old/b.txt": b"b", "stay.txt": b"s"})
    dst = FlakyStore(dst_local)
    dst.write_delay = 0.01  # copies take a moment: a delete that did not wait would show
    rec = Recorder()

    async def go() -> Outcome:
        copies = (await copy_all_plan(src)).actions
        deletes = [
            Action("delete", "old/a.txt", 1, "not in source"),
            Action("delete", "old/b.txt", 1, "not in source"),
            Action("delete", "never-existed.txt", 0, "not in source"),  # missing: not an error
        ]
        return await execute(Plan(deletes + copies), src, dst, rec, FAST)  # deletes listed first

    out = run(go())
    assert out.deleted == 3 and out.files == 2
    assert read_tree(tmp_path / "dst") == {"new1.bin": b"1", "new2.bin": b"22", "stay.txt": b"s"}
    assert rec.of(FileDeleted) == [
        FileDeleted("old/a.txt"),
        FileDeleted("old/b.txt"),
        FileDeleted("never-existed.txt"),
    ]
    last_done = max(i for i, e in enumerate(rec.events) if isinstance(e, FileDone))
    first_deleted = min(i for i, e in enumerate(rec.events) if isinstance(e, FileDeleted))
    assert last_done < first_deleted
    ops = [op for op, _ in dst.log]
    assert ops.index("delete") > max(i for i, op in enumerate(ops) if op == "written")


def test_deletes_go_in_batches_of_delete_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(execute_module, "DELETE_BATCH", 2)
    names = [f"d{i}.txt" for i in range(5)]
    src = make_tree(tmp_path / "src", {})
    dst = FlakyStore(make_tree(tmp_path / "dst", {n: b"." for n in names}))
    rec = Recorder()
    plan = Plan([Action("delete", n, 1, "not in source") for n in names])
    out = run(execute(plan, src, dst, rec, FAST))
    assert out.deleted == 5
    assert [p for op, p in dst.log if op == "delete"] == ["d0.txt,d1.txt", "d2.txt,d3.txt", "d4.txt"]
    assert [e.path for e in rec.of(FileDeleted)] == names
    assert read_tree(tmp_path / "dst") == {}


def test_deletes_use_dst_path_when_given(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {})
    dst = make_tree(tmp_path / "dst", {"real-name.txt": b"r", "path.txt": b"p"})
    rec = Recorder()
    plan = Plan([Action("delete", "path.txt", 1, "x", dst_path="real-name.txt")])
    run(execute(plan, src, dst, rec, FAST))
    assert read_tree(tmp_path / "dst") == {"path.txt": b"p"}
    assert rec.of(FileDeleted) == [FileDeleted("real-name.txt")]


# -- notices -----------------------------------------------------------------------------


def test_plan_warnings_are_emitted_as_notice_events_first(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"a.bin": b"a"})
    dst = LocalStore(tmp_path / "dst")
    rec = Recorder()

    async def go() -> Outcome:
        plan = await copy_all_plan(src)
        plan.warnings += ["first warning", "second warning"]
        return await execute(plan, src, dst, rec, FAST)

    run(go())
    assert rec.of(Notice) == [Notice("first warning"), Notice("second warning")]
    assert rec.events[:2] == [Notice("first warning"), Notice("second warning")]
    notice = rec.events[0]
    assert isinstance(notice, Notice) and not isinstance(notice, BaseException)
    assert notice.message == "first warning"


def test_unsafe_paths_from_the_listing_become_notices(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"ok.txt": b"ok"})
    dst = LocalStore(tmp_path / "dst")
    rec = Recorder()

    async def listing() -> AsyncIterator[Entry]:
        yield Entry("../escape.txt", 3, 0.0)
        yield Entry("ok.txt", 2, 0.0)

    async def go() -> Outcome:
        plan = await plan_copy_all(listing(), where="s3://bucket/evil/")
        return await execute(plan, src, dst, rec, FAST)

    out = run(go())
    notices = rec.of(Notice)
    assert len(notices) == 1 and "'../escape.txt'" in notices[0].message
    assert out.files == 1 and read_tree(tmp_path / "dst") == {"ok.txt": b"ok"}
    assert not (tmp_path / "escape.txt").exists()


def test_events_module_exports_notice_not_warning() -> None:
    assert "Warning" not in vars(events)  # renamed: it shadowed builtins.Warning
    assert Notice in events.Event.__args__  # type: ignore[attr-defined]


# -- mtime fixes (touch actions) ---------------------------------------------------------


def test_touches_set_mtimes_after_copies_and_before_deletes(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"new.bin": b"n", "same.bin": b"s"})
    dst = FlakyStore(make_tree(tmp_path / "dst", {"same.bin": b"s", "gone.bin": b"g"}))
    rec = Recorder()
    when = 1_600_000_000.5

    async def go() -> Outcome:
        entry = await src.stat("new.bin")
        assert entry is not None
        plan = Plan(
            [
                Action("delete", "gone.bin", 1, "not in source"),
                Action("touch", "same.bin", 1, "content unchanged", Entry("same.bin", 1, when)),
                Action("copy", "new.bin", 1, "new", entry),
            ]
        )
        return await execute(plan, src, dst, rec, FAST)

    out = run(go())
    assert out.touched == 1 and out.files == 1 and out.deleted == 1
    assert os.stat(tmp_path / "dst" / "same.bin").st_mtime == when
    assert [op for op, _ in dst.log] == ["write", "written", "touch", "delete"]
    assert rec.of(Planned) == [Planned(1, 1)]  # a touch moves no bytes


def test_no_touches_means_no_set_mtimes_call(tmp_path: Path) -> None:
    """LocalStore has no set_mtimes; a plan without touches must never call it."""
    src = make_tree(tmp_path / "src", {"a": b"a"})
    dst = LocalStore(tmp_path / "dst")

    async def go() -> Outcome:
        return await execute(await copy_all_plan(src), src, dst, Recorder(), FAST)

    assert run(go()).touched == 0


# -- sessions ----------------------------------------------------------------------------


def test_pool_session_refuses_a_staged_plan(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"a": b"a"})
    dst = FlakyStore(LocalStore(tmp_path / "dst"))
    rec = Recorder()

    async def go() -> Outcome:
        plan = await copy_all_plan(src)
        plan.commit = "staged"
        return await execute(plan, src, dst, rec, FAST)

    with pytest.raises(NotImplementedError, match="staged"):
        run(go())
    assert dst.log == [] and rec.events == []


class OneShotSession(PlanSession):
    """A session that carries the whole plan out at once, as a remote tree does."""

    def __init__(self, dst: LocalStore) -> None:
        self.dst = dst
        self.plans: list[Plan] = []

    async def run(self, plan: Plan, src: Store, reporter: Callable[[Event], None]) -> Outcome:
        self.plans.append(plan)
        out = announce(plan, reporter)
        for action in plan.copies:
            assert action.entry is not None
            await self.dst.write(action.target, src, action.entry, lambda n: None)
            out.files += 1
            out.bytes += action.size
            reporter(FileDone(action.target, action.size))
        return out


class SessionStore(FlakyStore):
    """A destination that opens its own session instead of the per-file pool."""

    def __init__(self, inner: LocalStore) -> None:
        super().__init__(inner)
        self.session = OneShotSession(inner)
        self.opened_with: list[ExecOptions] = []

    def open_session(self, opts: ExecOptions) -> PlanSession:
        self.opened_with.append(opts)
        return self.session


def test_a_store_can_carry_out_the_plan_through_its_own_session(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", FILES)
    dst = SessionStore(LocalStore(tmp_path / "dst"))
    rec = Recorder()
    opts = ExecOptions(concurrency=2, backoff=0.01)

    async def go() -> Outcome:
        return await execute(await copy_all_plan(src), src, dst, rec, opts)

    out = run(go())
    assert dst.opened_with == [opts]
    assert len(dst.session.plans) == 1
    assert not any(op == "write" for op, _ in dst.log)  # the pool never called write()
    assert out.files == 3 and out.bytes == sum(len(v) for v in FILES.values())
    assert out.seconds >= 0  # execute times the session too
    assert read_tree(tmp_path / "dst") == FILES
    assert rec.of(Planned) == [Planned(3, out.bytes)]


def test_an_explicit_session_overrides_the_stores_own(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"a": b"a"})
    dst = SessionStore(LocalStore(tmp_path / "dst"))

    async def go() -> Outcome:
        plan = await copy_all_plan(src)
        return await execute(plan, src, dst, Recorder(), FAST, session=PoolSession(dst, FAST))

    out = run(go())
    assert out.files == 1
    assert dst.opened_with == [] and dst.session.plans == []
    assert ("written", "a") in dst.log  # went through the pool's per-file write()
