"""A large download's partial file, kept when a run is interrupted so that the next run of
the same command resumes it instead of starting over.

Beside the final name lie two hidden files: the data, written in place at each range's
offset, and a journal whose first line says what is being downloaded (the source, its
ETag, size and range size) and whose other lines each record one range written whole,
with the CRC-32C of its bytes as written. A later run resumes only when the header is the
same (the object unchanged), and reuses only the ranges whose bytes still have their CRC
(a torn or damaged range is fetched again); the whole file is then verified against the
object's digest as any download is. A CRC, not MD5: it is on the hot path of every large
download, and the cryptographic check is the whole-file one. CRC-32C (``crc32c``, the SSE4.2
instruction) rather than zlib's CRC-32: 0.05 ms per MiB against 0.26 with the zlib these
machines ship, which was a tenth of a 256 MiB download's time on one core.

The journal is locked (flock) while a run uses it: a second run downloading the same file
at the same time gets no partial and writes a temporary file of its own.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..crcs import crc32c_update

PARTIAL_MARK = ".runctl-partial-"
"""In the names of the partial files; listings leave them out as they do temporary files."""
_VERSION = 2
"""2: CRC-32C (1 was zlib's CRC-32). A journal of another version is started over."""


def crc_extend(crc: int, data: bytes) -> int:
    """The CRC of the bytes so far (``crc``) followed by ``data`` (any buffer)."""
    return crc32c_update(data, crc)


def crc_of(fd: int, offset: int, length: int) -> int:
    crc = 0
    end = offset + length
    while offset < end:
        data = os.pread(fd, min(1 << 20, end - offset), offset)
        if not data:
            return -1  # shorter than recorded: not the range that was written
        crc = crc_extend(crc, data)
        offset += len(data)
    return crc


@dataclass
class Partial:
    data: Path
    journal: Path
    _fd: int
    done: dict[int, tuple[int, int]] = field(default_factory=dict)
    """Ranges an earlier run wrote whole: offset -> (length, CRC-32C)."""

    @classmethod
    def claim(cls, final: Path, identity: dict[str, Any]) -> Partial | None:
        """The partial download for ``final`` of what ``identity`` describes: resumed when
        an earlier run left one of the same object, else started afresh. None when another
        run holds it."""
        base = f".{final.name[:100]}{PARTIAL_MARK}"
        data, journal = final.parent / f"{base}data", final.parent / f"{base}journal"
        fd = os.open(journal, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        try:
            header = json.dumps({"runctl-partial": _VERSION, **identity}, sort_keys=True)
            lines = _read_all(fd).split("\n")
            partial = cls(data, journal, fd)
            if lines[0] == header and data.exists():
                partial.done = _ranges(lines[1:])
            else:
                data.unlink(missing_ok=True)
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{header}\n".encode(), 0)
            return partial
        except BaseException:
            os.close(fd)
            raise

    def finished(self, offset: int, length: int, crc: int) -> None:
        """Record a range written whole (after its bytes: a run killed in between only
        fetches it again)."""
        end = os.lseek(self._fd, 0, os.SEEK_END)
        os.pwrite(self._fd, f"{offset} {length} {crc}\n".encode(), end)
        self.done[offset] = (length, crc)

    def keep(self) -> None:
        """The run ends without the file: keep what it wrote for the next run, if anything."""
        if not self.done:
            self.discard()
            return
        os.close(self._fd)

    def discard(self) -> None:
        """Nothing worth resuming (finished, damaged, or the disk is full): remove both."""
        self.data.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.journal.unlink()
        os.close(self._fd)


def _read_all(fd: int) -> str:
    chunks = []
    offset = 0
    while chunk := os.pread(fd, 1 << 16, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def _ranges(lines: list[str]) -> dict[int, tuple[int, int]]:
    done: dict[int, tuple[int, int]] = {}
    for line in lines:
        fields = line.split(" ")
        if len(fields) == 3 and all(f.isdigit() for f in fields):  # a torn last line is skipped
            offset, length, crc = map(int, fields)
            done[offset] = (length, crc)
    return done
