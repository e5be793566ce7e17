"""Change tests for sync: one small object per strategy.

``quick`` decides from the two listings alone when it can (the common, free case);
it returns UNSURE when only a request or a hash can tell, and ``resolve`` is then
awaited (the planner runs those with bounded concurrency).
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Final

from ..stores.base import Entry, Store

UNSURE: Final = "?"
MTIME_TOLERANCE = 2e-3
SKEW = 2.0
"""LastModified has whole seconds; allow one more for clock skew between server and us."""
"""Recorded mtimes round-trip through a decimal string and os.utime; allow a little slack."""


class Compare:
    """Base strategy: size alone (``--size-only``)."""

    name = "size-only"

    def __init__(self, src: Store, dst: Store) -> None:
        self.src = src
        self.dst = dst

    def quick(self, s: Entry, d: Entry) -> str | None:
        """A reason to copy, None if unchanged, or UNSURE."""
        return "size differs" if s.size != d.size else None

    async def resolve(self, s: Entry, d: Entry) -> str | None:
        return None


class SizeAndMtime(Compare):
    """Default: size, then mtime at the precision both sides have.

    * Both listings carry real mtimes (local, SSH): compare them.
    * Local -> S3: the listing has LastModified (upload time); copy when the local
      file is newer than the object, as ``aws s3 sync`` and s5cmd do.
    * S3 -> local: a local mtime exactly equal to LastModified was set by a download
      of an object without a recorded mtime: unchanged. A local file whose mtime was
      set into the past (mtime well before ctime, as a download leaves it) and that was
      written at least ``SKEW`` after the object's LastModified holds that version of
      the object: unchanged, with no request. Otherwise ask for the mtime recorded at
      upload (one HEAD) and compare exactly. The ctime rule keeps a no-op download
      sync of 100,000 keys from costing 100,000 HEADs; it trusts the server's clock
      to within ``SKEW`` seconds of ours.
    """

    name = "size-and-mtime"

    def quick(self, s: Entry, d: Entry) -> str | None:
        if s.size != d.size:
            return "size differs"
        src_exact, dst_exact = self.src.listing_mtime_is_source, self.dst.listing_mtime_is_source
        slack = max(self.src.mtime_precision, self.dst.mtime_precision)
        if src_exact and dst_exact:
            return "mtime differs" if abs(s.mtime - d.mtime) > slack else None
        if src_exact:
            return "source is newer" if s.mtime > d.mtime + slack else None
        if s.mtime == d.mtime:
            return None
        if d.ctime is not None and d.mtime < d.ctime - slack and s.mtime + SKEW <= d.ctime:
            return None
        return UNSURE

    async def resolve(self, s: Entry, d: Entry) -> str | None:
        recorded = await self.src.source_mtime(s.path)
        if recorded is None:
            return "source is newer" if s.mtime > d.mtime + self.src.mtime_precision else None
        return "mtime differs" if abs(recorded - d.mtime) > MTIME_TOLERANCE else None


class Checksum(Compare):
    """``--checksum``: compare content. S3 ETags are MD5s for single-part objects and
    MD5-of-part-MD5s ("…-N") for multipart ones; the local side is hashed to match."""

    name = "checksum"

    def __init__(self, src: Store, dst: Store, part_size: int) -> None:
        super().__init__(src, dst)
        self.part_size = part_size

    def quick(self, s: Entry, d: Entry) -> str | None:
        return "size differs" if s.size != d.size else UNSURE

    async def resolve(self, s: Entry, d: Entry) -> str | None:
        left = await self._digest(self.src, s, d)
        right = await self._digest(self.dst, d, s)
        if left is None or right is None:
            return "content cannot be compared"
        return "content differs" if left != right else None

    async def _digest(self, store: Store, e: Entry, other: Entry) -> str | None:
        """A digest of ``e`` in the form the other side can produce too."""
        local = store.local_file(e.path)
        if local is None:
            return (e.etag or "").strip('"') or None
        other_etag = (other.etag or "").strip('"')
        parts = 0
        if "-" in other_etag:
            parts = int(other_etag.rsplit("-", 1)[1] or 0)
        from ..stores.s3 import part_size_for  # lazily: code push never loads the S3 stack

        part = part_size_for(e.size, self.part_size)
        return await asyncio.to_thread(_file_md5, str(local), part if parts else 0, parts)


def _file_md5(path: str, part: int, parts: int) -> str:
    """MD5 hex of a file; with ``part`` > 0, the S3 multipart form ``md5(md5s)-N``."""
    whole = hashlib.md5(usedforsecurity=False)
    digests: list[bytes] = []
    current = hashlib.md5(usedforsecurity=False)
    filled = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            if not part:
                whole.update(chunk)
                continue
            view = memoryview(chunk)
            while view:
                take = min(len(view), part - filled)
                current.update(view[:take])
                filled += take
                view = view[take:]
                if filled == part:
                    digests.append(current.digest())
                    current, filled = hashlib.md5(usedforsecurity=False), 0
    if not part:
        return whole.hexdigest()
    if filled:
        digests.append(current.digest())
    if len(digests) != parts:
        return "different-part-count"
    return hashlib.md5(b"".join(digests), usedforsecurity=False).hexdigest() + f"-{len(digests)}"
