"""Open an S3 prefix or a local directory as a Store, and name its entries for output."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..settings import Settings
from ..stores.base import Entry, Store


@dataclass(frozen=True)
class Naming:
    """How entries of one store are shown: S3 as full keys, local files as full paths."""

    field: str
    """"key" for S3, "path" for local disk."""
    prefix: str
    """Prepended to an entry's relative path."""

    def item(self, entry: Entry, **extra: Any) -> dict[str, Any]:
        return {
            self.field: self.prefix + entry.path,
            "size": entry.size,
            "last_modified": iso(entry.mtime),
            **extra,
        }


def naming_for(store: Store) -> Naming:
    from ..stores.local import LocalStore
    from ..stores.s3 import S3Store

    if isinstance(store, S3Store):
        return Naming("key", store.prefix)
    if isinstance(store, LocalStore):
        return Naming("path", str(store.root).rstrip("/") + "/")
    return Naming("path", "")


def open_location(location: str | Path, settings: Settings | None = None) -> Store:
    """``s3://BUCKET/PREFIX`` as an S3 store rooted at ``PREFIX/``; anything else as a local dir."""
    from ..api import local_store, s3_store

    settings = settings or Settings()
    if isinstance(location, str) and location.startswith("s3://"):
        return s3_store(location, settings, directory=True)[0]
    return local_store(Path(location), settings)


def iso(ts: float) -> str:
    """Seconds since the epoch as ISO 8601 UTC with a Z (as `runctl s3 list --output json`)."""
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
