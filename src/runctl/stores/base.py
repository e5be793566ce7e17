"""The one small interface every store implements: local disk, S3, and (later) SSH.

Paths inside a store are relative, "/"-separated strings. A store is rooted at a
directory (local), a bucket + prefix (S3) or a remote directory (SSH); the copy
engine only ever speaks relative paths, so upload, download and sync are the same
algorithm between two stores.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ProgressFn = Callable[[int], None]
EntryKind = Literal["file", "dir", "symlink"]


@dataclass(frozen=True, slots=True)
class Entry:
    """One file as a store lists it."""

    path: str
    size: int
    mtime: float
    """Seconds since the epoch. For S3 listings this is LastModified."""
    etag: str | None = None
    kind: EntryKind = "file"
    """Stores that keep trees (code sync) also list symlinks and directories; S3 lists files only."""
    mode: int | None = None
    """Permission bits (e.g. 0o755) when the store knows them."""
    link: str | None = None
    """Symlink target, for ``kind == "symlink"``."""
    ctime: float | None = None
    """Local files: when the inode last changed (a download's write + rename sets it)."""


class Reader(ABC):
    """An open read of one file (or one byte range of it)."""

    size: int
    """Size of the whole file, not of the range."""
    mtime: float | None
    """The mtime the source recorded for this file (S3 metadata or local stat), if known."""

    @abstractmethod
    def chunks(self) -> AsyncIterator[bytes]:
        """Yield the bytes of the requested range, in order."""


class Store(ABC):
    """A place files live. Subclasses say how to list, read, write and delete."""

    url: str
    """Where this store points, for messages (e.g. ``s3://bucket/prefix/``)."""

    mtime_precision: float = 1.0
    """Smallest mtime difference this store can represent, in seconds."""

    listing_mtime_is_source: bool = True
    """True when ``Entry.mtime`` from a listing is the file's own mtime. False for S3,
    whose listings give LastModified (upload time); the source mtime sits in metadata."""

    @abstractmethod
    def list(self) -> AsyncIterator[Entry]:
        """Yield every file under the store's root, sorted by path."""

    @abstractmethod
    async def stat(self, path: str) -> Entry | None:
        """Return the entry for ``path``, or None if it does not exist."""

    @abstractmethod
    async def open(self, path: str, offset: int = 0, length: int | None = None) -> Reader:
        """Open ``path`` for reading, optionally one byte range of it."""

    async def source_mtime(self, path: str) -> float | None:
        """The file's own mtime, possibly at the cost of a request (S3: a HEAD)."""
        entry = await self.stat(path)
        return entry.mtime if entry else None

    def local_file(self, path: str) -> Path | None:
        """The file on local disk behind ``path``, when there is one (lets writers stream it)."""
        return None

    @abstractmethod
    async def write(self, path: str, src: Store, entry: Entry, progress: ProgressFn) -> None:
        """Copy ``entry`` from ``src`` to ``path`` in this store, atomically.

        Nothing appears at ``path`` until the whole file is there. The source's mtime
        is preserved (S3: as object metadata). ``progress`` is called with byte counts.
        """

    @abstractmethod
    async def delete(self, paths: Iterable[str]) -> None:
        """Delete files (missing ones are not an error)."""

    batch_writes: bool = False
    """True when the store prefers one ``write_batch`` call over many ``write`` calls
    (SSH: one tar stream instead of a round trip per file)."""

    async def write_batch(
        self,
        entries: Sequence[Entry],
        src: Store,
        on_bytes: Callable[[str, int], None],
        on_done: Callable[[str], None],
    ) -> None:
        """Copy many entries from ``src`` in one go; only called when ``batch_writes``."""
        raise NotImplementedError

    async def close(self) -> None:
        """Release connections. Stores are also usable as async context managers."""
        return None

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
