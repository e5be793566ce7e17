"""Summarise a prefix (or directory): counts and bytes by category, newest, oldest, largest.

Categories, first rule that matches wins:
* logs: ``*.log``, ``events.out.tfevents*``, ``*.txt`` below a ``logs/`` (or ``log/``) folder;
* checkpoints: a name containing "checkpoint" or "ckpt";
* models / checkpoints: a weights extension (.pt .pth .ckpt .safetensors .bin .pkl .h5
  .onnx), "models" when the file name or a folder contains "model", else "checkpoints";
* other: everything else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..stores.base import Entry, Store
from .location import Naming, naming_for
from .ranking import has_checkpoint_extension, newness, rank

CATEGORIES = ("checkpoints", "models", "logs", "other")


def categorize(path: str) -> str:
    lower = path.lower()
    folders, _, name = lower.rpartition("/")
    dirs = folders.split("/") if folders else []
    if name.endswith(".log") or name.startswith("events.out.tfevents"):
        return "logs"
    if name.endswith(".txt") and ("logs" in dirs or "log" in dirs):
        return "logs"
    if "checkpoint" in lower or "ckpt" in lower:
        return "checkpoints"
    if has_checkpoint_extension(name):
        return "models" if "model" in name or any("model" in d for d in dirs) else "checkpoints"
    return "other"


@dataclass
class Tally:
    count: int = 0
    bytes: int = 0
    entries: list[Entry] = field(default_factory=list)


@dataclass
class Review:
    url: str
    naming: Naming
    detailed: bool = False
    categories: dict[str, Tally] = field(default_factory=lambda: {c: Tally() for c in CATEGORIES})
    newest: Entry | None = None
    oldest: Entry | None = None
    largest: Entry | None = None

    @property
    def count(self) -> int:
        return sum(t.count for t in self.categories.values())

    @property
    def bytes(self) -> int:
        return sum(t.bytes for t in self.categories.values())

    def add(self, entry: Entry) -> None:
        tally = self.categories[categorize(entry.path)]
        tally.count += 1
        tally.bytes += entry.size
        if self.detailed:
            tally.entries.append(entry)
        if self.newest is None or newness(entry) > newness(self.newest):
            self.newest = entry
        if self.oldest is None or newness(entry) < newness(self.oldest):
            self.oldest = entry
        if self.largest is None or entry.size > self.largest.size:
            self.largest = entry

    def _item(self, entry: Entry | None) -> dict[str, Any] | None:
        return None if entry is None else self.naming.item(entry, category=categorize(entry.path))

    def to_dict(self) -> dict[str, Any]:
        cats: dict[str, Any] = {}
        for name, t in self.categories.items():
            cats[name] = {"count": t.count, "bytes": t.bytes}
            if self.detailed:
                cats[name]["objects"] = [self.naming.item(e) for e in rank(t.entries)]
        return {
            "ok": True,
            "command": "review",
            "url": self.url,
            "count": self.count,
            "bytes": self.bytes,
            "categories": cats,
            "newest": self._item(self.newest),
            "oldest": self._item(self.oldest),
            "largest": self._item(self.largest),
        }


async def review(store: Store, *, detailed: bool = False) -> Review:
    """Summarise every file under ``store`` (entries are kept only when ``detailed``)."""
    result = Review(store.url, naming_for(store), detailed)
    async for entry in store.list():
        result.add(entry)
    return result
