"""`s3 abort-uploads`: find and abort unfinished multipart uploads under a prefix.

An upload interrupted by Ctrl-C, SIGKILL or a lost network leaves its parts stored (and
billed) until it is completed or aborted; neither ``s3 list`` nor the console's object
view shows them. ``--older-than`` spares uploads that may still be running elsewhere.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..aio import unwrap_groups
from ..errors import UsageError
from ..stores.s3 import S3Store, Upload

ABORTS_IN_FLIGHT = 16
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")


def parse_age(text: str) -> float:
    """``90s``, ``30m``, ``12h``, ``1d``, ``2w`` -> seconds."""
    found = _DURATION.match(text.strip().lower())
    if not found:
        raise UsageError(f"not an age: {text!r}", "e.g. --older-than 1d (units: s, m, h, d, w)")
    return float(found.group(1)) * _UNITS[found.group(2)]


@dataclass
class AbortResult:
    url: str
    dry_run: bool
    older_than: float | None
    found: int = 0
    uploads: list[Upload] = field(default_factory=list)
    """The uploads aborted (under a dry run: that would be), oldest first."""

    def to_dict(self, prefix: str) -> dict[str, Any]:
        return {
            "ok": True,
            "command": "abort-uploads",
            "url": self.url,
            "dry_run": self.dry_run,
            "older_than_seconds": self.older_than,
            "found": self.found,
            "aborted": [
                {"key": prefix + u.path, "upload_id": u.upload_id, "initiated": started(u)}
                for u in self.uploads
            ],
            "aborted_count": len(self.uploads),
        }


def started(upload: Upload) -> str:
    return datetime.fromtimestamp(upload.initiated, UTC).isoformat().replace("+00:00", "Z")


async def abort_uploads(
    store: S3Store, *, older_than: float | None = None, dry_run: bool = False, now: float | None = None
) -> AbortResult:
    """Abort every unfinished upload under the store's prefix (started more than
    ``older_than`` seconds ago, when given)."""
    uploads = await store.unfinished_uploads()
    cutoff = (now if now is not None else time.time()) - older_than if older_than is not None else None
    chosen = [u for u in uploads if cutoff is None or u.initiated < cutoff]
    result = AbortResult(store.url, dry_run, older_than, found=len(uploads), uploads=chosen)
    if dry_run:
        return result
    pending = iter(chosen)

    async def worker() -> None:
        for upload in pending:  # shared iterator: each upload is aborted once
            await store.abort_upload(upload)

    async with unwrap_groups(), asyncio.TaskGroup() as tg:
        for _ in range(min(ABORTS_IN_FLIGHT, len(chosen))):
            tg.create_task(worker())
    return result
