"""Name a store's entries for output (stores say how: ``item_field``, ``display_prefix``).

Stores themselves are opened by runctl.stores.factory."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

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
    return Naming(store.item_field, store.display_prefix)


def iso(ts: float) -> str:
    """Seconds since the epoch as ISO 8601 UTC with a Z (as `runctl s3 list --output json`)."""
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
