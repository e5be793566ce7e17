"""Plans: what to copy, delete or skip, decided before anything moves.

Because the executor only runs a plan, ``--dry-run`` and JSON plans come for free.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from ..spill import Row, Spill, entry_row, row_entry
from ..stores.base import Entry
from ..stores.local import safe_relpath

ActionKind = Literal["copy", "delete", "skip", "touch", "keep"]
"""copy and delete as named; skip: unchanged; touch: content matched, only the
destination's mtime is set (so the next run sees no change); keep: a destination-only
path that a staged commit must carry over into the new tree (excluded, or not deleted)."""
Commit = Literal["in-place", "staged"]
"""in-place: each file lands at its place as it completes (atomically per file);
staged: the whole new tree is built aside and swapped into place at the end."""
PathFilter = Callable[[str], bool]
COPIES_IN_MEMORY = 100_000
"""Copies a plan keeps in memory; beyond, they go to a temporary file (a download of a
million new keys would otherwise hold a million actions, ~350 MB)."""


class Action(NamedTuple):
    """One step of a plan (a NamedTuple for the speed of making 60,000: see Entry)."""

    kind: ActionKind
    path: str
    """Path relative to both store roots (source for copies, destination for deletes)."""
    size: int
    reason: str
    entry: Entry | None = None
    dst_path: str | None = None
    """Destination path when it differs from ``path`` (single-file copies)."""

    @property
    def target(self) -> str:
        return self.dst_path if self.dst_path is not None else self.path

    def to_dict(self) -> dict[str, object]:
        return {"action": self.kind, "path": self.target, "size": self.size, "reason": self.reason}

    def row(self) -> Row:
        entry = entry_row(self.entry) if self.entry is not None else None
        return (self.kind, self.path, self.size, self.reason, entry, self.dst_path)

    @classmethod
    def from_row(cls, row: Row) -> Action:
        kind, path, size, reason, entry, dst_path = row
        return cls(kind, path, size, reason, row_entry(entry) if entry is not None else None, dst_path)


class Copies:
    """A plan's copies: those in its action list, then those spilled to disk. Sized,
    and iterable as often as needed."""

    def __init__(self, plan: Plan) -> None:
        self._plan = plan
        self._here = [a for a in plan.actions if a.kind == "copy"]

    def __len__(self) -> int:
        spilled = self._plan.spilled
        return len(self._here) + (len(spilled) if spilled is not None else 0)

    def __bool__(self) -> bool:
        return len(self) > 0

    def __iter__(self) -> Iterator[Action]:
        yield from self._here
        if self._plan.spilled is not None:
            for row in self._plan.spilled:
                yield Action.from_row(row)


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    commit: Commit = "in-place"
    record_skips: bool = True
    """False: unchanged files are only counted (``unrecorded_skips``), not kept as
    actions: a no-change sync of a million keys then holds no million actions."""
    unrecorded_skips: int = 0
    unrecorded_skip_bytes: int = 0
    spilled: Spill | None = field(default=None, repr=False, compare=False)
    """Copies beyond COPIES_IN_MEMORY (``add``), in plan order after those in ``actions``."""
    _copies_here: int = field(default=0, repr=False, compare=False)

    def add(self, action: Action) -> None:
        """Append an action; copies past COPIES_IN_MEMORY go to the spill file."""
        if action.kind == "copy":
            if self._copies_here >= COPIES_IN_MEMORY:
                if self.spilled is None:
                    self.spilled = Spill("runctl-plan-")
                self.spilled.append(action.row())
                return
            self._copies_here += 1
        self.actions.append(action)

    def all_actions(self) -> Iterator[Action]:
        """Every action: those in memory, then the spilled copies."""
        yield from self.actions
        if self.spilled is not None:
            for row in self.spilled:
                yield Action.from_row(row)

    def skip(self, action: Action) -> None:
        if self.record_skips:
            self.actions.append(action)
        else:
            self.unrecorded_skips += 1
            self.unrecorded_skip_bytes += action.size

    @property
    def skip_count(self) -> int:
        return len(self.skips) + self.unrecorded_skips

    @property
    def copies(self) -> Copies:
        return Copies(self)

    @property
    def deletes(self) -> list[Action]:
        return [a for a in self.actions if a.kind == "delete"]

    @property
    def skips(self) -> list[Action]:
        return [a for a in self.actions if a.kind == "skip"]

    @property
    def touches(self) -> list[Action]:
        return [a for a in self.actions if a.kind == "touch"]

    @property
    def keeps(self) -> list[Action]:
        return [a for a in self.actions if a.kind == "keep"]


def unsafe_path_warning(path: str, where: str) -> str:
    return f"refusing key {where}{path!r}: it would write outside the destination"


async def plan_copy_all(
    entries: AsyncIterator[Entry],
    *,
    where: str,
    allow: PathFilter | None = None,
) -> Plan:
    """Copy every listed file that passes the filter; refuse paths that escape the root."""
    plan = Plan()
    async for entry in entries:
        if safe_relpath(entry.path) is None:
            plan.warnings.append(unsafe_path_warning(entry.path, where))
            continue
        if allow is not None and not allow(entry.path):
            continue
        plan.add(Action("copy", entry.path, entry.size, "new", entry))
    return plan


def plan_single(entry: Entry, dst_path: str) -> Plan:
    return Plan([Action("copy", entry.path, entry.size, "new", entry, dst_path)])
