"""A TCP proxy on loopback that behaves like a slower link: bandwidth and one-way delay.

Used by the code benchmark to put a WAN between the client and the private sshd
(e.g. 100 Mbit/s and 15 ms each way, a 30 ms round trip), since loopback has neither.
Each direction is a FIFO: a chunk leaves the "wire" after the chunks before it at the
link's rate, and arrives ``delay`` later; at most ``window`` bytes are in flight, so a
sender that outpaces the link is slowed by TCP backpressure, as on a real link.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator


async def _pump(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rate: float, delay: float, window: int
) -> None:
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(maxsize=max(4, window // 16384))
    free_at = 0.0  # when the wire finishes sending what is queued

    async def deliver() -> None:
        while True:
            at, data = await queue.get()
            if not data:
                break
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.write_eof()

    sender = asyncio.ensure_future(deliver())
    try:
        while data := await reader.read(16384):
            now = time.monotonic()
            free_at = max(now, free_at) + len(data) / rate
            await queue.put((free_at + delay, data))
    finally:
        await queue.put((0.0, b""))
        with contextlib.suppress(OSError, ConnectionError):
            await sender


async def _serve(
    port_out: list[int], upstream: int, mbit: float, delay_ms: float, ready: threading.Event
) -> None:
    rate, delay = mbit * 1e6 / 8, delay_ms / 1000
    window = int(rate * delay * 2) + 65536

    async def handle(c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        s_reader, s_writer = await asyncio.open_connection("127.0.0.1", upstream)
        # CancelledError: the shaper is closing with this connection still open. Ended
        # quietly: asyncio's stream callback would log a cancelled handler's "exception".
        with contextlib.suppress(OSError, ConnectionError, asyncio.CancelledError):
            await asyncio.gather(
                _pump(c_reader, s_writer, rate, delay, window), _pump(s_reader, c_writer, rate, delay, window)
            )
        for w in (c_writer, s_writer):
            w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port_out.append(server.sockets[0].getsockname()[1])
    ready.set()
    async with server:
        await server.serve_forever()


@contextlib.contextmanager
def shaped(upstream_port: int, mbit: float, delay_ms: float) -> Iterator[int]:
    """Run the proxy in a background thread; yield its port."""
    port: list[int] = []
    ready = threading.Event()
    loop = asyncio.new_event_loop()

    def run() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(_serve(port, upstream_port, mbit, delay_ms, ready))
        # Connections still open were cancelled with the server: let them finish, or
        # asyncio reports each as "Task was destroyed but it is pending!".
        rest = asyncio.all_tasks(loop)
        if rest:
            loop.run_until_complete(asyncio.wait(rest))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("link shaper did not start")
    try:
        yield port[0]
    finally:
        for task in asyncio.all_tasks(loop):
            loop.call_soon_threadsafe(task.cancel)
        thread.join(5)
