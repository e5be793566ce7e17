"""A no-change push remembered: the same inputs are not planned twice.

A no-change push of 60,000 files spent ~100 ms of its ~650 reading the kept records,
unpacking and parsing the listing and planning, only to find again that nothing was to
be done. The plan is a pure function of its inputs: the selected entries, the listing's
records and header (lister, tools, BusyBox tar), the push's options, and the remote's
clock bound (``RemoteTree.clock_ahead``: the racy-file guard of codesync.compare grows
with it, and only a larger guard can distrust a pair it trusted). A memo keeps, for one
push whose plan had nothing to do, digests of all of them and the largest clock bound
under which that plan was still empty. A push whose inputs have the same digests and
whose clock bound is no larger gets that empty plan without planning; every other push
plans as before. Nothing is guessed: a digest is of the exact bytes (the listing as it
came, still packed) and entries (every field), and the remote is listed on every push.

Only incremental pushes without ``--delete`` are remembered: with ``--delete`` the rules
that protect remote-only paths (``.git/info/exclude``, say) decide the plan too, and not
all of them are in the selection. Kept beside the listing records (stores.record_cache),
one small file per destination.
"""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import sys
from collections.abc import Sequence
from operator import attrgetter
from typing import NamedTuple

from .. import __version__
from ..engine.plan import Plan
from ..stores.base import Entry
from ..stores.record_cache import destination_file, read_checked, write_checked

_TAG = f"runctl-plan-memo 1 {__version__} py{sys.version_info[0]}.{sys.version_info[1]}"
_VOLATILE = (b"sent=", b"now=")
"""Header words that differ on every listing: the clock bound is checked apart."""
_SIZE, _MTIME = attrgetter("size"), attrgetter("mtime")


class Memo(NamedTuple):
    remote: bytes
    """Digest of the options and the listing (header less its clock words, records)."""
    entries: int
    size_sum: int
    mtime_sum: float
    """A cheap first look at the selection: an edited file changes it."""
    local: bytes
    """Digest of every field of every selected entry."""
    ahead_max: float
    skips: int
    skip_bytes: int


def remote_digest(options: str, raw: bytes) -> bytes:
    """Of the push's options and a listing as it came (records still packed)."""
    header, _, body = raw.partition(b"\n")
    words = b" ".join(w for w in header.split() if not w.startswith(_VOLATILE))
    digest = hashlib.sha256(options.encode("utf-8", "surrogateescape") + b"\n" + words + b"\n")
    digest.update(body)
    return digest.digest()


def local_sums(entries: Sequence[Entry]) -> tuple[int, int, float]:
    return len(entries), sum(map(_SIZE, entries)), sum(map(_MTIME, entries))


def local_digest(entries: Sequence[Entry]) -> bytes:
    # marshal version 2: floats in binary, and no table of shared objects (version 4's
    # cost 2.5x as much). ~20 ms at 60,000 entries.
    return hashlib.sha256(marshal.dumps(tuple(zip(*entries, strict=True)), 2)).digest()


class PlanMemo:
    """The memo of one destination (``url``: the remote tree's address)."""

    def __init__(self, url: str) -> None:
        self.path = destination_file("plans", url)
        self.memo: Memo | None = None
        if self.path is not None and (body := read_checked(self.path)) is not None:
            try:
                tag, *fields = marshal.loads(body)
                if tag == _TAG:
                    self.memo = Memo(*fields)
            except (EOFError, ValueError, TypeError):
                pass

    def remote_matches(self, remote: bytes) -> bool:
        return self.memo is not None and self.memo.remote == remote

    def recall(self, remote: bytes, entries: Sequence[Entry], ahead: float | None) -> Plan | None:
        """The empty plan these inputs were planned into before, or None."""
        memo = self.memo
        if memo is None or memo.remote != remote or ahead is None or ahead > memo.ahead_max:
            return None
        if local_sums(entries) != (memo.entries, memo.size_sum, memo.mtime_sum):
            return None
        if local_digest(entries) != memo.local:
            return None
        plan = Plan(record_skips=False)
        plan.unrecorded_skips, plan.unrecorded_skip_bytes = memo.skips, memo.skip_bytes
        return plan

    def keep(self, remote: bytes, entries: Sequence[Entry], ahead_max: float, plan: Plan) -> None:
        """Remember an empty plan (nothing but counted skips) made from these inputs."""
        if self.path is None or plan.actions or plan.warnings:
            return
        memo = Memo(
            remote,
            *local_sums(entries),
            local_digest(entries),
            ahead_max,
            plan.unrecorded_skips,
            plan.unrecorded_skip_bytes,
        )
        write_checked(self.path, marshal.dumps((_TAG, *memo), 2))
        self.memo = memo

    def forget(self) -> None:
        """Drop the memo (a push that had something to do): a push with no memo reads the
        kept records at once, which is what an edit push wants."""
        if self.memo is not None and self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
        self.memo = None
