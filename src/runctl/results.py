"""Result objects returned by the public API (and rendered by the CLI).

Every command's result is a ``Result``: one JSON writer, so every document has
``"ok"`` and ``"command"`` and the fields a copy between two stores always has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # not at run time: code push imports this before it connects
    from .engine.execute import Failure, Outcome
    from .engine.plan import Plan
    from .stores.base import Entry


@dataclass
class Result:
    """What a command between a source and a destination did."""

    command: str
    source: str
    destination: str
    bytes: int = 0
    seconds: float = 0.0
    failed: list[Failure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "ok": self.ok,
            "command": self.command,
            "source": self.source,
            "destination": self.destination,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "failed": [f.to_dict() for f in self.failed],
            "warnings": self.warnings,
        }
        if self.dry_run:
            doc["dry_run"] = True
        doc.update(self.details())
        return doc

    def details(self) -> dict[str, Any]:
        """The command's own fields."""
        return {}


@dataclass
class TransferResult(Result):
    files: int = 0
    deleted: int = 0
    skipped: int = 0
    plan: Plan | None = None
    resumed_bytes: int = 0
    """Bytes an earlier, interrupted run had stored and this one verified and reused."""

    @property
    def copied(self) -> int:
        return self.files

    @classmethod
    def from_outcome(
        cls, command: str, source: str, destination: str, plan: Plan, out: Outcome
    ) -> TransferResult:
        return cls(
            command,
            source,
            destination,
            files=out.files,
            bytes=out.bytes,
            seconds=out.seconds,
            failed=out.failed,
            warnings=list(plan.warnings),
            deleted=out.deleted,
            skipped=out.skipped,
            plan=plan,
        )

    def details(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "files": self.files,
            "copied": self.copied,
            "deleted": self.deleted,
            "skipped": self.skipped,
            "resumed": self.resumed_bytes > 0,
            "resumed_bytes": self.resumed_bytes,
        }
        if self.dry_run:
            doc["plan"] = [a.to_dict() for a in self.plan.all_actions()] if self.plan else []
        return doc

    def to_dict_without_plan(self) -> dict[str, Any]:
        """``to_dict()`` but for a dry run's ``plan`` (which the CLI streams)."""
        plan, self.plan = self.plan, None
        try:
            doc = self.to_dict()
        finally:
            self.plan = plan
        doc.pop("plan", None)
        return doc


@dataclass
class ListResult:
    url: str
    objects: list[Entry]
    prefixes: list[str] = field(default_factory=list)
    key_prefix: str = ""
    """Prepended to each entry path to get the full key."""

    def key(self, entry: Entry) -> str:
        return self.key_prefix + entry.path

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "command": "list",
            "url": self.url,
            "prefixes": [self.key_prefix + p for p in self.prefixes],
            "objects": [object_doc(self.key(e), e) for e in self.objects],
            "count": len(self.objects),
            "bytes": sum(e.size for e in self.objects),
        }


def object_doc(key: str, entry: Entry) -> dict[str, Any]:
    """One object of a listing, as ``s3 list -o json`` shows it."""
    from datetime import UTC, datetime

    return {
        "key": key,
        "size": entry.size,
        "last_modified": datetime.fromtimestamp(entry.mtime, UTC).isoformat().replace("+00:00", "Z"),
        "etag": (entry.etag or "").strip('"') or None,
    }
