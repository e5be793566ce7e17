"""Run a plan between two stores: bounded concurrency, retries with jittered backoff, events."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

from ..aio import unwrap_groups
from ..errors import NetworkError, RunctlError
from ..events import BytesMoved, FileDeleted, FileDone, FileFailed, FileSkipped, Notice, Planned, Reporter
from ..stores.base import Store
from .plan import Action, Plan

DELETE_BATCH = 1000


@dataclass
class Failure:
    path: str
    error: str
    exc: RunctlError | None = None

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "error": self.error}


@dataclass
class Outcome:
    """What executing a plan did."""

    files: int = 0
    bytes: int = 0
    deleted: int = 0
    skipped: int = 0
    seconds: float = 0.0
    failed: list[Failure] = field(default_factory=list)


@dataclass(frozen=True)
class ExecOptions:
    concurrency: int = 10
    retries: int = 1
    """Whole-file retries on transient errors. The S3 client already retries each request
    (and resumes a broken ranged GET), so one more attempt of the whole file is enough;
    more would multiply its timeouts."""
    backoff: float = 0.2


async def execute(
    plan: Plan,
    src: Store,
    dst: Store,
    reporter: Reporter,
    opts: ExecOptions = ExecOptions(),
) -> Outcome:
    """Copy, then delete, as the plan says. Fatal errors (bad credentials, unreachable
    endpoint, missing bucket) cancel everything and are raised; per-file errors are
    collected in ``Outcome.failed`` and the rest carry on."""
    started = time.monotonic()
    out = Outcome(skipped=len(plan.skips))
    for message in plan.warnings:
        reporter(Notice(message))
    for action in plan.skips:
        reporter(FileSkipped(action.target, action.reason))
    copies = plan.copies
    reporter(Planned(len(copies), sum(a.size for a in copies)))

    if dst.batch_writes and copies and all(a.dst_path is None for a in copies):
        await _copy_batch(copies, src, dst, reporter, out)
    else:
        queue = iter(copies)

        async def worker() -> None:
            for action in queue:  # a shared iterator: each action is taken by one worker
                await _copy_one(action, src, dst, reporter, opts, out)

        async with unwrap_groups(), asyncio.TaskGroup() as tg:
            for _ in range(max(1, min(opts.concurrency, len(copies)))):
                tg.create_task(worker())

    deletes = [a.target for a in plan.deletes]
    for i in range(0, len(deletes), DELETE_BATCH):
        batch = deletes[i : i + DELETE_BATCH]
        await dst.delete(batch)
        for path in batch:
            reporter(FileDeleted(path))
        out.deleted += len(batch)
    out.seconds = time.monotonic() - started
    return out


async def _copy_batch(copies: list[Action], src: Store, dst: Store, reporter: Reporter, out: Outcome) -> None:
    """All copies as one batch (e.g. one tar stream over SSH). A batch is all or nothing
    from the executor's view, so a failure is raised rather than retried per file."""
    sizes = {a.target: a.size for a in copies}

    def on_bytes(path: str, n: int) -> None:
        reporter(BytesMoved(path, n))

    def on_done(path: str) -> None:
        out.files += 1
        out.bytes += sizes.get(path, 0)
        reporter(FileDone(path, sizes.get(path, 0)))

    entries = [a.entry for a in copies if a.entry is not None]
    await dst.write_batch(entries, src, on_bytes, on_done)


async def _copy_one(
    action: Action, src: Store, dst: Store, reporter: Reporter, opts: ExecOptions, out: Outcome
) -> None:
    assert action.entry is not None
    path = action.target
    moved = 0

    def progress(n: int) -> None:
        nonlocal moved
        moved += n
        reporter(BytesMoved(path, n))

    for attempt in range(opts.retries + 1):
        try:
            await dst.write(path, src, action.entry, progress)
        except RunctlError as exc:
            if moved:  # roll the counters back before trying again or giving up
                reporter(BytesMoved(path, -moved))
                moved = 0
            if isinstance(exc, NetworkError) and attempt < opts.retries:
                # Exponential backoff with full jitter: spreads retries of many workers.
                await asyncio.sleep(random.uniform(0, opts.backoff * 2**attempt))
                continue
            if exc.fatal:
                raise
            out.failed.append(Failure(path, exc.message, exc))
            reporter(FileFailed(path, exc.message))
            return
        out.files += 1
        out.bytes += action.entry.size if moved == 0 else moved
        reporter(FileDone(path, action.entry.size))
        return
