"""Content digests that stores can report or compute, so ``--checksum`` can compare
a file on one store with a file on another without knowing either store.

A ``DigestSpec`` says *what* a digest is (its kind and parameters); two digests can be
compared only when their specs are equal. Stores declare which kinds they can compute
(``Store.digests``) and which one their listing already carries (``Store.listed_digest``,
S3's ETag). Kinds:

* ``md5``, ``sha256``: the hex digest of the whole file (a remote tree store could
  produce these with ``md5sum`` / ``sha256sum`` on its side);
* ``s3-etag``: S3's multipart ETag, ``md5(part md5s)-N`` for ``part_size``-byte parts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

MD5 = "md5"
SHA256 = "sha256"
S3_ETAG = "s3-etag"

PREFERRED = (SHA256, MD5)
"""Whole-file kinds, strongest first: used when neither listing carries a digest."""


@dataclass(frozen=True, slots=True)
class DigestSpec:
    kind: str
    part_size: int = 0
    """``s3-etag`` only: the part size the object was (or would be) uploaded with."""


def file_digest(path: str, spec: DigestSpec) -> str | None:
    """The digest ``spec`` of a local file (hex), or None for a kind this cannot compute.

    Reads the file once, 1 MiB at a time. An ``s3-etag`` whose part count differs from
    the object's differs from its ETag too (the ``-N`` suffix), so no count is needed.
    """
    if spec.kind in (MD5, SHA256):
        whole = hashlib.new(spec.kind, usedforsecurity=False)
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                whole.update(chunk)
        return whole.hexdigest()
    if spec.kind != S3_ETAG or spec.part_size <= 0:
        return None
    part = spec.part_size
    digests: list[bytes] = []
    current = hashlib.md5(usedforsecurity=False)
    filled = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            view = memoryview(chunk)
            while view:
                take = min(len(view), part - filled)
                current.update(view[:take])
                filled += take
                view = view[take:]
                if filled == part:
                    digests.append(current.digest())
                    current, filled = hashlib.md5(usedforsecurity=False), 0
    if filled or not digests:
        digests.append(current.digest())
    return hashlib.md5(b"".join(digests), usedforsecurity=False).hexdigest() + f"-{len(digests)}"
