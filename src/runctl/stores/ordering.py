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

import heapq
from collections.abc import AsyncIterator

from ..spill import Spill, entry_row, row_entry
from .base import Entry

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
