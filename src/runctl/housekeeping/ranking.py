"""Rank files newest-first and prune all but the newest N: one plan for every Store.

Newness is the listing's mtime (S3: LastModified, whole seconds); ties are broken by
the key in natural order, so ``step_10.pt`` counts as newer than ``step_9.pt``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from ..errors import RunctlError, UsageError
from ..events import FileDeleted, Reporter, null_reporter
from ..stores.base import Entry, Store
from .location import Naming, naming_for

CHECKPOINT_EXTENSIONS = (".pt", ".pth", ".ckpt", ".safetensors", ".bin", ".pkl", ".h5", ".onnx")
DELETE_BATCH = 1000
"""Keys per delete call: S3's DeleteObjects limit."""

Selector = Callable[[str], bool]

_DIGITS = re.compile(r"(\d+)")


def everything(path: str) -> bool:
    return True


def has_checkpoint_extension(path: str) -> bool:
    return path.lower().endswith(CHECKPOINT_EXTENSIONS)


def select(patterns: Sequence[str] | None, default: Selector = everything) -> Selector:
    """Match relative paths against any of ``patterns`` (fnmatch, case-sensitive, ``*``
    crosses ``/``); with no patterns, use ``default``."""
    if not patterns:
        return default
    globs = tuple(patterns)
    return lambda path: any(fnmatchcase(path, g) for g in globs)


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
    store: Store, patterns: Sequence[str] | None = None, default: Selector = everything
) -> RankedList:
    """Every file under ``store`` that the patterns (else ``default``) select, newest first."""
    match = select(patterns, default)
    entries = [e async for e in store.list() if match(e.path)]
    return RankedList(store.url, naming_for(store), rank(entries))


async def cleanup(
    store: Store,
    keep_last_n: int,
    *,
    patterns: Sequence[str] | None = None,
    default: Selector = everything,
    dry_run: bool = False,
    force: bool = False,
    reporter: Reporter = null_reporter,
) -> CleanupResult:
    """Keep the newest ``keep_last_n`` selected files under ``store``; delete the rest.

    The whole listing is ranked (every page), then deletions go out in batches of
    1,000. ``keep_last_n=0`` is refused unless ``force``. A failure part-way raises the
    store's typed error, its message saying how many were already deleted.
    """
    check_keep(keep_last_n, force)
    result = CleanupResult(
        store.url, naming_for(store), keep_last_n, list(patterns) if patterns else None, dry_run
    )
    match = select(patterns, default)
    candidates: list[Entry] = []
    async for entry in store.list():
        result.listed += 1
        if match(entry.path):
            candidates.append(entry)
    ranked = rank(candidates)
    result.kept, doomed = ranked[:keep_last_n], ranked[keep_last_n:]
    if dry_run:
        result.deleted = doomed
        return result
    for i in range(0, len(doomed), DELETE_BATCH):
        batch = doomed[i : i + DELETE_BATCH]
        try:
            await store.delete([e.path for e in batch])
        except RunctlError as exc:
            raise type(exc)(f"{exc.message} (after deleting {i} of {len(doomed)})", exc.hint) from exc
        result.deleted.extend(batch)
        for e in batch:
            reporter(FileDeleted(e.path))
    return result
