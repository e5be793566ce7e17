"""Cutting a prefix into ranges that can be listed at the same time, keeping key order.

S3 lists 1,000 keys per request, one page after another: at 20 ms a request, a million
keys is 20 s before a sync can finish planning. Real datasets are trees
(``train/<class>/<file>``), so the key space is cut where the tree branches: one
delimited listing of a level gives its objects and its sub-prefixes, and every
sub-prefix is a range of keys that can be listed on its own. Such a range is contiguous
in key order (the keys that start with ``a/`` have no other key between them), and it
sorts by its prefix among the level's objects and other prefixes, so the listings,
read back in the order of their prefixes, are the whole listing in key order.

Levels are expanded until there are enough ranges to keep ``WINDOW`` listings busy or
the tree has no more levels worth it. A level too large to hold (a flat prefix of a
million objects) is not expanded: it stays one range, listed page by page as before.
What is held here is bounded by ``LEVEL_BUDGET`` entries whatever the listing's size.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from .base import Entry
from .ordering import Source, concat_in_parallel

WINDOW = 32
"""Listings in flight at once."""
TARGET = 64
"""Ranges wanted before levels stop being expanded (twice the window, so a window's
worth stays busy while the slowest range of the previous batch finishes)."""
LEVEL_BUDGET = 20_000
"""Entries of delimited levels held at once while the cuts are chosen."""
MAX_DEPTH = 4
LEVEL_PAGE = 1000
"""Entries per delimited-level request (S3's maximum)."""

Level = tuple[list[str], list[Entry]]
"""One level below a prefix: (sub-prefixes, each ending in "/"; objects)."""
LevelFn = Callable[[str, int], Awaitable[Level | None]]
RangeFn = Callable[[str], AsyncIterator[Entry]]
"""``list_range(prefix)``: every object under ``prefix``, in key order."""
"""``level(prefix, limit)``: the level below ``prefix`` (relative to the store), or None
when it has more than ``limit`` entries, or is a flat run of objects worth no cut."""


@dataclass(frozen=True, slots=True)
class Cut:
    """One range of the listing: a single object already listed, or every key under
    ``key`` (a prefix ending in "/", "" for the whole store) still to be listed."""

    key: str
    entry: Entry | None = None
    final: bool = False
    """A range that was looked into and cannot be cut further."""

    @property
    def is_range(self) -> bool:
        return self.entry is None


async def listing(level: LevelFn, list_range: RangeFn) -> AsyncIterator[Entry]:
    """The whole listing, in key order: cut, then every range listed ``WINDOW`` at a time."""
    sources: list[Source[Entry]] = []
    for c in await cut(level):
        if c.entry is None:
            sources.append(functools.partial(list_range, c.key))
        elif sources and isinstance(sources[-1], list):
            sources[-1].append(c.entry)  # objects side by side are one run in hand
        else:
            sources.append([c.entry])
    async for entry in concat_in_parallel(sources, WINDOW):
        yield entry


async def cut(level: LevelFn) -> list[Cut]:
    """The cuts of the whole store, sorted by key: objects and ranges to list."""
    target, budget = TARGET, LEVEL_BUDGET
    cuts = [Cut("")]
    for _ in range(MAX_DEPTH):
        open_ranges = [c for c in cuts if c.is_range and not c.final]
        ranges = sum(1 for c in cuts if c.is_range)
        if not open_ranges or ranges >= target:
            break
        limit = max(1000, budget // len(open_ranges))
        gate = asyncio.Semaphore(WINDOW)
        levels = await asyncio.gather(*(_look(level, c.key, limit, gate) for c in open_ranges))
        expanded = dict(zip((c.key for c in open_ranges), levels, strict=True))
        nxt: list[Cut] = []
        for c in cuts:
            if not c.is_range or c.final or c.key not in expanded:
                nxt.append(c)
                continue
            found = expanded[c.key]
            if found is None:
                nxt.append(Cut(c.key, final=True))
                continue
            prefixes, objects = found
            nxt += [Cut(p) for p in prefixes if p != c.key]
            # The prefix's own marker object ("dir/" itself) is no file.
            nxt += [Cut(o.path, o) for o in objects if o.path and o.path != c.key]
        cuts = nxt
    cuts.sort(key=lambda c: c.key)
    return cuts


async def _look(level: LevelFn, key: str, limit: int, gate: asyncio.Semaphore) -> Level | None:
    async with gate:
        return await level(key, limit)
