"""The no-tar fallback: files written one by one over SFTP, many at once.

A remote without ``tar`` still takes a push. Each file goes over SFTP into a staging
directory inside the tree (the engine's per-file pool: ``PoolSession.copy_all``), hashed
as it is sent; then ONE script in the remote shell commits the lot as the tar path does
(``scripts.staged_update_script`` without tar): the remote's digest command reads the
staged files back and checks them against what was sent (remote.unpack_check: the same
fragment, written into the staging directory over SFTP), and only then are they renamed
into place, mtimes fixed and deletes done. A mismatch, or a push cut short, puts
nothing in place. Only transports with an SFTP channel (asyncssh) offer it:
``Remote.open_sftp``.

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
import contextlib
import posixpath
import secrets
from shlex import quote
from typing import Any

from ..engine.execute import ExecOptions, Outcome, PlanSession, PoolSession, announce
from ..engine.plan import Plan
from ..errors import RemoteDiskFullError, RemoteError, RemoteNotWritableError
from ..events import FileDeleted, Reporter
from ..remote import scripts
from ..remote.unpack_check import NAME as CHECK_NAME
from ..remote.unpack_check import StreamDigest
from .base import Entry, ProgressFn, Store
from .local import TMP_MARK
from .remote_tree import RemoteTree, RemoteTreeStore

FILES_IN_FLIGHT = 64


class SFTPSession(PlanSession):
    """An in-place plan through SFTP writes into a staging directory, then one script."""

    def __init__(self, store: RemoteTreeStore, tree: RemoteTree, then: str) -> None:
        self.store = store
        self.tree = tree
        self.then = then
        """The plan's mtime fixes and deletes, as script lines run after the moves."""

    async def run(self, plan: Plan, src: Store, reporter: Reporter) -> Outcome:
        store, tree = self.store, self.tree
        out = announce(plan, reporter)
        stage = f"{TMP_MARK}{secrets.token_hex(4)}"
        hasher = scripts.pick_hasher(tree.tools)  # none: the staged files go unchecked
        check = StreamDigest(*hasher, '"$r_s"') if hasher is not None else None
        writer = _StagingWriter(store, stage, check)
        try:
            await PoolSession(writer, ExecOptions(concurrency=FILES_IN_FLIGHT)).copy_all(
                plan.copies, src, reporter, out
            )
            if check is not None:
                await writer.put(CHECK_NAME, check.fragment())
                out.verified = check.algo
            dirs = [
                (a.target, _mode(a.entry, 0o755)) for a in plan.copies if a.entry and a.entry.kind == "dir"
            ]
            script = scripts.staged_update_script(
                store.root,
                stage,
                writer.staged,
                dirs,
                existing=tree.dirs,
                leftovers=tree.leftovers,
                then=self.then,
                check=check is not None,
                tar=False,
            )
            await store.shell.run(script, "checking and moving the files sent over SFTP")
        except BaseException:
            # The script removes the staging directory itself; this covers a failure
            # before it ran (or a lost connection). The error that brought us here is
            # the one to report.
            with contextlib.suppress(Exception):
                await store.shell.run(f"rm -rf -- {quote(posixpath.join(store.root, stage))}\n", "cleanup")
            raise
        finally:
            await writer.close()
        touches = [a for a in plan.touches if a.entry is not None]
        out.touched = len(touches)
        for action in plan.deletes:
            reporter(FileDeleted(action.target))
        out.deleted = len(plan.deletes)
        return out


def _mode(entry: Entry | None, default: int) -> int:
    return entry.mode if entry is not None and entry.mode is not None else default


class _StagingWriter(RemoteTreeStore):
    """The tree, written file by file (or symlink) at each path inside the staging
    directory, regular files hashed as they are sent; ``staged`` lists what was written
    whole. Nothing reaches its real name until the commit script moves it."""

    def __init__(self, store: RemoteTreeStore, stage: str, check: StreamDigest | None) -> None:
        super().__init__(store.shell, store.root)
        self.base = posixpath.join(store.root, stage)
        self.check = check
        self.staged: list[str] = []
        self._client: asyncio.Future[Any] | None = None
        self._made: dict[str, asyncio.Future[None]] = {}
        """Directories created in the staging directory (one makedirs each, shared by
        the writers that need it)."""

    async def _sftp(self) -> Any:
        if self._client is None:  # one client shared by every concurrent writer
            self._client = asyncio.ensure_future(self.remote.open_sftp())
        try:
            return await asyncio.shield(self._client)
        except BaseException:
            self._client = None
            raise

    async def _folder(self, sftp: Any, path: str) -> None:
        folder = posixpath.dirname(posixpath.join(self.base, path))
        made = self._made.get(folder)
        if made is None:
            made = self._made[folder] = asyncio.ensure_future(sftp.makedirs(folder, exist_ok=True))
        try:
            await asyncio.shield(made)
        except BaseException:
            self._made.pop(folder, None)
            raise

    async def write(self, path: str, src: Store, entry: Entry, progress: ProgressFn) -> None:
        if entry.kind == "dir":
            return  # made in place by the commit script, with its mode
        sftp = await self._sftp()
        staged = posixpath.join(self.base, path)
        try:
            await self._folder(sftp, path)
            if entry.kind == "symlink":
                if await sftp.lexists(staged):
                    await sftp.remove(staged)
                await sftp.symlink(entry.link or "", staged)
                self.staged.append(path)
                return
            hasher = self.check.hasher() if self.check is not None else None
            reader = await src.open(entry.path)
            async with sftp.open(staged, "wb") as fh:
                async for chunk in reader.chunks():
                    if hasher is not None:
                        hasher.update(chunk)
                    await fh.write(chunk)
                    progress(len(chunk))
            mtime = reader.mtime if reader.mtime is not None else entry.mtime
            await sftp.chmod(staged, _mode(entry, 0o644))
            await sftp.utime(staged, (mtime, mtime))
        except sftp_errors() as exc:
            raise _error(path, exc) from exc
        if self.check is not None and hasher is not None:
            self.check.add(path, hasher)
        self.staged.append(path)

    async def put(self, path: str, data: bytes) -> None:
        sftp = await self._sftp()
        try:
            await self._folder(sftp, path)  # the staging directory itself, if nothing was staged
            async with sftp.open(posixpath.join(self.base, path), "wb") as fh:
                await fh.write(data)
        except sftp_errors() as exc:
            raise _error(path, exc) from exc

    async def close(self) -> None:
        """Ends the SFTP client only: the shell belongs to the store this one serves."""
        client, self._client = self._client, None
        if client is None:
            return
        if client.done() and not client.cancelled() and client.exception() is None:
            client.result().exit()
        else:
            client.cancel()


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
