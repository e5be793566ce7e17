"""A tree of files as one POSIX (pax) tar stream, written to a channel as it is read.

pax headers keep nanosecond mtimes, so the remote ``tar -x`` restores them exactly and
the next listing sees no change.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ..remote.unpack_check import NAME as CHECK_NAME
from ..remote.unpack_check import StreamDigest
from . import tar_format as tar
from .base import Entry, Store

FLUSH_AT = 1024 * 1024
"""Bytes buffered before a write to the channel: few, large writes keep the stream fast."""
DIRECT_AT = 256 * 1024
"""Files at least this large go to the channel chunk by chunk, not through the buffer."""


async def send_tar(
    items: Sequence[tuple[str, Entry]],
    src: Store,
    sink: Any,
    on_bytes: Callable[[str, int], None],
    on_done: Callable[[str], None],
    prefix: str = "",
    check: StreamDigest | None = None,
) -> None:
    """Write a POSIX (pax) tar of ``items`` (name in the archive, source entry) to
    ``sink``; pax keeps nanosecond mtimes.
    Headers and small files are gathered into large writes; the data of large files
    goes to the channel as read, without another copy. ``prefix``: a directory the
    members are put in (the remote tar then creates it: no mkdir process). ``check``:
    each regular file's bytes are hashed as sent, and the stream ends with the fragment
    that checks the unpacked files against those digests (remote.unpack_check)."""
    buf = bytearray()

    async def send(data: bytes | bytearray) -> None:
        sink.write(data)
        await sink.drain()

    async def flush(force: bool = False) -> None:
        if buf and (force or len(buf) >= FLUSH_AT):
            await send(bytes(buf))
            buf.clear()

    for target, entry in items:
        mode = entry.mode if entry.mode is not None else (0o755 if entry.kind == "dir" else 0o644)
        mtime_ns = round(entry.mtime * 1e9)
        local = src.local_file(entry.path) if entry.kind == "file" else None
        name = prefix + target
        hasher = check.hasher() if check is not None and entry.kind == "file" else None
        if entry.kind == "dir":
            buf += tar.member_header(name, tar.DIRECTORY, mtime_ns=mtime_ns, mode=mode)
        elif entry.kind == "symlink":
            link = entry.link or ""
            buf += tar.member_header(name, tar.SYMLINK, mtime_ns=mtime_ns, mode=mode, link=link)
        elif local is not None:
            await _add_local_file(local, mode, buf, flush, send, target, on_bytes, name, hasher)
        else:
            reader = await src.open(entry.path)
            buf += tar.member_header(name, tar.REGULAR, size=reader.size, mtime_ns=mtime_ns, mode=mode)
            async for chunk in reader.chunks():
                buf += chunk
                if hasher is not None:
                    hasher.update(chunk)
                on_bytes(target, len(chunk))
                await flush()
            buf += tar.padding(reader.size)
        if check is not None and hasher is not None:
            check.add(target, hasher)
        on_done(target)
        await flush()
    if check is not None:
        fragment = check.fragment()
        buf += tar.member_header(prefix + CHECK_NAME, tar.REGULAR, size=len(fragment), mtime_ns=0, mode=0o600)
        buf += fragment + tar.padding(len(fragment))
    buf += tar.END_OF_ARCHIVE
    await flush(force=True)


async def _add_local_file(
    local: os.PathLike[str],
    mode: int,
    buf: bytearray,
    flush: Callable[[bool], Awaitable[None]],
    send: Callable[[bytes], Awaitable[None]],
    path: str,
    on_bytes: Callable[[str, int], None],
    name: str,
    hasher: Any = None,
) -> None:
    """Header from a fresh fstat (the file may have changed since listing), then exactly
    that many bytes, so the archive stays well-formed even if the file changes meanwhile."""
    with open(local, "rb", buffering=0) as fh:
        st = os.fstat(fh.fileno())
        buf += tar.member_header(name, tar.REGULAR, size=st.st_size, mtime_ns=st.st_mtime_ns, mode=mode)
        left = st.st_size
        direct = left >= DIRECT_AT
        if direct:
            await flush(True)
        while left > 0:
            chunk = fh.read(min(FLUSH_AT, left))
            if not chunk:
                chunk = bytes(left)  # shrank while reading: pad; the next push resends it
            if hasher is not None:
                hasher.update(chunk)  # what is sent: the remote check is of the transfer
            left -= len(chunk)
            if direct:
                await send(chunk)
            else:
                buf += chunk
            on_bytes(path, len(chunk))
        buf += tar.padding(st.st_size)
