"""Compression of the tar stream for links slower than the disk: gzip, level 1, per chunk.

gzip because every remote has it (``gzip -dc`` reads concatenated members as one
stream), level 1 because it compresses source code at ~550 MB/s here. Deflate gains
nothing on data that is already dense (checkpoints, archives, images) and manages only
~45 MB/s on it, so each chunk becomes its own member: compressed when a sample of it
shrinks, stored (level 0, memory speed) when it does not.
"""

from __future__ import annotations

import time
import zlib
from typing import Any, Literal

DECODE = "gzip -dc"
"""The remote command that turns the stream back into a tar archive."""
SAMPLE = 16 * 1024
STORE_ABOVE = 0.9
"""A chunk whose sample compresses to more than this fraction of its size is stored."""
MAX_LEVEL = 6
"""zlib's default: above it, deflate gets much slower for little gain on source code."""

Compress = Literal["auto", "always", "never"]


SLOW_LINK = 0.004
"""A round trip at least this long (seconds) is a real link: compress. An empty script
there and back takes ~1 ms on loopback or a LAN (mostly the remote's fork), 10-100 ms
over a WAN, and a slow link can hide behind a local port (a tunnel, an SSM or bastion
ProxyCommand), so the link is judged by what it measures, never by its address."""


MEASURE_ABOVE = 1024 * 1024
"""Bytes to send below which ``auto`` compresses without measuring the link: compressing
that much costs a few milliseconds at level 1 (and saves as much on a real link), less
than a measurement's round trip over any WAN."""


def wanted(setting: Compress, round_trip: float | None) -> bool:
    """Whether to compress: ``auto`` compresses when the measured round trip says the
    link is slower than the disk (``None``: not measured, assume a real link)."""
    if setting != "auto":
        return setting == "always"
    return round_trip is None or round_trip >= SLOW_LINK


def member(chunk: bytes, level: int = 1) -> bytes:
    """One gzip member holding ``chunk``, at ``level`` (stored when its sample is dense)."""
    sample = chunk[:SAMPLE]
    dense = len(sample) >= SAMPLE and len(zlib.compress(sample, 1)) > STORE_ABOVE * len(sample)
    packer = zlib.compressobj(0 if dense else level, zlib.DEFLATED, 31)  # wbits 31: gzip framing
    return packer.compress(chunk) + packer.flush()


class GzipWriter:
    """Wraps a channel writer: what is written goes out as gzip members.

    The level adapts to the link, chunk by chunk: when the channel makes us wait longer
    than compressing took, the link is the bottleneck and bytes saved are time saved, so
    the next chunk is packed harder (up to ``MAX_LEVEL``); when it never waits, the CPU
    is, and the level steps back down. A 100 Mbit/s link gets level-6 text; loopback
    stays at level 1."""

    def __init__(self, sink: Any) -> None:
        self.sink = sink
        self.level = 1
        self._packing = 0.0

    def write(self, data: bytes) -> None:
        started = time.perf_counter()
        self.sink.write(member(bytes(data), self.level))
        self._packing = time.perf_counter() - started

    async def drain(self) -> None:
        started = time.perf_counter()
        await self.sink.drain()
        waited = time.perf_counter() - started
        if waited > self._packing:
            self.level = min(MAX_LEVEL, self.level + 1)
        elif waited * 4 < self._packing:
            self.level = max(1, self.level - 1)
