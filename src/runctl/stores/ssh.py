"""A directory on an SSH host as a store.

Built for few round trips and ONE remote shell per push, because each exec channel
costs a login shell start on a real host (see ssh_session):
* ``list()`` is ONE remote command that prints the whole tree (see ssh_scripts);
* ``write_batch()`` sends every changed file as ONE tar stream, unpacked by the
  remote ``tar`` with modes and mtimes kept (so the next listing sees no change);
* ``hashes()`` digests many remote files in one command (see codesync.compare);
all through the same remote ``sh`` (listing, hashes and mtime fixes first, the tar
stream last). Single-file ``write``/``open``/``stat`` use SFTP, as any other store would.

asyncssh is imported lazily: it costs ~180 ms, which only SSH commands should pay.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import posixpath
import secrets
import stat
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from shlex import quote
from typing import TYPE_CHECKING, Any

from ..errors import (
    NotFoundError,
    RemoteDiskFullError,
    RemoteError,
    RemoteNotWritableError,
    RemoteToolMissingError,
)
from . import gzip_stream
from . import ssh_scripts as scripts
from . import tar_format as tar
from .base import Entry, EntryKind, ProgressFn, Reader, Store
from .local import TMP_MARK
from .ssh_session import RemoteShell, request_listing

if TYPE_CHECKING:
    import asyncssh

FLUSH_AT = 1024 * 1024
"""Bytes buffered before a write to the channel: few, large writes keep the stream fast."""
LEFTOVER_AGE = 3600.0
"""Seconds after which a staging dir or temporary file is taken as abandoned (a push
still running beside this one would be younger)."""
DIRECT_AT = 256 * 1024
"""Files at least this large go to the channel chunk by chunk, not through the buffer."""
_TYPES: dict[bytes, EntryKind] = {b"f": "file", b"d": "dir", b"l": "symlink"}
_TMP_MARK = TMP_MARK.encode()
_FS_ENCODING = sys.getfilesystemencoding()
Digests = list[str | None]  # named here: inside the class, ``list`` is the method
Entries = list[Entry]


class SSHStore(Store):
    batch_writes = True
    mtime_precision = 1e-3
    """find prints nanoseconds and tar (pax) restores them; 1 ms absorbs float rounding."""

    def __init__(
        self, conn: asyncssh.SSHClientConnection, root: str, url: str, shell: RemoteShell | None = None
    ) -> None:
        self.conn = conn
        self.root = root or "."
        self.url = url
        self.tools: set[str] = set()
        """Remote tools seen by the last listing (tar, sha256sum, ...)."""
        self.exists = False
        """Whether the root directory existed at the last listing."""
        self.staging = False
        """Full mode: unpack batches into a fresh directory, then swap it into place."""
        self.keep: list[str] = []
        """Full mode: remote paths (top-most) moved back into the new tree after the swap."""
        self.leftovers: list[str] = []
        """Staging dirs and temporary files an interrupted push left (an hour old or more):
        removed by the next batch."""
        self.remote_dirs: set[str] = set()
        """Directories the last listing saw (a batch needs no mkdir for them)."""
        self.compress = False
        """Send tar streams gzipped (see gzip_stream); the remote must have gzip."""
        self.shell = shell or RemoteShell(conn, url)
        self._sftp: Any = None
        self._prefetched: list[Entry] | None = None

    # -- running remote commands -------------------------------------------------

    async def run_script(self, script: str, what: str) -> bytes:
        """Run a POSIX sh script in the push's remote shell; return stdout or raise a typed error."""
        return await self.shell.run(script, what)

    # -- Store interface -----------------------------------------------------------

    async def prefetch(self, requested: Awaitable[bytes] | None = None) -> None:
        """List now (e.g. while other work runs); the next ``list()`` uses the result.
        ``requested``: the answer of a listing already sent (see ``request_listing``)."""
        self._prefetched = self._entries(await requested) if requested is not None else await self._list()

    async def list(self) -> AsyncIterator[Entry]:
        entries, self._prefetched = self._prefetched, None
        for entry in entries if entries is not None else await self._list():
            yield entry

    async def _list(self) -> Entries:
        return self._entries(await request_listing(self.shell, self.root))

    def _entries(self, raw: bytes) -> Entries:
        header, _, body = raw.partition(b"\n")
        words = header.decode(errors="replace").split()
        if not words or words[0] != scripts.LIST_MAGIC:
            raise NotFoundError(f"unexpected listing from {self.url}: {header[:80]!r}")
        self.exists = words[1] != "missing"
        self.tools = set(words[2:])
        if "tar" not in self.tools:
            # No tar there: one SFTP write per file (many in flight), whose mtimes
            # SFTP (version 3) carries in whole seconds.
            self.batch_writes = False
            self.mtime_precision = 1.0
        if len(words) > 1 and words[1] == "perl":
            self.mtime_precision = 1.0  # perl without Time::HiRes gives whole seconds
        found: list[tuple[str, float]] = []
        entries = sorted(_parse_listing(body, found), key=lambda e: e.path)
        cutoff = time.time() - LEFTOVER_AGE
        self.leftovers = [path for path, mtime in found if mtime < cutoff]
        self.remote_dirs = {e.path for e in entries if e.kind == "dir"}
        return entries

    async def stat(self, path: str) -> Entry | None:
        import asyncssh

        sftp = await self._sftp_client()
        try:
            attrs = await sftp.lstat(self._abs(path))
        except asyncssh.SFTPNoSuchFile:
            return None
        mode = attrs.permissions or 0
        kind: EntryKind = "dir" if stat.S_ISDIR(mode) else "symlink" if stat.S_ISLNK(mode) else "file"
        return Entry(path, attrs.size or 0, float(attrs.mtime or 0), kind=kind, mode=stat.S_IMODE(mode))

    async def open(self, path: str, offset: int = 0, length: int | None = None) -> Reader:
        sftp = await self._sftp_client()
        entry = await self.stat(path)
        if entry is None:
            raise NotFoundError(f"remote file not found: {self.url}{path}")
        return _SFTPReader(sftp, self._abs(path), entry, offset, length)

    async def write(self, path: str, src: Store, entry: Entry, progress: ProgressFn) -> None:
        """One file over SFTP: temporary name, then rename (atomic on the remote). Used
        when the remote has no tar: the engine then runs many of these at once."""
        import asyncssh

        try:
            await self._sftp_write(path, src, entry, progress)
        except asyncssh.SFTPError as exc:
            raise _sftp_error(path, exc) from exc

    async def _sftp_write(self, path: str, src: Store, entry: Entry, progress: ProgressFn) -> None:
        sftp = await self._sftp_client()
        final = self._abs(path)
        await sftp.makedirs(posixpath.dirname(final) or ".", exist_ok=True)
        if entry.kind == "dir":
            await sftp.makedirs(final, exist_ok=True)
            return
        if entry.kind == "symlink":
            await self.delete([path])
            await sftp.symlink(entry.link or "", final)
            return
        folder, name = posixpath.dirname(final) or ".", posixpath.basename(final)[:100]
        tmp = f"{folder}/.{name}{TMP_MARK}{secrets.token_hex(4)}"
        reader = await src.open(entry.path)
        async with sftp.open(tmp, "wb") as fh:
            async for chunk in reader.chunks():
                await fh.write(chunk)
                progress(len(chunk))
        mtime = reader.mtime if reader.mtime is not None else entry.mtime
        await sftp.chmod(tmp, entry.mode if entry.mode is not None else 0o644)
        await sftp.utime(tmp, (mtime, mtime))
        await sftp.posix_rename(tmp, final)

    async def delete(self, paths: Iterable[str]) -> None:
        batch = list(paths)
        if batch:
            await self.run_script(scripts.delete_script(self.root, batch), "delete")

    async def write_batch(
        self,
        entries: Sequence[Entry],
        src: Store,
        on_bytes: Callable[[str, int], None],
        on_done: Callable[[str], None],
    ) -> None:
        """All entries as one tar stream into one remote ``tar -x`` (see module docstring)."""
        if self.tools and "tar" not in self.tools:
            raise RemoteToolMissingError(f"tar is not installed on {self.url}")

        decode = gzip_stream.DECODE if self.compress else None

        token = secrets.token_hex(4)
        in_tree = not self.staging and self.exists
        stage = f"{TMP_MARK}{token}"

        def feed(sink: Any) -> Awaitable[None]:
            out = gzip_stream.GzipWriter(sink) if self.compress else sink
            return _send_tar(entries, src, out, on_bytes, on_done, prefix=f"{stage}/" if in_tree else "")

        if in_tree:
            # Into the existing tree: unpacked aside, then each file renamed into place.
            files = [e.path for e in entries if e.kind != "dir"]
            dirs = [(e.path, e.mode if e.mode is not None else 0o755) for e in entries if e.kind == "dir"]
            script = scripts.staged_update_script(
                self.root, stage, files, dirs, decode, self.remote_dirs, self.leftovers
            )
            await self.shell.run_last(script, "unpacking (tar)", feed)
            return
        # Full mode, or a first push: the tree is unpacked beside its place and renamed
        # into it, so a failed or interrupted push leaves the old tree (or none) untouched.
        root = self.root.rstrip("/") or "/"
        parent, name = posixpath.split(root)
        if name in ("", ".", ".."):
            raise NotFoundError(
                f"full mode needs a named destination directory, not {self.root!r}",
                "Push into a subdirectory, e.g. host:project.",
            )
        staging = posixpath.join(parent, f".{name}{TMP_MARK}{token}")
        old = posixpath.join(parent, f".{name}.runctl-old-{token}")
        script = scripts.staged_tar_script(root, staging, old, self.keep, decode)
        try:
            await self.shell.run_last(script, "unpacking (tar) and replacing the tree", feed)
        except BaseException:
            await self._cleanup(staging)  # the script cleans up too; this covers a lost connection
            raise

    async def _cleanup(self, staging: str) -> None:
        # Best effort: the error that brought us here is the one to report.
        with contextlib.suppress(Exception):
            await self.run_script(f"rm -rf -- {quote(staging)}\n", "cleanup")

    async def hashes(self, command: str, items: Sequence[tuple[str, str]], sample: int) -> Digests:
        """Digests of remote files, in one command (see ``ssh_scripts.hash_script``)."""
        script = scripts.hash_script(self.root, command, items, sample)
        lines = (await self.run_script(script, "hashing")).decode().splitlines()
        digests = [None if d in ("-", "") else d for d in lines]
        return (digests + [None] * len(items))[: len(items)]

    async def set_mtimes(self, mtimes: Sequence[tuple[str, float]]) -> None:
        if mtimes:
            await self.run_script(scripts.touch_script(self.root, mtimes), "setting mtimes")

    async def close(self) -> None:
        await self.shell.close()
        sftp, self._sftp = self._sftp, None
        if sftp is not None:
            if sftp.done() and not sftp.cancelled() and sftp.exception() is None:
                sftp.result().exit()
            else:
                sftp.cancel()

    # -- helpers -------------------------------------------------------------------

    def _abs(self, path: str) -> str:
        return posixpath.join(self.root, path)

    async def _sftp_client(self) -> Any:
        import asyncssh

        if self._sftp is None:  # one client shared by every concurrent writer
            self._sftp = asyncio.ensure_future(self.conn.start_sftp_client())
        try:
            return await asyncio.shield(self._sftp)
        except (OSError, asyncssh.Error) as exc:
            self._sftp = None
            hint = "Install tar (or enable SFTP) on the remote machine."
            raise RemoteToolMissingError(f"{self.url} has no SFTP server ({exc})", hint) from exc


def _sftp_error(path: str, exc: Exception) -> RemoteError:
    import asyncssh

    message = f"writing {path} over SFTP failed: {getattr(exc, 'reason', '') or exc}"
    if isinstance(exc, asyncssh.SFTPPermissionDenied):
        return RemoteNotWritableError(message)
    if isinstance(exc, asyncssh.SFTPNoSpaceOnFilesystem | asyncssh.SFTPQuotaExceeded):
        return RemoteDiskFullError(message)
    return RemoteError(message, "Check the remote directory, its permissions and free space.")


def _parse_listing(body: bytes, leftovers: list[tuple[str, float]] | None = None) -> Entries:
    """Entries from the NUL-separated records of ``list_script`` (a hot loop: a no-change
    push of a few thousand files spends most of its post-listing time here). Staging
    directories and temporary files are left out; ``leftovers`` gets (path, mtime) of each."""
    fields = body.split(b"\0")
    entries: Entries = []
    append = entries.append
    encoding = _FS_ENCODING
    for i in range(0, len(fields) - scripts.FIELDS + 1, scripts.FIELDS):
        kind = _TYPES.get(fields[i])
        raw = fields[i + 4]
        if kind is None or _TMP_MARK in raw:
            if leftovers is not None and kind is not None and _TMP_MARK in raw.rpartition(b"/")[2]:
                leftovers.append((raw.decode(encoding, "surrogateescape"), float(fields[i + 2])))
            continue  # sockets, fifos; staging directories and leftovers of an interrupted write
        path = raw.decode(encoding, "surrogateescape")
        mtime, mode = float(fields[i + 2]), int(fields[i + 3], 8)
        if kind == "file":
            append(Entry(path, int(fields[i + 1]), mtime, None, kind, mode))
        else:
            link = fields[i + 5].decode(encoding, "surrogateescape") if kind == "symlink" else None
            append(Entry(path, 0, mtime, None, kind, mode, link))
    return entries


async def _send_tar(
    entries: Sequence[Entry],
    src: Store,
    sink: Any,
    on_bytes: Callable[[str, int], None],
    on_done: Callable[[str], None],
    prefix: str = "",
) -> None:
    """Write a POSIX (pax) tar of ``entries`` to ``sink``; pax keeps nanosecond mtimes.
    Headers and small files are gathered into large writes; the data of large files
    goes to the channel as read, without another copy. ``prefix``: a directory the
    members are put in (the remote tar then creates it: no mkdir process)."""
    buf = bytearray()

    async def send(data: bytes | bytearray) -> None:
        sink.write(data)
        await sink.drain()

    async def flush(force: bool = False) -> None:
        if buf and (force or len(buf) >= FLUSH_AT):
            await send(bytes(buf))
            buf.clear()

    for entry in entries:
        mode = entry.mode if entry.mode is not None else (0o755 if entry.kind == "dir" else 0o644)
        mtime_ns = round(entry.mtime * 1e9)
        local = src.local_file(entry.path) if entry.kind == "file" else None
        name = prefix + entry.path
        if entry.kind == "dir":
            buf += tar.member_header(name, tar.DIRECTORY, mtime_ns=mtime_ns, mode=mode)
        elif entry.kind == "symlink":
            link = entry.link or ""
            buf += tar.member_header(name, tar.SYMLINK, mtime_ns=mtime_ns, mode=mode, link=link)
        elif local is not None:
            await _add_local_file(local, mode, buf, flush, send, entry.path, on_bytes, name)
        else:
            reader = await src.open(entry.path)
            buf += tar.member_header(name, tar.REGULAR, size=reader.size, mtime_ns=mtime_ns, mode=mode)
            async for chunk in reader.chunks():
                buf += chunk
                on_bytes(entry.path, len(chunk))
                await flush()
            buf += tar.padding(reader.size)
        on_done(entry.path)
        await flush()
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
            left -= len(chunk)
            if direct:
                await send(chunk)
            else:
                buf += chunk
            on_bytes(path, len(chunk))
        buf += tar.padding(st.st_size)


class _SFTPReader(Reader):
    def __init__(self, sftp: Any, path: str, entry: Entry, offset: int, length: int | None) -> None:
        self.size = entry.size
        self.mtime = entry.mtime
        self._sftp, self._path, self._offset = sftp, path, offset
        self._length = entry.size - offset if length is None else length

    async def chunks(self) -> AsyncIterator[bytes]:
        async with self._sftp.open(self._path, "rb") as fh:
            await fh.seek(self._offset)
            left = self._length
            while left > 0:
                data = await fh.read(min(1 << 20, left))
                if not data:
                    break
                left -= len(data)
                yield data
