"""Progress events. The engine emits them; the CLI (or a library caller) consumes them.

The engine never prints. A reporter is any callable taking one event; the no-op
reporter is the default so library calls stay silent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Planned:
    """The plan is known: this many files and bytes will be transferred."""

    files: int
    bytes: int


@dataclass(frozen=True, slots=True)
class BytesMoved:
    """Some bytes of one file reached the destination."""

    path: str
    nbytes: int


@dataclass(frozen=True, slots=True)
class FileDone:
    path: str
    size: int


@dataclass(frozen=True, slots=True)
class FileSkipped:
    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class FileFailed:
    path: str
    error: str


@dataclass(frozen=True, slots=True)
class FileDeleted:
    path: str


@dataclass(frozen=True, slots=True)
class Warning:
    message: str


Event = Planned | BytesMoved | FileDone | FileSkipped | FileFailed | FileDeleted | Warning
Reporter = Callable[[Event], None]


def null_reporter(event: Event) -> None:
    """Discard every event (the default for library calls)."""
