"""Rows kept on disk instead of in memory: what a million-key listing or plan spills.

A ``Spill`` is an append-only sequence of tuples written to a temporary file in pickled
blocks and read back in order, as often as needed, one block in memory at a time. Used by
the listing sort (sorted runs) and by plans (copies beyond what memory holds).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import LocalIOError
from .stores.base import Entry

BLOCK = 2_000
"""Rows per pickled block."""
SPACE_HINT = (
    "Listings and plans of more than 100,000 keys spill to the temporary directory: "
    "free space there, or point TMPDIR at a disk with room."
)

Row = tuple[Any, ...]


class Spill:
    def __init__(self, prefix: str = "runctl-") -> None:
        self._prefix = prefix
        self._path: Path | None = None
        self._block: list[Row] = []
        self._written = 0
        self.count = 0

    def append(self, row: Row) -> None:
        self._block.append(row)
        self.count += 1
        if len(self._block) >= BLOCK:
            self._flush()

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Row]:
        import pickle  # here: most commands never spill, and never pay its import

        self._flush()
        if self._path is not None:
            with open(self._path, "rb") as f:
                for _ in range(self._written):
                    yield from pickle.load(f)  # our own file, written by _flush

    def close(self) -> None:
        self._block = []
        if self._path is not None:
            self._path.unlink(missing_ok=True)
            self._path = None

    def _flush(self) -> None:
        if not self._block:
            return
        import pickle
        import tempfile

        try:
            if self._path is None:
                fd, name = tempfile.mkstemp(prefix=self._prefix, suffix=".spill")
                os.close(fd)
                self._path = Path(name)
            with open(self._path, "ab") as f:
                pickle.dump(self._block, f, protocol=pickle.HIGHEST_PROTOCOL)
        except OSError as exc:
            raise LocalIOError(
                f"cannot write the temporary file {self._path}: {exc.strerror or exc}", SPACE_HINT
            ) from exc
        self._written += 1
        self._block = []

    def __del__(self) -> None:
        self.close()


def entry_row(entry: Entry) -> Row:
    """An Entry as a tuple: pickling the frozen dataclass itself is ~6x slower."""
    return (entry.path, entry.size, entry.mtime, entry.etag, entry.kind, entry.mode, entry.link, entry.ctime)


def row_entry(row: Row) -> Entry:
    return Entry(*row)
