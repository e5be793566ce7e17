"""Run a plan between two stores: the destination opens a session that carries it out.

The default session (``PoolSession``) is a bounded pool of per-file workers with
retries and jittered backoff: local disk, S3 and the SFTP fallback use it. A store
that can do better with the whole plan at once (a remote tree: one script and one tar
stream in one login shell) opens its own session instead.
"""

from __future__ import annotations

import asyncio
import random
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from ..aio import unwrap_groups
from ..errors import NetworkError, RunctlError
from ..events import BytesMoved, FileDeleted, FileDone, FileFailed, FileSkipped, Notice, Planned, Reporter
from ..stores.base import Store
from .budget import ByteBudget
from .plan import Action, Copies, Plan

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
    touched: int = 0
    seconds: float = 0.0
    failed: list[Failure] = field(default_factory=list)
    verified: str | None = None
    """The digest the destination checked what it received with, when it checked it
    whole before putting it in place (a remote tree: remote.unpack_check)."""


MIB = 1024 * 1024


@dataclass(frozen=True)
class ExecOptions:
    concurrency: int | None = None
    """Transfers in flight. None: as many as the stores declare (``files_in_flight``),
    bounded by ``bytes_in_flight``; a number pins the count (no byte bound)."""
    bytes_in_flight: int = 128 * MIB
    """Without --concurrency: the bytes all transfers together may hold at their peak."""
    transfer_peak: int = 32 * MIB
    """The most one transfer holds at once (parts in flight x part size): a file larger
    than this reserves only this much of ``bytes_in_flight``."""
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
    session: PlanSession | None = None,
) -> Outcome:
    """Carry out ``plan`` through ``session``, else the one ``dst`` opens. Fatal errors
    (bad credentials, unreachable endpoint, missing bucket) cancel everything and are
    raised; per-file errors are collected in ``Outcome.failed`` and the rest carry on."""
    started = time.monotonic()
    out = await (session or dst.open_session(opts)).run(plan, src, reporter)
    out.seconds = time.monotonic() - started
    return out


class PlanSession(ABC):
    """Carries out one plan on a destination store."""

    @abstractmethod
    async def run(self, plan: Plan, src: Store, reporter: Reporter) -> Outcome: ...


def announce(plan: Plan, reporter: Reporter) -> Outcome:
    """Emit what is known before anything moves (warnings, skips, the totals); every
    session starts with this, so progress bars fill the same way whatever the store."""
    for message in plan.warnings:
        reporter(Notice(message))
    for action in plan.skips:
        reporter(FileSkipped(action.target, action.reason))
    copies = plan.copies
    reporter(Planned(len(copies), sum(a.size for a in copies)))
    return Outcome(skipped=plan.skip_count)


class PoolSession(PlanSession):
    """Per-file workers: copies (``opts.concurrency`` at a time, else as many as the
    stores declare within the byte budget; retried), then mtime fixes, then deletes in
    batches."""

    def __init__(self, dst: Store, opts: ExecOptions = ExecOptions()) -> None:
        self.dst = dst
        self.opts = opts

    async def run(self, plan: Plan, src: Store, reporter: Reporter) -> Outcome:
        dst = self.dst
        if plan.commit != "in-place":
            raise NotImplementedError(f"{dst.url} cannot commit a plan {plan.commit}")
        out = announce(plan, reporter)
        await self.copy_all(plan.copies, src, reporter, out)

        touches = [(a.target, a.entry.mtime) for a in plan.touches if a.entry is not None]
        if touches:
            await dst.set_mtimes(touches)
            out.touched = len(touches)
        deletes = [a.target for a in plan.deletes]
        for i in range(0, len(deletes), DELETE_BATCH):
            batch = deletes[i : i + DELETE_BATCH]
            await dst.delete(batch)
            for path in batch:
                reporter(FileDeleted(path))
            out.deleted += len(batch)
        return out

    async def copy_all(self, copies: Copies, src: Store, reporter: Reporter, out: Outcome) -> None:
        """The copies alone, into ``out`` (a session that commits them its own way, e.g.
        stores.sftp, runs the rest itself)."""
        dst, opts = self.dst, self.opts
        queue = iter(copies)
        count = opts.concurrency or max(src.files_in_flight, dst.files_in_flight)
        budget = ByteBudget(opts.bytes_in_flight) if opts.concurrency is None else None

        async def worker() -> None:
            for action in queue:  # a shared iterator: each action is taken by one worker
                if budget is None:
                    await _copy_one(action, src, dst, reporter, opts, out)
                    continue
                async with budget.hold(min(action.size, opts.transfer_peak)):
                    await _copy_one(action, src, dst, reporter, opts, out)

        async with unwrap_groups(), asyncio.TaskGroup() as tg:
            for _ in range(max(1, min(count, len(copies)))):
                tg.create_task(worker())


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
