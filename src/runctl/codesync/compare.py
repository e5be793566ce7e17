"""The change test for code pushes: kinds, symlink targets, exec bits, size and mtime,
and a content hash for large files whose mtime alone changed.

A branch switch or ``touch`` changes mtimes, not content. Resending a small file costs
less than asking, but a 20 MB checkpoint or dataset shard should be hashed on both
sides first; remote digests are asked for in batches (one command per batch).
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from ..engine.compare import UNSURE, SizeAndMtime
from ..stores.base import Entry, Store
from ..stores.ssh import SSHStore

HASH_MIN = 256 * 1024
"""Files at least this big are hashed before being resent for an mtime-only change."""


class CodeCompare(SizeAndMtime):
    name = "code"

    def __init__(self, src: Store, dst: SSHStore, hash_min: int = HASH_MIN) -> None:
        super().__init__(src, dst)
        self.remote = dst
        self.hash_min = hash_min
        self.touch: list[tuple[str, float]] = []
        """Files whose content matched: set their remote mtime so the next push skips them."""
        self._pending: list[tuple[str, asyncio.Future[tuple[str, str | None]]]] = []
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
        reason = super().quick(s, d)
        if reason == "mtime differs" and s.size >= self.hash_min and self.src.local_file(s.path):
            return UNSURE
        return reason

    async def resolve(self, s: Entry, d: Entry) -> str | None:
        local = self.src.local_file(s.path)
        assert local is not None
        # Hash here while the remote hashes there: guess its algorithm from its tools.
        guess = "sha256" if {"sha256sum", "shasum"} & self.remote.tools else "md5"
        hashing = asyncio.ensure_future(asyncio.to_thread(_digest, local, guess))
        try:
            algo, remote = await self._remote_digest(d.path)
        finally:
            ours = await hashing
        if remote is None or algo not in ("sha256", "md5"):
            return "mtime differs"  # cannot tell: resend, as without hashing
        mine = ours if algo == guess else await asyncio.to_thread(_digest, local, algo)
        if mine != remote:
            return "content differs"
        self.touch.append((s.path, s.mtime))
        return None

    async def _remote_digest(self, path: str) -> tuple[str, str | None]:
        future: asyncio.Future[tuple[str, str | None]] = asyncio.get_running_loop().create_future()
        self._pending.append((path, future))
        if len(self._pending) == 1:
            # Flush after the other checks started in this turn have queued theirs.
            asyncio.get_running_loop().call_soon(self._start_flush)
        return await future

    def _start_flush(self) -> None:
        task = asyncio.ensure_future(self._flush())
        self._flushes.add(task)  # keep a reference until it finishes
        task.add_done_callback(self._flushes.discard)

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        try:
            algo, digests = await self.remote.hashes([p for p, _ in batch])
        except BaseException as exc:
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), digest in zip(batch, digests, strict=True):
            future.set_result((algo, digest))


def _digest(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
