"""Verified transfers: the digest a source vouches for, checked against the bytes moved.

A download compares what it wrote with what the object says it holds, before the
temporary file takes its final name; an upload compares what it sent with the ETag the
server answers. The digests themselves are runctl.digests' (the same code ``--checksum``
uses); this module says which one applies and computes it while the bytes move:

* ``PartDigests``: an S3 multipart ETag, ``md5(part md5s)-N``, of a file written as
  parallel ranges that each hold whole parts: every range hashes its own parts, in the
  thread that writes them (hashlib releases the GIL), so the ranges hash side by side.
* ``RangeCRCs``: a CRC-32C (the digest runctl records at multipart upload) of a file
  written in pieces in any order: each run of adjacent pieces keeps its own CRC, in the
  thread that writes it, and the runs' CRCs are combined at the end, with no read-back.
* ``InOrder``: any digest of a file written in parallel ranges (or one stream), in file
  order: bytes written at the hashed frontier are hashed as they are written; ranges that
  finish ahead of it are read back (from the page cache) once the frontier reaches them.

False alarms are worse than no check: an ETag only *looks* like an MD5 under SSE-KMS and
SSE-C, and a multipart ETag is ``md5(part md5s)-N`` for the uploader's part size, which
runctl can only assume. So a mismatch against an ETag is first re-checked with one HEAD
(``etag_vouches``); a digest runctl recorded in metadata at upload needs no such check.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from .crcs import CRC32C, KNOWN, Crc
from .digests import (
    MD5,
    S3_ETAG,
    DigestSpec,
    StreamHasher,
    etag_of_parts,
    parts_for,
)
from .errors import IntegrityError

T = TypeVar("T")
READ_BACK = 1 << 20
"""Read-back size when a range is hashed from the file (it is in the page cache)."""


@dataclass(frozen=True)
class Expected:
    """A digest a source vouches for: what it is, its value, and where it came from."""

    spec: DigestSpec
    value: str
    source: str
    """For messages: "recorded MD5" (object metadata) or "ETag"."""
    recheck: Callable[[], Awaitable[bool]] | None = None
    """Asked once, on a mismatch: False when the value turns out not to be a digest of
    the content (an SSE-KMS ETag, another part size): then it is no error. None: the
    value is known to be a digest (recorded by runctl), a mismatch is corruption."""


@dataclass
class Tally:
    """What was checked, for the curious (cheap counters, no output of their own)."""

    verified: int = 0
    unverified: int = 0
    """Transfers with no usable digest (no ETag of a known form, another part layout)."""
    disowned: int = 0
    """Mismatches against an ETag that a HEAD showed was no digest (SSE-KMS, SSE-C)."""
    resumed: int = 0
    """Multipart uploads completed from the verified parts an earlier run left (s3_resume)."""
    resumed_bytes: int = 0
    """Bytes of those parts, not sent again."""


class WriteHasher(Protocol):
    """Hashes a file as it is written at (offset, bytes) pieces, from writer threads."""

    def written(self, fd: int, data: bytes | memoryview, offset: int) -> None:
        """``data`` was just written at ``offset`` (called in the writing thread)."""

    def result(self, fd: int, size: int) -> str:
        """The digest of the file's ``size`` bytes, once every write has returned. ``fd``
        must be readable: bytes not hashed as written are read back."""


class PartDigests:
    """``md5(part md5s)-N`` of a file written as ranges that start on part boundaries.

    Each range's pieces arrive in order, so its state is keyed by the offset its next
    piece will have; parts are hashed by whichever thread writes them."""

    def __init__(self, size: int, part_size: int) -> None:
        self._part = part_size
        self._md5s: list[bytes | None] = [None] * parts_for(size, part_size)
        self._open: dict[int, tuple[int, Any, int]] = {}
        """next offset -> (part index, its md5 so far, bytes in it so far)."""
        self._misaligned = False
        self._lock = threading.Lock()

    def written(self, fd: int, data: bytes | memoryview, offset: int) -> None:
        part = self._part
        with self._lock:
            state = self._open.pop(offset, None)
        if state is None:
            if offset % part:
                self._misaligned = True  # not a range this was built for: hash it all again
                return
            state = (offset // part, hashlib.md5(usedforsecurity=False), 0)
        index, md5, filled = state
        view = memoryview(data)
        while view:
            take = min(len(view), part - filled)
            md5.update(view[:take])
            filled += take
            view = view[take:]
            if filled == part:
                self._store(index, md5.digest())
                index, md5, filled = index + 1, hashlib.md5(usedforsecurity=False), 0
        if filled:
            with self._lock:
                self._open[offset + len(data)] = (index, md5, filled)

    def _store(self, index: int, digest: bytes) -> None:
        if index < len(self._md5s):
            self._md5s[index] = digest
        else:
            self._misaligned = True  # more bytes than the object has: read it back

    def result(self, fd: int, size: int) -> str:
        if self._misaligned:
            return read_back(fd, 0, size, StreamHasher(DigestSpec(S3_ETAG, self._part))).hexdigest()
        for index, md5, _ in self._open.values():  # a range's last, short part
            self._store(index, md5.digest())
        digests: list[bytes] = []
        for index, digest in enumerate(self._md5s):
            if digest is None:  # never written (a hole): what the file holds there
                start = index * self._part
                end = min(start + self._part, size)
                digest = read_back(fd, start, end, hashlib.md5(usedforsecurity=False)).digest()
            digests.append(digest)
        return etag_of_parts(digests)


class RangeCRCs:
    """A CRC (runctl.crcs) of a file written in pieces in any order (each range's in order).

    A piece written where a run ends extends that run; any other starts a new one. At the
    end the runs are combined in file order; what no run covers is read back."""

    def __init__(self, crc: Crc = KNOWN[CRC32C]) -> None:
        self.crc = crc
        self._runs: dict[int, tuple[int, int]] = {}
        """end offset -> (start offset, CRC of the bytes between)."""
        self._lock = threading.Lock()

    def written(self, fd: int, data: bytes | memoryview, offset: int) -> None:
        with self._lock:
            start, crc = self._runs.pop(offset, (offset, 0))
        crc = self.crc.update(data, crc)  # crc32c releases the GIL: ranges hash side by side
        with self._lock:
            self._runs[offset + len(data)] = (start, crc)

    def add(self, start: int, end: int, crc: int) -> None:
        """Bytes ``start:end`` were written and their CRC taken by the caller (the
        download's resume journal keeps a CRC-32C per range): no second pass."""
        with self._lock:
            self._runs[end] = (start, crc)

    def result(self, fd: int, size: int) -> str:
        crc, pos, kind = 0, 0, self.crc
        for end, (start, run) in sorted(self._runs.items(), key=lambda item: item[1][0]):
            if start < pos or end > size:  # pieces written twice, or past the end: hash the file
                return read_back(fd, 0, size, StreamHasher(DigestSpec(kind.kind))).hexdigest()
            if start > pos:  # a hole no piece filled: what the file holds there
                crc = kind.combine(crc, self._crc_of(fd, pos, start), start - pos)
            crc, pos = kind.combine(crc, run, end - start), end
        if pos < size:
            crc = kind.combine(crc, self._crc_of(fd, pos, size), size - pos)
        return kind.hex(crc)

    def _crc_of(self, fd: int, start: int, end: int) -> int:
        crc = 0
        while start < end:
            data = os.pread(fd, min(READ_BACK, end - start), start)
            if not data:
                break
            crc = self.crc.update(data, crc)
            start += len(data)
        return crc


class InOrder:
    """Any ``StreamHasher`` digest of a file written in pieces in any order."""

    def __init__(self, spec: DigestSpec) -> None:
        self._hasher = StreamHasher(spec)
        self._pos = 0
        """Bytes hashed so far (the frontier)."""
        self._pending: dict[int, int] = {}
        """Written beyond the frontier: start -> end."""
        self._busy = False
        self._lock = threading.Lock()

    def written(self, fd: int, data: bytes | memoryview, offset: int) -> None:
        with self._lock:
            if self._busy or offset != self._pos:
                self._pending[offset] = offset + len(data)
                return
            self._busy = True  # this thread is the frontier's hasher until it runs dry
        self._hasher.update(data)
        step = len(data)
        while True:
            with self._lock:
                self._pos += step
                end = self._pending.pop(self._pos, None)
                if end is None:
                    self._busy = False
                    return
                start = self._pos
            read_back(fd, start, end, self._hasher)
            step = end - start

    def result(self, fd: int, size: int) -> str:
        # Every write has returned: what lies past the frontier is read back in order
        # (a gap, if a range came up short, is hashed as the file holds it).
        read_back(fd, self._pos, size, self._hasher)
        self._pos = size
        return self._hasher.hexdigest()


class _Updatable(Protocol):
    def update(self, data: bytes, /) -> None: ...


H = TypeVar("H", bound=_Updatable)


def read_back(fd: int, start: int, end: int, hasher: H) -> H:
    """Feed bytes ``start:end`` of the file ``fd`` to ``hasher``."""
    while start < end:
        data = os.pread(fd, min(READ_BACK, end - start), start)
        if not data:  # shorter than expected: the missing bytes are missing, not zeros
            break
        hasher.update(data)
        start += len(data)
    return hasher


def hasher_for(expected: Expected, size: int, range_size: int, sequential: bool) -> WriteHasher:
    """How to compute ``expected``'s digest of a ``size``-byte file written in ranges of
    ``range_size`` (or, ``sequential``, as one stream): part by part in parallel when the
    ranges hold whole parts, else in file order."""
    spec = expected.spec
    if spec.kind in KNOWN:
        return RangeCRCs(KNOWN[spec.kind])
    if spec.kind == S3_ETAG and not sequential and range_size % spec.part_size == 0:
        return PartDigests(size, spec.part_size)
    return InOrder(spec)


async def off_loop(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in the event loop's worker threads; inline once the interpreter is
    shutting down, when executors refuse new work (an upload in the background that
    finishes while the script exits, runctl.background) and hashing must still happen."""
    loop = asyncio.get_running_loop()
    try:
        future = loop.run_in_executor(None, fn, *args)
    except RuntimeError:  # "cannot schedule new futures after interpreter shutdown"
        return fn(*args)
    return await future


def digest_of(chunks: list[bytes], spec: DigestSpec) -> str:
    hasher = StreamHasher(spec)
    for chunk in chunks:
        hasher.update(chunk)
    return hasher.hexdigest()


KMS = frozenset({"aws:kms", "aws:kms:dsse"})


def etag_vouches(head: Mapping[str, Any], *, aws: bool, part_size: int | None) -> bool:
    """From a HEAD answer (botocore's ``head_object``; with ``PartNumber=1`` for a
    multipart ETag): whether the object's ETag is a digest of its content, in the layout
    assumed. Not under SSE-KMS or SSE-C (their ETags are not MD5s); off AWS, under no
    server-side encryption at all (other servers encrypt before they hash). A multipart
    ETag vouches only when the server confirms the first part is ``part_size`` bytes."""
    sse = head.get("ServerSideEncryption")
    if sse in KMS or head.get("SSECustomerAlgorithm") or (sse and not aws):
        return False
    if part_size is not None:
        return head.get("PartsCount") is not None and head.get("ContentLength") == part_size
    return True


def mismatch(
    what: str, spec: DigestSpec, actual: str, expected: Expected, *, upload: bool = False
) -> IntegrityError:
    """The error for bytes whose digest is not the one vouched for, naming both."""
    kind = {MD5: "MD5", S3_ETAG: "multipart ETag", CRC32C: "CRC-32C"}.get(spec.kind, spec.kind)
    if upload:
        return IntegrityError(
            f"{what}: the server's ETag {expected.value} is not the {kind} of the bytes sent "
            f"({actual}); the object may hold a damaged copy",
            "The upload is retried once; if it persists, check what sits between you and the server.",
        )
    return IntegrityError(
        f"{what}: the bytes received have {kind} {actual}, the object's {expected.source} is "
        f"{expected.value}; the damaged copy was discarded",
        "The download is retried once; if it persists, check what sits between you and the server "
        "(a proxy, the network) or whether the object is being rewritten.",
    )
