"""What ``runctl data load`` reports: the project's one Result document, plus the load's fields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..results import Result
from .report import LoadReport


@dataclass
class LoadResult(Result):
    """``files``/``bytes`` count what DEST holds of the selected source set after the load
    (see dataload/report.py); ``copied``/``deleted``/``skipped`` are known when runctl's
    engine did the load here, None when a script did it with another tool."""

    tool: str = ""
    shard: str | None = None
    files: int = 0
    copied: int | None = None
    deleted: int | None = None
    skipped: int | None = None

    def details(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "shard": self.shard,
            "files": self.files,
            "copied": self.copied,
            "deleted": self.deleted,
            "skipped": self.skipped,
        }

    def report(self) -> LoadReport:
        """The machine-readable line's fields (what a script run here would print)."""
        return LoadReport(self.files, self.bytes, self.seconds, self.tool, self.shard)
