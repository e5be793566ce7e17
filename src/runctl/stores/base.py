"""The one small interface every store implements: local disk, S3, and (later) SSH.

Paths inside a store are relative, "/"-separated strings. A store is rooted at a
directory (local), a bucket + prefix (S3) or a remote directory (SSH); the copy
engine only ever speaks relative paths, so upload, download and sync are the same
algorithm between two stores.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple

if TYPE_CHECKING:
    from ..digests import DigestSpec
    from ..engine.execute import ExecOptions, PlanSession
    from ..integrity import Expected, Tally

ProgressFn = Callable[[int], None]
EntryKind = Literal["file", "dir", "symlink"]


class Entry(NamedTuple):
    """One file as a store lists it. A NamedTuple, not a frozen dataclass: a push of
    60,000 files makes 120,000 of them, and a frozen dataclass's __init__ (one
    ``object.__setattr__`` per field) cost 2.5x as much, 0.15 s of such a push."""

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
    whole: bool = False
    """True when the source ignored the byte range asked for and this reader yields the
    whole file from byte 0 (some S3-compatible servers answer a ranged GET with 200 and
    the whole body): a reader of ranges then takes the file from this one stream."""
    version: str | None = None
    """Which version of the file this is (S3: the ETag): later ranges are asked for this
    one version, and a download kept for resuming resumes only while it is unchanged."""
    expected: Expected | None = None
    """The digest the source vouches for the whole file (S3: one recorded in metadata at
    upload, else the ETag), for the writer to check before the file takes its name."""

    @abstractmethod
    def chunks(self) -> AsyncIterator[bytes]:
        """Yield the bytes of the requested range, in order."""


class Store(ABC):
    """A place files live. Subclasses say how to list, read, write and delete."""

    url: str
    """Where this store points, for messages (e.g. ``s3://bucket/prefix/``)."""

    mtime_precision: float = 1.0
    """Smallest mtime difference this store can represent, in seconds."""

    lists_directories: bool = False
    """True for stores that keep trees (a remote tree for code push): their listings
    carry directories and symlinks too, not only files."""

    lists_safe_paths: bool = False
    """True when every path this store lists is a safe relative one (``safe_relpath``):
    names read from a local filesystem are. An S3 key may be ``../../etc/passwd``, so the
    planner tests each path it cannot vouch for (0.3 us a path: 60,000 of them in a push)."""

    listing_mtime_is_source: bool = True
    """True when ``Entry.mtime`` from a listing is the file's own mtime. False for S3,
    whose listings give LastModified (upload time); the source mtime sits in metadata."""

    item_field: str = "path"
    """How housekeeping output names an entry: "key" for S3, "path" for files."""
    display_prefix: str = ""
    """Prepended to an entry's relative path in output (the S3 prefix, the local root)."""

    files_in_flight: int = 16
    """Transfers to run at once when the user did not say (--concurrency): the larger of
    the two stores' numbers applies. Local disk gains little past a few dozen; S3, where
    each small request waits tens of milliseconds, wants hundreds."""

    tally: Tally | None = None
    """What this store checked or resumed as a destination (runctl.integrity), if it counts."""
    digests: frozenset[str] = frozenset()
    """Digest kinds (runctl.digests) ``digest`` can compute for any file of this store."""

    @abstractmethod
    def list(self) -> AsyncIterator[Entry]:
        """Yield every file under the store's root, sorted by path."""

    @abstractmethod
    async def stat(self, path: str) -> Entry | None:
        """Return the entry for ``path``, or None if it does not exist."""

    @abstractmethod
    async def open(
        self, path: str, offset: int = 0, length: int | None = None, version: str | None = None
    ) -> Reader:
        """Open ``path`` for reading, optionally one byte range of it; with ``version`` (a
        ``Reader.version``), only while it is that version (a store that keeps versions
        raises ObjectChangedError otherwise; others ignore it)."""

    async def source_mtime(self, path: str) -> float | None:
        """The file's own mtime, possibly at the cost of a request (S3: a HEAD)."""
        entry = await self.stat(path)
        return entry.mtime if entry else None

    def listed_digest(self, entry: Entry) -> tuple[DigestSpec, str] | None:
        """A digest the listing already carries, free of charge (S3: the ETag), and what it is."""
        return None

    async def digest(self, entry: Entry, spec: DigestSpec) -> str | None:
        """Compute the digest ``spec`` of ``entry`` (a kind in ``digests``), else None."""
        return None

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

    def open_session(self, opts: ExecOptions) -> PlanSession:
        """How this store carries out a plan: by default the engine's pool of per-file
        workers (``write``/``delete``); a store that can run a whole plan at once (a
        remote tree: one script, one tar stream) returns its own session."""
        from ..engine.execute import PoolSession  # the engine imports this module

        return PoolSession(self, opts)

    async def set_mtimes(self, items: Sequence[tuple[str, float]]) -> None:
        """Set the mtimes of files whose content already matches (plans' touch actions,
        made only for stores that keep source mtimes in their listings)."""
        raise NotImplementedError(f"{self.url} cannot set mtimes")

    async def close(self) -> None:
        """Release connections. Stores are also usable as async context managers."""
        return None

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
