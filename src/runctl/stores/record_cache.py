"""Listing records parsed by earlier pushes, kept on disk between runs.

A no-change push of 60,000 files spent ~90 ms of its ~650 parsing a listing that was,
record for record, the one it had parsed the time before. A record's entry is a pure
function of the record's bytes (``remote_tree.parse_known`` makes the same entry from
the same bytes every time), so the entry kept under a record's exact bytes is the one
a parse would make: nothing is guessed. The remote is still listed on every push, and
a file that changed there lists as a record never seen, which is parsed as before.
Symlink records (the target is a field of its own) and leftovers are never kept.

One file per destination (``$RUNCTL_CACHE_DIR``, else ``$XDG_CACHE_HOME/runctl``, else
``~/.cache/runctl``; ``RUNCTL_CACHE_DIR=`` turns it off), private to the user (it names
the remote's files), written whole and renamed into place, with a CRC of its contents:
a file that does not check out is ignored, never half-trusted.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import marshal
import os
import secrets
import sys
import zlib
from pathlib import Path

from ..config_file import cache_home
from .base import Entry

Known = dict[bytes, Entry]
"""A listing record (its first field, as listed) -> the entry parsed from it."""

_TAG = f"runctl-records 1 py{sys.version_info[0]}.{sys.version_info[1]} {sys.getfilesystemencoding()}"
"""marshal's format and the path decoding may differ across Pythons: another tag, no use."""
REWRITE_AT = 64
"""New records in a listing before a kept file is rewritten (~30 ms at 60,000 files): a
push that changed ten files leaves it as it was, and those ten are parsed again next
time. With no usable file, one is written at once."""


def cache_root() -> Path | None:
    env = os.environ.get("RUNCTL_CACHE_DIR")
    if env is not None:
        return Path(env) if env else None
    return cache_home()


def destination_file(kind: str, url: str) -> Path | None:
    """Where what is kept about one destination (``url``) goes, under ``kind``; None
    when keeping is turned off."""
    root = cache_root()
    if root is None:
        return None
    return root / kind / hashlib.sha256(url.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def read_checked(path: Path) -> bytes | None:
    """The body of a file ``write_checked`` wrote, or None when it is missing or damaged."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    body = data[4:]
    if len(data) < 4 or zlib.crc32(body) != int.from_bytes(data[:4], "big"):
        return None
    return body


def write_checked(path: Path, body: bytes) -> None:
    """Replace ``path`` with ``body`` and its CRC, private to the user, whole or not at all
    (best effort: a cache that cannot be written is no error)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with open(fd, "wb") as fh:
                fh.write(zlib.crc32(body).to_bytes(4, "big") + body)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


class RecordCache:
    """The kept records of one destination (``url``: the remote tree's address)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def for_destination(cls, url: str) -> RecordCache | None:
        path = destination_file("listings", url)
        return None if path is None else cls(path)

    def load(self) -> Known:
        """The kept records, or none when the file is missing, damaged or of another kind."""
        body = read_checked(self.path)
        if body is None:
            return {}
        try:
            tag, keys, columns = marshal.loads(body)
            if tag != _TAG:
                return {}
            # Entry's own __new__ is a Python function: tuple.__new__ over zip runs in C.
            entries = map(tuple.__new__, itertools.repeat(Entry), zip(*columns, strict=True))
            return dict(zip(keys, entries, strict=True))
        except (EOFError, ValueError, TypeError):
            return {}

    def save(self, known: Known) -> None:
        """Replace the kept records (best effort: a cache that cannot be written is no error)."""
        write_checked(self.path, marshal.dumps((_TAG, list(known), tuple(zip(*known.values(), strict=True)))))
