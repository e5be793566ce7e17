"""Sync planning: merge two sorted listings into copy / delete / skip actions."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from ..aio import unwrap_groups
from ..errors import BucketNotFoundError, NotFoundError
from ..stores.base import Entry, Store
from ..stores.local import safe_relpath
from .compare import SAME_CONTENT, UNSURE, Compare
from .plan import Action, PathFilter, Plan, unsafe_path_warning


async def _listing(store: Store, *, missing_ok: bool) -> AsyncIterator[Entry]:
    try:
        async for entry in store.list():
            yield entry
    except BucketNotFoundError:
        raise
    except NotFoundError:
        if not missing_ok:
            raise
        # a destination that does not exist yet is simply empty


READ_AHEAD = 8
"""Blocks of a listing fetched ahead of the merge (bounded: the merge reads the two
listings alternately, and this keeps the slower one's requests going meanwhile)."""
BLOCK = 1000


async def _read_ahead(entries: AsyncIterator[Entry]) -> AsyncIterator[Entry]:
    """``entries`` as they come, with up to READ_AHEAD blocks fetched by a task of its own
    (a listing's next page is in flight while the merge works through this one)."""
    queue: asyncio.Queue[list[Entry] | BaseException | None] = asyncio.Queue(READ_AHEAD)

    async def fill() -> None:
        block: list[Entry] = []
        try:
            async for entry in entries:
                block.append(entry)
                if len(block) >= BLOCK:
                    await queue.put(block)
                    block = []
            await queue.put(block)
            await queue.put(None)
        except Exception as exc:  # handed to the reader, who raises it in its place
            await queue.put(exc)

    task = asyncio.ensure_future(fill())
    try:
        while (item := await queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            for entry in item:
                yield entry
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def _given(entries: list[Entry]) -> AsyncIterator[Entry]:
    for entry in entries:
        yield entry


async def plan_sync(
    src: Store,
    dst: Store,
    compare: Compare,
    *,
    delete: bool = False,
    allow: PathFilter | None = None,
    checks_in_flight: int = 32,
    dst_entries: list[Entry] | None = None,
    src_entries: list[Entry] | None = None,
    src_allow: PathFilter | None = None,
    staged: bool = False,
    record_skips: bool = True,
    source_selected: bool = False,
) -> Plan:
    """Plan a sync from ``src`` to ``dst``.

    Files excluded by ``allow`` are invisible on both sides: never copied, never
    deleted. Pairs the listings cannot decide (see Compare.quick) are resolved with
    at most ``checks_in_flight`` requests or hashes at a time. ``dst_entries``,
    ``src_entries``: a listing the caller already has (both given: merged with no await
    per entry, which cost more than the rest of the plan at 60,000 files). ``staged``: the plan commits
    by building the new tree aside, so every destination-only path that must survive
    (excluded, or not deleted) gets a keep action. ``record_skips=False``: unchanged
    files are counted, not kept (see Plan.record_skips). ``src_allow``: source files it
    refuses are treated as absent there (a shard's other files: deleted from the
    destination with ``delete``, else left), unlike ``allow``, which hides a path on both.
    ``source_selected``: ``allow`` admits every source path (the source was listed through
    it, as a code push's selection is), so it is asked only about destination-only paths.
    """
    plan = Plan(commit="staged" if staged else "in-place", record_skips=record_skips)
    unsure: list[tuple[int, Entry, Entry]] = []
    quick = compare.quick
    dirs_listed = src.lists_directories
    check_source = not src.lists_safe_paths

    def decide(s: Entry | None, d: Entry | None) -> None:
        if s is not None and src_allow is not None and not src_allow(s.path):
            if d is None:
                return
            s = None
        path = s.path if s is not None else d.path  # type: ignore[union-attr]
        if s is not None and check_source and safe_relpath(path) is None:
            plan.warnings.append(unsafe_path_warning(path, src.url))
            return
        if allow is not None and not (s is not None and source_selected) and not allow(path):
            if staged and s is None and d is not None:
                plan.actions.append(Action("keep", path, d.size, "excluded", d))
            return
        if s is None:
            assert d is not None
            if d.kind == "dir" and not dirs_listed:
                return  # a source without directories says nothing about them: not "gone"
            if delete and safe_relpath(path) is not None:
                plan.actions.append(Action("delete", path, d.size, "not in source", d))
            elif staged:
                plan.actions.append(Action("keep", path, d.size, "not in source", d))
            return
        if d is None:
            plan.add(Action("copy", path, s.size, "new", s))
            return
        reason = quick(s, d)
        if reason == UNSURE:
            unsure.append((len(plan.actions), s, d))
            plan.actions.append(Action("skip", path, s.size, "unchanged", s))
        elif reason is None:
            plan.skip(Action("skip", path, s.size, "unchanged"))
        else:
            plan.add(Action("copy", path, s.size, reason, s))

    if src_entries is not None and dst_entries is not None:
        pair_allow = None if source_selected else allow
        _decide_lists(plan, src_entries, dst_entries, decide, quick, pair_allow, src_allow, check_source)
    else:
        src_list = _listing(src, missing_ok=False) if src_entries is None else _given(src_entries)
        dst_list = _listing(dst, missing_ok=True) if dst_entries is None else _given(dst_entries)
        async for s, d in _merge(_read_ahead(src_list), _read_ahead(dst_list)):
            decide(s, d)
    await _resolve(plan, unsure, compare, checks_in_flight)
    return plan


async def _resolve(plan: Plan, unsure: list[tuple[int, Entry, Entry]], compare: Compare, limit: int) -> None:
    """Settle the undecided pairs with ``limit`` workers (not one task per pair: 100,000
    pending tasks would cost more memory than the listings themselves)."""
    pending = iter(unsure)

    async def worker() -> None:
        for index, s, d in pending:  # shared iterator: each pair is taken once
            reason = await compare.resolve(s, d)
            if reason == SAME_CONTENT:
                plan.actions[index] = Action("touch", s.path, s.size, "content unchanged", s)
            elif reason is not None:
                plan.actions[index] = Action("copy", s.path, s.size, reason, s)

    async with unwrap_groups(), asyncio.TaskGroup() as tg:
        for _ in range(min(limit, len(unsure))):
            tg.create_task(worker())


def _decide_lists(
    plan: Plan,
    a: list[Entry],
    b: list[Entry],
    decide: Callable[[Entry | None, Entry | None], None],
    quick: Callable[[Entry, Entry], str | None],
    allow: PathFilter | None,
    src_allow: PathFilter | None,
    check_source: bool,
) -> None:
    """``decide`` over two listings in memory, merged as ``_merge`` does, with the usual pair (the same
    path on both sides, unchanged) settled inline: no pair tuple, no call of ``decide``,
    no skip action when skips are only counted (60,000 files: 0.13 s -> 0.08 s). Every
    other pair goes to ``decide``, which asks ``quick`` again (it is a pure test).
    ``allow``: the filter for a pair's path (None: no filter, or one that admits every
    source path); ``check_source``: whether a source path may be unsafe."""
    i = j = 0
    na, nb = len(a), len(b)
    counted = not plan.record_skips
    skips = skipped_bytes = 0
    while i < na and j < nb:
        s, d = a[i], b[j]
        path = s.path
        if path == d.path:
            i += 1
            j += 1
            if (
                counted
                and quick(s, d) is None
                and (not check_source or safe_relpath(path) is not None)
                and (allow is None or allow(path))
                and (src_allow is None or src_allow(path))
            ):
                skips += 1
                skipped_bytes += s.size
            else:
                decide(s, d)
        elif path < d.path:
            decide(s, None)
            i += 1
        else:
            decide(None, d)
            j += 1
    for s in a[i:]:
        decide(s, None)
    for d in b[j:]:
        decide(None, d)
    plan.unrecorded_skips += skips
    plan.unrecorded_skip_bytes += skipped_bytes


async def _merge(
    a: AsyncIterator[Entry], b: AsyncIterator[Entry]
) -> AsyncIterator[tuple[Entry | None, Entry | None]]:
    """Pairs of (source, destination) entries with equal paths, in path order, as the
    two listings stream in (both are in key order: Store.list promises it). The two
    listings are read alternately, so neither is held whole."""
    s = await anext(a, None)
    d = await anext(b, None)
    while s is not None and d is not None:
        if s.path == d.path:
            yield s, d
            s, d = await anext(a, None), await anext(b, None)
        elif s.path < d.path:
            yield s, None
            s = await anext(a, None)
        else:
            yield None, d
            d = await anext(b, None)
    while s is not None:
        yield s, None
        s = await anext(a, None)
    while d is not None:
        yield None, d
        d = await anext(b, None)
