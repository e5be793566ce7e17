"""Small asyncio helpers shared by the engine and the stores."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

from .errors import RunctlError


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
