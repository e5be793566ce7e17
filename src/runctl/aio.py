"""Small asyncio helpers shared by the engine and the stores."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from .errors import RunctlError

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on a fresh loop. uvloop, when present, is both faster and avoids
    an obstore crash at interpreter exit seen with the default asyncio loop. Kept in this
    light module so commands that never touch S3 do not import the S3 stack to get it."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux/macOS
        return asyncio.run(coro)
    return uvloop.run(coro)


@asynccontextmanager
async def unwrap_groups() -> AsyncIterator[None]:
    """Re-raise the first real error out of a TaskGroup's ExceptionGroup.

    Callers (and the CLI's error boundary) branch on typed runctl errors; a group
    wrapping them would turn a clear "bucket not found" into an internal error.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        leaves = list(_leaves(group))
        typed = [e for e in leaves if isinstance(e, RunctlError)]
        raise (typed or leaves)[0] from group


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc
