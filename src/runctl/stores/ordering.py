"""Listings in key order, in bounded memory.

Sync merges two listings that must both be in S3's key order (UTF-8 byte order of the
whole key, which is Python's ``str`` order: ``a-b`` sorts before ``a/b``). A local walk
is not in that order, and SeaweedFS pages in directory-walk order; so every listing
passes through here. Up to ``SPILL_AT`` entries are sorted in memory (every listing
most users have); beyond, sorted runs of that many are written to a temporary
directory and merged back, as s5cmd's external sort does, so a million-key listing
holds one run in memory, not the whole listing.
"""

from __future__ import annotations

import heapq
import pickle
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO, Any

from ..errors import LocalIOError
from .base import Entry

SPILL_AT = 100_000
"""Entries sorted in memory before a run goes to disk (~30 MB of entries)."""
CHUNK = 2_000
"""Entries per pickled block of a run: a run is read back one block at a time."""


def _key(entry: Entry) -> str:
    return entry.path


async def in_key_order(entries: AsyncIterator[Entry], spill_at: int | None = None) -> AsyncIterator[Entry]:
    """``entries`` sorted by path, whatever order they come in (runs of ``spill_at``,
    default SPILL_AT, go to disk)."""
    spill_at = spill_at or SPILL_AT
    batch: list[Entry] = []
    runs: list[Path] = []
    scratch: Path | None = None
    try:
        async for entry in entries:
            batch.append(entry)
            if len(batch) >= spill_at:
                if scratch is None:
                    scratch = Path(tempfile.mkdtemp(prefix="runctl-sort-"))
                runs.append(_spill(batch, scratch / f"run{len(runs)}"))
                batch = []
        batch.sort(key=_key)
        if not runs:
            for entry in batch:
                yield entry
            return
        files = [open(run, "rb") for run in runs]  # noqa: SIM115 - closed in finally
        try:
            for entry in heapq.merge(*(_read(f) for f in files), iter(batch), key=_key):
                yield entry
        finally:
            for f in files:
                f.close()
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _spill(batch: list[Entry], path: Path) -> Path:
    batch.sort(key=_key)
    try:
        with open(path, "wb") as f:
            for i in range(0, len(batch), CHUNK):
                # As tuples: pickling the frozen dataclass itself is ~6x slower.
                rows = [
                    (e.path, e.size, e.mtime, e.etag, e.kind, e.mode, e.link, e.ctime)
                    for e in batch[i : i + CHUNK]
                ]
                pickle.dump(rows, f, protocol=pickle.HIGHEST_PROTOCOL)
    except OSError as exc:
        raise LocalIOError(
            f"cannot write the listing's sort file {path}: {exc.strerror or exc}",
            "A listing of more than 100,000 keys is sorted through the temporary directory: "
            "free space there, or point TMPDIR at a disk with room.",
        ) from exc
    return path


def _read(f: IO[bytes]) -> Iterator[Entry]:
    while True:
        try:
            rows: list[tuple[Any, ...]] = pickle.load(f)  # our own file, written above
        except EOFError:
            return
        for row in rows:
            yield Entry(*row)
