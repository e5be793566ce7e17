"""The change test for code pushes: kinds, symlink targets, exec bits, size and mtime,
and a content hash for large files whose mtime alone changed.

A branch switch or ``touch`` changes mtimes, not content. Resending a small file costs
less than asking, but a 20 MB checkpoint or dataset shard should be hashed on both
sides first; remote digests are asked for in batches (one command per batch).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from pathlib import Path

from ..engine.compare import SAME_CONTENT, UNSURE, Compare
from ..remote.scripts import SAMPLE_DIFFERS, pick_hasher
from ..stores.base import Entry, Store
from ..stores.remote_tree import RemoteTree, RemoteTreeStore

HASH_MIN = 256 * 1024
"""Files at least this big are hashed before being resent for an mtime-only change."""
SAMPLE = 64 * 1024
"""Bytes from each end of a file compared first: a rewritten file differs there, and
then neither side reads the rest (20 MB: ~60 ms of remote sha256sum saved)."""


class CodeCompare(Compare):
    """``tree``: the survey the plan is made from; it says the remote's mtime precision
    and which digest commands it has."""

    def __init__(self, src: Store, dst: RemoteTreeStore, tree: RemoteTree, hash_min: int = HASH_MIN) -> None:
        super().__init__(src, dst)
        self.remote = dst
        self.hasher = pick_hasher(tree.tools)
        self.slack = max(src.mtime_precision, tree.mtime_precision)
        self.hash_min = hash_min
        self._pending: list[tuple[str, str, asyncio.Future[str | None]]] = []
        self._flushes: set[asyncio.Task[None]] = set()

    def quick(self, s: Entry, d: Entry) -> str | None:
        if s.kind != d.kind:
            return "type changed"
        if s.kind == "dir":
            return None  # directory mtimes change with their contents: not a signal
        if s.kind == "symlink":
            return None if s.link == d.link else "link target differs"
        if s.mode is not None and d.mode is not None and (s.mode & 0o111) != (d.mode & 0o111):
            return "exec bit changed"
        if s.size != d.size:
            return "size differs"
        if abs(s.mtime - d.mtime) <= self.slack:
            return None
        if s.size >= self.hash_min and self.src.local_file(s.path):
            return UNSURE
        return "mtime differs"

    async def resolve(self, s: Entry, d: Entry) -> str | None:
        local = self.src.local_file(s.path)
        assert local is not None
        hasher = self.hasher
        if hasher is None:
            return "mtime differs"  # cannot tell: resend, as without hashing
        algo, command = hasher
        sample = await asyncio.to_thread(_sample_digest, local, algo, SAMPLE)
        # Hash the whole file here while the remote checks its sample (and, if that
        # matches, hashes its copy); stopped early when the sample already differs.
        stop = threading.Event()
        whole = asyncio.ensure_future(asyncio.to_thread(_digest, local, algo, stop))
        try:
            remote = await self._remote_digest(command, d.path, sample)
        except BaseException:
            _abandon(whole, stop)
            raise
        if remote == SAMPLE_DIFFERS or remote is None:
            _abandon(whole, stop)
            return "content differs" if remote == SAMPLE_DIFFERS else "mtime differs"
        if await whole != remote:
            return "content differs"
        return SAME_CONTENT

    async def _remote_digest(self, command: str, path: str, sample: str) -> str | None:
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._pending.append((path, sample, future))
        if len(self._pending) == 1:
            # Flush after the other checks started in this turn have queued theirs.
            asyncio.get_running_loop().call_soon(self._start_flush, command)
        return await future

    def _start_flush(self, command: str) -> None:
        task = asyncio.ensure_future(self._flush(command))
        self._flushes.add(task)  # keep a reference until it finishes
        task.add_done_callback(self._flushes.discard)

    async def _flush(self, command: str) -> None:
        batch, self._pending = self._pending, []
        try:
            digests = await self.remote.hashes(command, [(p, sample) for p, sample, _ in batch], SAMPLE)
        except BaseException as exc:
            for _, _, future in batch:
                future.set_exception(exc)
            return
        for (_, _, future), digest in zip(batch, digests, strict=True):
            future.set_result(digest)


def _sample_digest(path: Path, algo: str, sample: int) -> str:
    """Digest of the first and last ``sample`` bytes (all of a small file, twice), as
    ``scripts.hash_script`` computes it remotely."""
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        h.update(fh.read(sample))
        size = os.fstat(fh.fileno()).st_size
        fh.seek(max(0, size - sample))
        h.update(fh.read(sample))
    return h.hexdigest()


def _digest(path: Path, algo: str, stop: threading.Event) -> str | None:
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            if stop.is_set():
                return None
            h.update(chunk)
    return h.hexdigest()


def _abandon(whole: asyncio.Future[str | None], stop: threading.Event) -> None:
    """Stop a local hash whose result is no longer needed, and drop its result."""
    stop.set()
    whole.add_done_callback(lambda f: f.cancelled() or f.exception())  # never logged as unretrieved
