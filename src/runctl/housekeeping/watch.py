"""Watch a store: poll its listing and yield what appeared, changed or disappeared.

Objects present when the watch starts are the baseline and are not reported. A poll
that fails with a NetworkError is retried with exponential backoff (capped); any other
error ends the watch. The first listing is not retried, so a wrong bucket or endpoint
fails at once instead of looping.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import NetworkError, UsageError
from ..stores.base import Entry, Store
from .location import Naming, iso

Kind = Literal["added", "changed", "deleted"]
Snapshot = dict[str, Entry]


@dataclass(frozen=True, slots=True)
class Change:
    event: Kind
    entry: Entry
    """The new entry (for "deleted": the last one seen)."""

    def to_dict(self, naming: Naming) -> dict[str, Any]:
        return {
            "event": self.event,
            naming.field: naming.prefix + self.entry.path,
            "size": self.entry.size,
            "last_modified": iso(self.entry.mtime),
        }


async def snapshot(store: Store) -> Snapshot:
    return {e.path: e async for e in store.list()}


def diff(old: Snapshot, new: Snapshot) -> list[Change]:
    """Changes from ``old`` to ``new``, in key order. Changed = size, etag or mtime differ."""
    changes: list[Change] = []
    for path in sorted(old.keys() | new.keys()):
        before, after = old.get(path), new.get(path)
        if before is None:
            assert after is not None
            changes.append(Change("added", after))
        elif after is None:
            changes.append(Change("deleted", before))
        elif (before.size, before.etag, before.mtime) != (after.size, after.etag, after.mtime):
            changes.append(Change("changed", after))
    return changes


async def watch(
    store: Store,
    *,
    interval: float = 5.0,
    max_polls: int | None = None,
    stop: Callable[[], bool] | None = None,
    on_poll: Callable[[int], None] | None = None,
    on_retry: Callable[[NetworkError, float], None] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    max_backoff: float = 60.0,
) -> AsyncIterator[Change]:
    """Yield changes under ``store`` every ``interval`` seconds.

    Ends after ``max_polls`` polls (not counting the baseline listing) or once ``stop()``
    returns true; otherwise runs until cancelled. ``on_poll(n)`` is called after each
    successful listing (0 = baseline); ``on_retry(error, delay)`` before each backoff wait.
    """
    if interval <= 0:
        raise UsageError(f"--interval must be more than 0 seconds, got {interval}")
    seen = await snapshot(store)
    if on_poll is not None:
        on_poll(0)
    polls = failures = 0
    delay = interval
    while (max_polls is None or polls < max_polls) and not (stop is not None and stop()):
        await sleep(delay)
        if stop is not None and stop():
            return
        polls += 1
        try:
            now = await snapshot(store)
        except NetworkError as exc:
            failures += 1
            delay = min(interval * 2**failures, max(max_backoff, interval))
            if on_retry is not None:
                on_retry(exc, delay)
            continue
        failures, delay = 0, interval
        for change in diff(seen, now):
            yield change
        seen = now
        if on_poll is not None:
            on_poll(polls)
