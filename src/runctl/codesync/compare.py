"""The change test for code pushes: kinds, symlink targets, exec bits, size and mtime,
a content hash for large files whose mtime alone changed, and for "racy" files.

A branch switch or ``touch`` changes mtimes, not content. Resending a small file costs
less than asking, but a 20 MB checkpoint or dataset shard should be hashed on both
sides first; remote digests are asked for in batches (one command per batch).

Racy files (git's "racily clean" entries): equal mtimes prove nothing when the remote
copy was written within the window in which its mtime cannot show a later edit. A
whole-second remote (BusyBox tar and touch, SFTP, perl without Time::HiRes) lists
``10`` for a copy of a file written at 10.2; an edit at 10.6 of the same size also
lists as "10". So a pair whose mtimes agree only at the remote's precision is trusted
only when the remote copy's ctime (on our clock, skew bounded from the listing's own
``date``) lies past the end of that window, plus ``WRITE_LAG``; otherwise its content
is compared (a digest on both sides, any size). A matching digest sets the remote
mtime again (a "touch"), which moves its ctime on: the file is trusted from the next
push that comes after the window. With no ctime or no skew bound, every such pair is
compared by content.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import threading
from collections.abc import Iterable
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
TICK = 0.01
"""Timestamps come from the kernel's coarse clock (one tick, up to 10 ms): two writes
within a tick leave the same nanosecond mtime."""
WRITE_LAG = 1.0
"""Seconds allowed between a push reading a file and the remote copy's last inode change
(tar writes it, mv renames it into place, touch sets its mtime). On a whole-second remote
an edit made in that gap, within the second of the previous edit, is invisible to
mtimes; a file the remote wrote this close to its window is compared by content."""


class CodeCompare(Compare):
    """``tree``: the survey the plan is made from; it says the remote's mtime precision,
    its clock skew bound and which digest commands it has."""

    def __init__(self, src: Store, dst: RemoteTreeStore, tree: RemoteTree, hash_min: int = HASH_MIN) -> None:
        super().__init__(src, dst)
        self.remote = dst
        self.hasher = pick_hasher(tree.tools)
        self.slack = max(src.mtime_precision, tree.mtime_precision)
        self.hash_min = hash_min
        # A pair whose mtimes agree is racy unless ``d.ctime - d.mtime >= guard``: the
        # copy was written (ctime, on our clock at the earliest) after the mtime window
        # ended. Windows: the slack (a tick at least), or a whole second.
        ahead = self.ahead = math.inf if tree.clock_ahead is None else tree.clock_ahead
        self.fine_guard = ahead + max(self.slack, TICK) + (WRITE_LAG if self.slack >= 1 else 0.0)
        self.coarse_guard = ahead + 1.0 + WRITE_LAG
        self._pending: list[tuple[str, str | None, asyncio.Future[str | None]]] = []
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
        diff = s.mtime - d.mtime
        if abs(diff) <= self.slack:
            guard = self.fine_guard
        elif 0.0 < diff < 1.0 and d.mtime % 1 == 0:
            guard = self.coarse_guard  # this copy kept whole seconds (BusyBox tar or touch, SFTP)
        elif s.size >= self.hash_min and self.src.local_file(s.path):
            return UNSURE
        else:
            return "mtime differs"
        if d.ctime is not None and d.ctime - d.mtime >= guard:
            return None
        # Racy: written too soon after its mtime for the mtime to show a later edit.
        if self.hasher is not None and self.src.local_file(s.path):
            return UNSURE
        return "mtime cannot tell"

    def trusted_up_to(self, remote: Iterable[Entry]) -> float:
        """The largest clock bound (``RemoteTree.clock_ahead``) under which every pair
        ``quick`` trusts now is still trusted (codesync.plan_memo). The bound enters
        ``quick`` only through the guards, as ``ahead + constant``, and a pair is trusted
        while its copy's ``ctime - mtime`` reaches its guard: so up to the smallest such
        gap less its guard's constant, and never less than the bound used now. A copy with
        a fractional mtime can only have met the fine guard; one with a whole-second mtime
        is held to the wider of the two."""
        fine = self.fine_guard - self.ahead
        widest = max(fine, self.coarse_guard - self.ahead)
        bound = math.inf
        for d in remote:
            if d.kind == "file" and d.ctime is not None:
                bound = min(bound, d.ctime - d.mtime - (fine if d.mtime % 1 else widest))
        return max(self.ahead, bound)

    async def resolve(self, s: Entry, d: Entry) -> str | None:
        local = self.src.local_file(s.path)
        assert local is not None
        hasher = self.hasher
        if hasher is None:
            return "mtime differs"  # cannot tell: resend, as without hashing
        algo, command = hasher
        if s.size <= 2 * SAMPLE:  # the two ends are the whole file: one digest each side
            mine = await asyncio.to_thread(_digest, local, algo, threading.Event())
            theirs = await self._remote_digest(command, d.path, None)
            if theirs is None:
                return "content cannot be compared"
            return SAME_CONTENT if mine == theirs else "content differs"
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

    async def _remote_digest(self, command: str, path: str, sample: str | None) -> str | None:
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
