"""Sync planning: merge two sorted listings into copy / delete / skip actions."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from ..aio import unwrap_groups
from ..errors import BucketNotFoundError, NotFoundError
from ..stores.base import Entry, Store
from ..stores.local import safe_relpath
from .compare import SAME_CONTENT, UNSURE, Compare
from .plan import Action, PathFilter, Plan, unsafe_path_warning


async def _listing(store: Store, *, missing_ok: bool) -> list[Entry]:
    try:
        return [e async for e in store.list()]
    except BucketNotFoundError:
        raise
    except NotFoundError:
        if missing_ok:
            return []  # a destination that does not exist yet is simply empty
        raise


async def plan_sync(
    src: Store,
    dst: Store,
    compare: Compare,
    *,
    delete: bool = False,
    allow: PathFilter | None = None,
    checks_in_flight: int = 32,
    dst_entries: list[Entry] | None = None,
    staged: bool = False,
) -> Plan:
    """Plan a sync from ``src`` to ``dst``.

    Files excluded by ``allow`` are invisible on both sides: never copied, never
    deleted. Pairs the listings cannot decide (see Compare.quick) are resolved with
    at most ``checks_in_flight`` requests or hashes at a time. ``dst_entries``: the
    destination's listing when the caller already has it. ``staged``: the plan commits
    by building the new tree aside, so every destination-only path that must survive
    (excluded, or not deleted) gets a keep action.
    """
    if dst_entries is None:
        src_list, dst_list = await asyncio.gather(
            _listing(src, missing_ok=False), _listing(dst, missing_ok=True)
        )
    else:
        src_list, dst_list = await _listing(src, missing_ok=False), dst_entries
    plan = Plan(commit="staged" if staged else "in-place")
    unsure: list[tuple[int, Entry, Entry]] = []
    for s, d in _merge(src_list, dst_list):
        path = s.path if s is not None else d.path  # type: ignore[union-attr]
        if s is not None and safe_relpath(path) is None:
            plan.warnings.append(unsafe_path_warning(path, src.url))
            continue
        if allow is not None and not allow(path):
            if staged and s is None and d is not None:
                plan.actions.append(Action("keep", path, d.size, "excluded", d))
            continue
        if s is None:
            assert d is not None
            if d.kind == "dir" and not src.lists_directories:
                continue  # a source without directories says nothing about them: not "gone"
            if delete and safe_relpath(path) is not None:
                plan.actions.append(Action("delete", path, d.size, "not in source", d))
            elif staged:
                plan.actions.append(Action("keep", path, d.size, "not in source", d))
            continue
        if d is None:
            plan.actions.append(Action("copy", path, s.size, "new", s))
            continue
        reason = compare.quick(s, d)
        if reason == UNSURE:
            unsure.append((len(plan.actions), s, d))
            plan.actions.append(Action("skip", path, s.size, "unchanged", s))
        elif reason is None:
            plan.actions.append(Action("skip", path, s.size, "unchanged"))
        else:
            plan.actions.append(Action("copy", path, s.size, reason, s))
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


def _merge(a: list[Entry], b: list[Entry]) -> Iterator[tuple[Entry | None, Entry | None]]:
    """Pairs of (source, destination) entries with equal paths, in path order."""
    i = j = 0
    na, nb = len(a), len(b)
    while i < na and j < nb:
        s, d = a[i], b[j]
        if s.path == d.path:
            yield s, d
            i += 1
            j += 1
        elif s.path < d.path:
            yield s, None
            i += 1
        else:
            yield None, d
            j += 1
    for k in range(i, na):
        yield a[k], None
    for k in range(j, nb):
        yield None, b[k]
