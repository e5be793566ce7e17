"""Listings in key order, in bounded memory.

Sync merges two listings that must both be in S3's key order (UTF-8 byte order of the
whole key, which is Python's ``str`` order: ``a-b`` sorts before ``a/b``). SeaweedFS pages
in directory-walk order, and any server but AWS is not trusted to keep the order; so
those listings pass through here. Up to ``SPILL_AT`` entries are sorted in memory (every
listing most users have); beyond, sorted runs of that many are written to temporary files
and merged back, as s5cmd's external sort does, so a million-key listing holds one run
in memory, not the whole listing.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TypeVar

from ..spill import Spill, entry_row, row_entry
from .base import Entry

T = TypeVar("T")

SPILL_AT = 100_000
"""Entries sorted in memory before a run goes to disk (~30 MB of entries)."""


def _key(entry: Entry) -> str:
    return entry.path


async def in_key_order(entries: AsyncIterator[Entry], spill_at: int | None = None) -> AsyncIterator[Entry]:
    """``entries`` sorted by path, whatever order they come in (runs of ``spill_at``,
    default SPILL_AT, go to disk)."""
    spill_at = spill_at or SPILL_AT
    batch: list[Entry] = []
    runs: list[Spill] = []
    try:
        async for entry in entries:
            batch.append(entry)
            if len(batch) >= spill_at:
                runs.append(_spill(batch))
                batch = []
        batch.sort(key=_key)
        if not runs:
            for entry in batch:
                yield entry
            return
        spilled = ((row_entry(row) for row in run) for run in runs)
        for entry in heapq.merge(*spilled, iter(batch), key=_key):
            yield entry
    finally:
        for run in runs:
            run.close()


def _spill(batch: list[Entry]) -> Spill:
    batch.sort(key=_key)
    run = Spill("runctl-sort-")
    for entry in batch:
        run.append(entry_row(entry))
    return run


Source = list[T] | Callable[[], AsyncIterator[T]]
"""A run of items already in hand, or a listing to start when its turn comes near."""


async def concat_in_parallel(
    sources: Sequence[Source[T]], window: int, batch: int = 1000, batches_ahead: int = 2
) -> AsyncIterator[T]:
    """The items of ``sources``, source after source, in the order given, while up to
    ``window`` of the listings ahead of the one being read run at the same time.

    This is how a prefix is listed in parallel without losing its order: the key space
    is cut into ranges that are listed at once and read back one after another. Each
    listing buffers at most ``batches_ahead`` batches of ``batch`` items before it
    waits for the reader, so memory is bounded by the window, not the listing. An error
    in a listing is raised here, when the reader reaches it; leaving early (or an
    error) cancels every listing still running.
    """
    started: dict[int, tuple[asyncio.Task[None], asyncio.Queue[list[T] | BaseException | None]]] = {}
    next_to_start = 0

    def start_ahead(current: int) -> None:
        nonlocal next_to_start
        running = sum(1 for i in started if i >= current)
        while next_to_start < len(sources) and running < window:
            source = sources[next_to_start]
            if callable(source):
                queue: asyncio.Queue[list[T] | BaseException | None] = asyncio.Queue(batches_ahead)
                started[next_to_start] = (asyncio.create_task(_fill(source, queue, batch)), queue)
                running += 1
            next_to_start += 1

    try:
        for i, source in enumerate(sources):
            start_ahead(i)
            if not callable(source):
                for item in source:
                    yield item
                continue
            task, queue = started[i]
            while (got := await queue.get()) is not None:
                if isinstance(got, BaseException):
                    raise got
                for item in got:
                    yield item
            await task
            del started[i]
    finally:
        for task, _ in started.values():
            task.cancel()
        for task, _ in started.values():
            with contextlib.suppress(BaseException):
                await task


async def _fill(
    source: Callable[[], AsyncIterator[T]], queue: asyncio.Queue[list[T] | BaseException | None], size: int
) -> None:
    try:
        chunk: list[T] = []
        async for item in source():
            chunk.append(item)
            if len(chunk) >= size:
                await queue.put(chunk)
                chunk = []
        if chunk:
            await queue.put(chunk)
    except Exception as exc:  # handed to the reader, which raises it in order
        await queue.put(exc)
        return
    await queue.put(None)
