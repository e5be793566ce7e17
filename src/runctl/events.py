"""Progress events. The engine emits them; the CLI (or a library caller) consumes them.

The engine never prints. A reporter is any callable taking one event; the no-op
reporter is the default so library calls stay silent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

# NamedTuples, not dataclasses: seven frozen dataclasses cost ~4 ms of every start-up
# (each generates and compiles its methods), a tenth of a no-change code push's margin.


class Planned(NamedTuple):
    """The plan is known: this many files and bytes will be transferred."""

    files: int
    bytes: int


class BytesMoved(NamedTuple):
    """Some bytes of one file reached the destination."""

    path: str
    nbytes: int


class FileDone(NamedTuple):
    path: str
    size: int


class FileSkipped(NamedTuple):
    path: str
    reason: str


class FileFailed(NamedTuple):
    path: str
    error: str


class FileDeleted(NamedTuple):
    path: str


class Notice(NamedTuple):
    """A warning for the user (not ``builtins.Warning``, which the old name shadowed)."""

    message: str


Event = Planned | BytesMoved | FileDone | FileSkipped | FileFailed | FileDeleted | Notice
Reporter = Callable[[Event], None]


def null_reporter(event: Event) -> None:
    """Discard every event (the default for library calls)."""
