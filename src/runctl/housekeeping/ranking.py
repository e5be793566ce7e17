"""Rank files newest-first and prune all but the newest N: one plan for every Store.

Newness is the listing's mtime (S3: LastModified, whole seconds); ties are broken by
the key in natural order, so ``step_10.pt`` counts as newer than ``step_9.pt``.
Pruning is an engine Plan of deletes, run by the engine's executor (which batches
them as S3's DeleteObjects wants); a dry run is the plan, not executed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..engine.execute import execute
from ..engine.plan import Action, Plan
from ..errors import RunctlError, UsageError
from ..events import Event, FileDeleted, Reporter, null_reporter
from ..filters import PathTest, everything, glob_selector
from ..stores.base import Entry, Store
from .location import Naming, naming_for

CHECKPOINT_EXTENSIONS = (".pt", ".pth", ".ckpt", ".safetensors", ".bin", ".pkl", ".h5", ".onnx")

_DIGITS = re.compile(r"(\d+)")


def has_checkpoint_extension(path: str) -> bool:
    return path.lower().endswith(CHECKPOINT_EXTENSIONS)


def _natural(path: str) -> tuple[tuple[int | str, ...], str]:
    parts = _DIGITS.split(path)
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), path


def newness(entry: Entry) -> tuple[float, tuple[tuple[int | str, ...], str]]:
    """Sort key: mtime, then the key in natural order (later = newer)."""
    return entry.mtime, _natural(entry.path)


def rank(entries: Sequence[Entry]) -> list[Entry]:
    """Newest first."""
    return sorted(entries, key=newness, reverse=True)


def check_keep(keep_last_n: int, force: bool) -> None:
    if keep_last_n < 0:
        raise UsageError(f"--keep-last-n must be 0 or more, got {keep_last_n}")
    if keep_last_n == 0 and not force:
        raise UsageError(
            "--keep-last-n 0 would delete every matching object",
            "Add --force if you really mean to delete them all (try --dry-run first).",
        )


@dataclass
class RankedList:
    url: str
    naming: Naming
    entries: list[Entry]
    """Newest first."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "command": "checkpoint list",
            "url": self.url,
            "count": len(self.entries),
            "bytes": sum(e.size for e in self.entries),
            "checkpoints": [self.naming.item(e) for e in self.entries],
        }


@dataclass
class CleanupResult:
    url: str
    naming: Naming
    keep_last_n: int
    patterns: list[str] | None
    dry_run: bool
    listed: int = 0
    kept: list[Entry] = field(default_factory=list)
    deleted: list[Entry] = field(default_factory=list)
    """Newest first. Under a dry run: what would be deleted."""
    plan: Plan = field(default_factory=Plan)
    """The deletes, newest first (what a dry run shows, what a real run executes)."""

    @property
    def deleted_bytes(self) -> int:
        return sum(e.size for e in self.deleted)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "command": "cleanup",
            "url": self.url,
            "dry_run": self.dry_run,
            "keep_last_n": self.keep_last_n,
            "patterns": self.patterns,
            "listed": self.listed,
            "candidates": len(self.kept) + len(self.deleted),
            "kept": [self.naming.item(e) for e in self.kept],
            "deleted": [self.naming.item(e) for e in self.deleted],
            "deleted_count": len(self.deleted),
            "deleted_bytes": self.deleted_bytes,
        }


async def list_ranked(
    store: Store, patterns: Sequence[str] | None = None, default: PathTest = everything
) -> RankedList:
    """Every file under ``store`` that the patterns (else ``default``) select, newest first."""
    match = glob_selector(patterns, default)
    entries = [e async for e in store.list() if match(e.path)]
    return RankedList(store.url, naming_for(store), rank(entries))


async def cleanup(
    store: Store,
    keep_last_n: int,
    *,
    patterns: Sequence[str] | None = None,
    default: PathTest = everything,
    dry_run: bool = False,
    force: bool = False,
    reporter: Reporter = null_reporter,
) -> CleanupResult:
    """Keep the newest ``keep_last_n`` selected files under ``store``; delete the rest.

    The whole listing is ranked (every page) before anything is deleted. ``keep_last_n=0``
    is refused unless ``force``. A failure part-way raises the store's typed error, its
    message saying how many were already deleted.
    """
    check_keep(keep_last_n, force)
    result = CleanupResult(
        store.url, naming_for(store), keep_last_n, list(patterns) if patterns else None, dry_run
    )
    match = glob_selector(patterns, default)
    candidates: list[Entry] = []
    async for entry in store.list():
        result.listed += 1
        if match(entry.path):
            candidates.append(entry)
    ranked = rank(candidates)
    result.kept, doomed = ranked[:keep_last_n], ranked[keep_last_n:]
    reason = f"not among the newest {keep_last_n}"
    result.plan = Plan([Action("delete", e.path, e.size, reason, e) for e in doomed])
    if dry_run:
        result.deleted = doomed
        return result
    by_path = {e.path: e for e in doomed}

    def count(event: Event) -> None:
        # The executor reports each delete once its batch is done: the result (and the
        # partial-failure message) list exactly what is gone.
        if isinstance(event, FileDeleted):
            result.deleted.append(by_path[event.path])
        reporter(event)

    try:
        await execute(result.plan, store, store, count)
    except RunctlError as exc:
        done = len(result.deleted)
        raise type(exc)(f"{exc.message} (after deleting {done} of {len(doomed)})", exc.hint) from exc
    return result
