"""A bound on the bytes that transfers hold at once, next to the bound on their number.

With many transfers in flight (latency-bound small objects want hundreds), the count
alone says nothing about memory: 256 multipart uploads of 32 MiB each would hold 8 GiB.
Each transfer reserves what it may hold at its peak before it starts; waiters are served
in arrival order, so one large file is not overtaken forever by a stream of small ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class ByteBudget:
    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.free = self.limit
        self._turn = asyncio.Lock()  # FIFO: only the head waiter waits for room
        self._room = asyncio.Condition()

    @asynccontextmanager
    async def hold(self, size: int) -> AsyncIterator[None]:
        """Reserve ``size`` bytes (at most the whole budget) for the block's duration."""
        size = min(max(size, 0), self.limit)
        async with self._turn, self._room:
            await self._room.wait_for(lambda: self.free >= size)
            self.free -= size
        try:
            yield
        finally:
            async with self._room:
                self.free += size
                self._room.notify_all()
