"""Change tests for sync: one small object per strategy.

``quick`` decides from the two listings alone when it can (the common, free case);
it returns UNSURE when only a request or a hash can tell, and ``resolve`` is then
awaited (the planner runs those with bounded concurrency).
"""

from __future__ import annotations

from typing import Final

from ..digests import PREFERRED, DigestSpec
from ..stores.base import Entry, Store

UNSURE: Final = "?"
SAME_CONTENT: Final = "="
"""From ``resolve``: the content matched, only the mtime differs. The planner records a
touch (set the destination's mtime) so the next run decides from the listings alone."""
MTIME_TOLERANCE = 2e-3
"""Recorded mtimes round-trip through a decimal string and os.utime; allow a little slack."""
SKEW = 2.0
"""LastModified has whole seconds; allow one more for clock skew between server and us."""


class Compare:
    """Base strategy: size alone (``--size-only``)."""

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
    """``--checksum``: compare content, through digests the stores report or compute.

    Free digests come first: when one listing carries one (S3's ETag), the other side
    is asked for a digest of that same spec (a local file is hashed to match, even as a
    multipart ETag). Otherwise both sides compute the strongest kind they share."""

    def quick(self, s: Entry, d: Entry) -> str | None:
        return "size differs" if s.size != d.size else UNSURE

    async def resolve(self, s: Entry, d: Entry) -> str | None:
        left, right = await self._digests(s, d)
        if left is None or right is None:
            return "content cannot be compared"
        return "content differs" if left != right else None

    async def _digests(self, s: Entry, d: Entry) -> tuple[str | None, str | None]:
        """The two files' digests in one spec, or Nones when the stores share none."""
        listed_s, listed_d = self.src.listed_digest(s), self.dst.listed_digest(d)
        if listed_s is not None and listed_d is not None and listed_s[0] == listed_d[0]:
            return listed_s[1], listed_d[1]
        if listed_s is not None and listed_s[0].kind in self.dst.digests:
            return listed_s[1], await self.dst.digest(d, listed_s[0])
        if listed_d is not None and listed_d[0].kind in self.src.digests:
            return await self.src.digest(s, listed_d[0]), listed_d[1]
        if listed_s is not None or listed_d is not None:
            return None, None  # one side's digest is all it has, and the other cannot match it
        shared = self.src.digests & self.dst.digests
        for kind in PREFERRED:
            if kind in shared:
                spec = DigestSpec(kind)
                return await self.src.digest(s, spec), await self.dst.digest(d, spec)
        return None, None


class Always(Compare):
    """Every file is copied, changed or not (code push ``--mode full``: the whole tree is
    rebuilt aside and swapped in)."""

    def quick(self, s: Entry, d: Entry) -> str | None:
        return "full"
