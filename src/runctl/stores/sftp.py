"""The no-tar fallback: files written one by one over SFTP, many at once.

A remote without ``tar`` still takes a push: each file goes to a temporary name and is
renamed into place (atomic on the remote), run by the engine's per-file pool. Only
transports with an SFTP channel (asyncssh) offer it: ``Remote.open_sftp``.

SFTP (version 3, OpenSSH's) carries mtimes in whole seconds: a file written at 10.6
gets 10 there, so the tree has whole-second precision (``RemoteTree.mtime_precision``)
and an edit later within that same second leaves its mtime unchanged. The listing still
comes from the remote shell (find, perl or stat), with ctimes: a same-size file whose
copy was written within its second (plus the lag and clock-skew bound, see
codesync.compare) is compared by content on the next push; without a ctime or a skew
bound, every such file is.
"""

from __future__ import annotations

import asyncio
import posixpath
import secrets
from collections.abc import Sequence
from typing import Any

from ..errors import RemoteDiskFullError, RemoteError, RemoteNotWritableError
from .base import Entry, ProgressFn, Store
from .local import TMP_MARK
from .remote_tree import RemoteTreeStore


class SFTPTreeStore(RemoteTreeStore):
    mtime_precision = 1.0

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._client: asyncio.Future[Any] | None = None

    async def _sftp(self) -> Any:
        if self._client is None:  # one client shared by every concurrent writer
            self._client = asyncio.ensure_future(self.remote.open_sftp())
        try:
            return await asyncio.shield(self._client)
        except BaseException:
            self._client = None
            raise

    async def write(self, path: str, src: Store, entry: Entry, progress: ProgressFn) -> None:
        sftp = await self._sftp()
        try:
            await _write(sftp, posixpath.join(self.root, path), src, entry, progress)
        except sftp_errors() as exc:
            raise _error(path, exc) from exc

    async def set_mtimes(self, items: Sequence[tuple[str, float]]) -> None:
        sftp = await self._sftp()
        for path, mtime in items:
            await sftp.utime(posixpath.join(self.root, path), (mtime, mtime))

    async def close(self) -> None:
        """Ends the SFTP client only: the shell belongs to the store this one serves."""
        client, self._client = self._client, None
        if client is None:
            return
        if client.done() and not client.cancelled() and client.exception() is None:
            client.result().exit()
        else:
            client.cancel()


async def _write(sftp: Any, final: str, src: Store, entry: Entry, progress: ProgressFn) -> None:
    await sftp.makedirs(posixpath.dirname(final) or ".", exist_ok=True)
    if entry.kind == "dir":
        await sftp.makedirs(final, exist_ok=True)
        return
    if entry.kind == "symlink":
        if await sftp.lexists(final):
            await sftp.remove(final)
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


def sftp_errors() -> tuple[type[Exception], ...]:
    import asyncssh

    return (asyncssh.SFTPError,)


def _error(path: str, exc: Exception) -> RemoteError:
    import asyncssh

    message = f"writing {path} over SFTP failed: {getattr(exc, 'reason', '') or exc}"
    if isinstance(exc, asyncssh.SFTPPermissionDenied):
        return RemoteNotWritableError(message)
    if isinstance(exc, asyncssh.SFTPNoSpaceOnFilesystem | asyncssh.SFTPQuotaExceeded):
        return RemoteDiskFullError(message)
    return RemoteError(message, "Check the remote directory, its permissions and free space.")
