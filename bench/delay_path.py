#!/usr/bin/env python3
"""A TCP relay on loopback that adds a one-way delay each way: real S3's latency, here.

Run as its own process (``running()`` starts one pinned to a CPU), so it never shares an
interpreter with what it measures. Built on asyncio protocols, not streams: each chunk
received is written to the other side ``delay`` later, in order (one FIFO per direction,
one timer per FIFO), with no per-byte work and no bandwidth model; at 0 ms chunks pass
straight through. Reading pauses while the other side's write buffer is full, so a
fast sender is held back as on a real link. (netem would be cheaper still, but this
machine's kernel has no sch_netem or sch_prio.)

    python bench/delay_path.py --upstream 8333 --delay-ms 10     # prints the port
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path


class _Side(asyncio.Protocol):
    """One end of a relayed connection; what it receives goes to ``peer`` late."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.transport: asyncio.Transport | None = None
        self.peer: _Side | None = None
        self.fifo: collections.deque[tuple[float, bytes]] = collections.deque()
        self.timer: asyncio.TimerHandle | None = None
        self.early: list[bytes] = []  # received before the peer was connected
        self.eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.peer is None or self.peer.transport is None:
            self.early.append(data)
            return
        if self.delay <= 0:
            self.peer.transport.write(data)
            return
        loop = asyncio.get_running_loop()
        self.fifo.append((loop.time() + self.delay, data))
        if self.timer is None:
            self.timer = loop.call_at(self.fifo[0][0], self._deliver)

    def _deliver(self) -> None:
        self.timer = None
        assert self.peer is not None and self.peer.transport is not None
        now = asyncio.get_running_loop().time()
        while self.fifo and self.fifo[0][0] <= now:
            self.peer.transport.write(self.fifo.popleft()[1])
        if self.fifo:
            self.timer = asyncio.get_running_loop().call_at(self.fifo[0][0], self._deliver)
        elif self.eof:
            self._pass_eof()

    def eof_received(self) -> bool:
        self.eof = True
        if not self.fifo:
            self._pass_eof()
        return True  # keep our write side open: the peer may still answer

    def _pass_eof(self) -> None:
        if self.peer is not None and self.peer.transport is not None and self.peer.transport.can_write_eof():
            with contextlib.suppress(OSError, RuntimeError):
                self.peer.transport.write_eof()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()

    # Backpressure: when our outgoing buffer fills, stop reading the peer.
    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()


async def serve(upstream: int, delay_ms: float) -> None:
    loop = asyncio.get_running_loop()
    delay = delay_ms / 1000
    pending: set[asyncio.Future[None]] = set()  # connects under way (the loop keeps weak refs)

    def client_side() -> _Side:
        side = _Side(delay)

        async def connect() -> None:
            try:
                _, server = await loop.create_connection(lambda: _Side(delay), "127.0.0.1", upstream)
            except OSError:
                if side.transport is not None:
                    side.transport.close()
                return
            side.peer, server.peer = server, side
            for data in side.early:
                side.data_received(data)
            side.early = []

        pending.add(task := asyncio.ensure_future(connect()))
        task.add_done_callback(pending.discard)
        return side

    server = await loop.create_server(client_side, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


@contextlib.contextmanager
def running(upstream: int, delay_ms: float, cpu: int | None = None) -> Iterator[int]:
    """A relay process to ``upstream`` with ``delay_ms`` each way; yields its port."""
    argv = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--upstream",
        str(upstream),
        "--delay-ms",
        str(delay_ms),
    ]
    if cpu is not None:
        argv = ["taskset", "-c", str(cpu), *argv]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.strip().isdigit():
            raise RuntimeError(f"delay path did not start: {line!r}")
        yield int(line)
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        if proc.poll() is None:
            proc.kill()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--upstream", type=int, required=True)
    p.add_argument("--delay-ms", type=float, default=10.0)
    args = p.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.upstream, args.delay_ms))


if __name__ == "__main__":
    main()
