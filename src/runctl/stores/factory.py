"""One place that turns a location (``s3://BUCKET/KEY`` or a local path) into a Store.

Callers say whether the location is a directory (a store rooted there, key "") or a
single file (a store rooted at its parent, and the file's key in it). A new scheme is
one more opener in ``OPENERS``; the rest of runctl only sees Stores.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .base import Store
from .local import LocalStore

if TYPE_CHECKING:
    from ..settings import Settings
    from .s3 import S3Store

Location = str | os.PathLike[str]
LOCAL = "file"


def scheme_of(location: Location) -> str:
    """``"s3"`` for ``s3://...``, ``"file"`` for anything else (a local path)."""
    text = os.fspath(location)
    scheme, sep, _ = text.partition("://")
    return scheme if sep and scheme in OPENERS else LOCAL


def as_dir_prefix(key: str) -> str:
    return key if not key or key.endswith("/") else key + "/"


def open_s3(url: Location, settings: Settings, *, directory: bool) -> tuple[S3Store, str]:
    """An S3 store for ``url`` and the key relative to it ("" for directory stores).
    A directory store's prefix ends with "/": ``s3://b/p`` and ``s3://b/p/`` are the same."""
    from .s3 import S3Store, parse_s3_url  # lazily: code push never loads the S3 stack

    loc = parse_s3_url(os.fspath(url))
    prefix = as_dir_prefix(loc.key) if directory else ""
    store = S3Store(
        loc.bucket,
        prefix,
        settings.s3_options(),
        part_size=settings.part_size,
        parts_in_flight=settings.parts_in_flight,
    )
    return store, ("" if directory else loc.key)


def open_local(path: Location, settings: Settings, *, directory: bool) -> tuple[LocalStore, str]:
    """A local store at ``path`` (directory), or at its parent with its name as the key."""
    where = Path(path)
    root, key = (where, "") if directory else (where.parent, where.name)
    store = LocalStore(root, part_size=settings.download_range, parts_in_flight=settings.parts_in_flight)
    return store, key


class Opener(Protocol):
    def __call__(
        self, location: Location, settings: Settings, /, *, directory: bool
    ) -> tuple[Store, str]: ...


OPENERS: dict[str, Opener] = {"s3": open_s3, LOCAL: open_local}
"""Scheme -> opener. A location without ``scheme://`` (or with an unknown one) is local."""


def open_store(
    location: Location, settings: Settings, *, directory: bool, scheme: str | None = None
) -> tuple[Store, str]:
    """The store for ``location`` and the key relative to it.

    ``scheme`` insists on one kind of location (``runctl s3 ...`` takes only ``s3://``):
    its opener then refuses anything else with its own UsageError."""
    return OPENERS[scheme or scheme_of(location)](location, settings, directory=directory)
