"""Local disk as a store. Writes go to a temporary name beside the target, then rename."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import stat
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from ..aio import unwrap_groups
from ..crcs import CRC32C
from ..digests import MD5, S3_ETAG, SHA256, DigestSpec, file_digest
from ..errors import IntegrityError, LocalIOError, NotFoundError, ObjectChangedError, UsageError
from ..integrity import Expected, RangeCRCs, Tally, WriteHasher, digest_of, hasher_for, mismatch
from .base import Entry, ProgressFn, Reader, Store
from .local_partial import PARTIAL_MARK, Partial, crc_extend, crc_of

CHUNK = 1024 * 1024
"""Read size for local streams: 1 MiB balances syscalls against page-fault cost."""

TMP_MARK = ".runctl-tmp-"
_START_OVER = (LocalIOError, OSError, IntegrityError, ObjectChangedError)
"""Failures after which a partial download is not kept: the disk (full, not writable),
damaged bytes, another version of the object. Others (the network, Ctrl-C) keep it."""


def is_temporary(name: str) -> bool:
    """A file runctl is writing (or keeps for resuming), left out of listings."""
    return TMP_MARK in name or PARTIAL_MARK in name


PERMISSION_HINT = "Check its permissions (ls -ld), or pick a path this user can use."
IO_THREADS = 8
T = TypeVar("T")


_BACKSLASH = "\\" if os.sep == "\\" else "\0"
"""A separator only where the OS says so: on POSIX ``back\\slash.py`` is a legal name
(git, tar and rsync copy it), on Windows it would be a path."""


def safe_relpath(path: str) -> str | None:
    """Return ``path`` if it stays inside a root when joined to it, else None.

    Refuses absolute paths, ``..`` components and empty names: an S3 key such as
    ``../../etc/passwd`` must never be written outside the destination.
    """
    if not path or path[0] == "/" or path[-1] == "/" or "//" in path or _BACKSLASH in path or "\0" in path:
        return None
    if "." in path:  # string tests, not a split: this runs once per listed file
        framed = f"/{path}/"
        if "/./" in framed or "/../" in framed:
            return None
    return path


def require_directory(path: Path) -> None:
    """A local directory runctl is to read: missing is exit 4, a file in its place exit 2,
    one that cannot be read exit 1; each one line with a hint, before anything moves."""
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise NotFoundError(f"local directory not found: {path}", "Check the path.") from exc
    except OSError as exc:
        raise LocalIOError(f"cannot reach {path}: {exc.strerror}") from exc
    if not stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{path} is a file, not a directory", "Give the directory that holds the files.")
    if not os.access(path, os.R_OK | os.X_OK):
        raise LocalIOError(f"cannot read directory {path}: permission denied", PERMISSION_HINT)


def require_readable_file(path: Path) -> None:
    """A single local file runctl is to send: a regular file this process can open."""
    if not path.is_file():
        raise UsageError(f"{path} is not a regular file", "Give a file, or a directory with --recursive.")
    try:
        with open(path, "rb"):
            pass
    except PermissionError as exc:
        raise LocalIOError(f"cannot read {path}: permission denied", PERMISSION_HINT) from exc
    except OSError as exc:
        raise LocalIOError(f"cannot read {path}: {exc.strerror}") from exc


def check_destination(path: Path, *, directory: bool) -> None:
    """Refuse, before any transfer starts, a local destination that cannot be written:
    a file where a directory must go, or a directory where a file must go (exit 2); a
    parent that is a file (exit 2); a directory this process cannot write in (exit 1).
    Directories that do not exist yet are fine: writes create them."""
    if directory and (path.is_file() or (path.exists() and not path.is_dir())):
        raise UsageError(
            f"destination {path} is a file, not a directory",
            "A prefix downloads into a directory: pick another path, or move the file away.",
        )
    if not directory and path.is_dir():
        raise UsageError(
            f"destination {path} is a directory", "Name the file to write, or end the path with /."
        )
    probe = path if directory else path.parent
    while True:
        try:
            st = probe.stat()
            break
        except (FileNotFoundError, NotADirectoryError):
            if probe.parent == probe:
                return
            probe = probe.parent
        except OSError as exc:
            raise LocalIOError(f"cannot reach {probe}: {exc.strerror}", PERMISSION_HINT) from exc
    if not stat.S_ISDIR(st.st_mode):
        raise UsageError(
            f"cannot write {path}: {probe} is a file, not a directory",
            "Pick a destination whose parent directories are directories (or move the file away).",
        )
    if not os.access(probe, os.W_OK | os.X_OK):
        raise LocalIOError(f"cannot write in {probe}: permission denied", PERMISSION_HINT)


class LocalReader(Reader):
    def __init__(self, file: Path, offset: int, length: int | None) -> None:
        st = file.stat()
        self.size = st.st_size
        self.mtime = st.st_mtime
        self._file = file
        self._offset = offset
        self._length = st.st_size - offset if length is None else length

    async def chunks(self) -> AsyncIterator[bytes]:
        with open(self._file, "rb") as fh:
            fh.seek(self._offset)
            left = self._length
            while left > 0:
                data = fh.read(min(CHUNK, left))
                if not data:
                    raise LocalIOError(f"{self._file}: file shrank while being read")
                left -= len(data)
                yield data


_Dir = tuple[Path, str, frozenset[tuple[int, int]]]
"""A directory still to walk: where it is, its path + "/", the inodes above it."""
_Child = Entry | _Dir


class LocalStore(Store):
    tally: Tally
    mtime_precision = 1e-6
    lists_safe_paths = os.sep == "/"  # directory entries: no "/", "." or ".." names (on Windows, "\\")
    # The bytes are here: any digest is one read of the file away, S3's multipart ETag too.
    digests = frozenset({MD5, SHA256, S3_ETAG})

    def __init__(
        self,
        root: Path,
        *,
        part_size: int = 8 * 1024 * 1024,
        parts_in_flight: int = 4,
        follow_links: bool = False,
    ) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self.root = root
        self.follow_links = follow_links
        """List symlinked directories as directories (transfer sources; never a tree that
        housekeeping deletes in, nor a destination)."""
        self.warnings: list[str] = []
        """What listing skipped, for the result (symlink loops)."""
        self.url = str(root)
        self.display_prefix = str(root).rstrip("/") + "/"
        self.part_size = part_size
        """Download range size (ranged GETs of a large object)."""
        self.parts_in_flight = parts_in_flight
        self.tally = Tally()
        """Downloads verified against the source's digest, or not (runctl.integrity)."""

    def _file(self, path: str) -> Path:
        if safe_relpath(path) is None:
            raise UsageError(f"refusing unsafe path {path!r}", "Paths must stay inside the destination.")
        return self.root / path

    def local_file(self, path: str) -> Path | None:
        return self._file(path)

    async def digest(self, entry: Entry, spec: DigestSpec) -> str | None:
        # Hashing a checkpoint takes seconds: off the event loop, as the planner runs
        # several checks at once.
        return await asyncio.to_thread(file_digest, str(self._file(entry.path)), spec)

    async def list(self) -> AsyncIterator[Entry]:
        """Every regular file below the root, in key order (see stores.ordering), as the
        walk goes: memory holds the directories on the current path, not the tree. With
        ``follow_links`` (a transfer's source, as ``aws s3 cp`` does), symlinked
        directories are listed as directories; one that leads back to a directory it
        sits in is a loop, not followed, and named in ``warnings``."""
        require_directory(self.root)
        root_st = self.root.stat()
        # The (dev, inode) of each directory from the root down: kept only when links
        # are followed, to tell a loop from a second way in.
        chain = frozenset({(root_st.st_dev, root_st.st_ino)}) if self.follow_links else frozenset()
        stack: list[Iterator[_Child]] = [self._children(self.root, "", chain)]
        while stack:
            item = next(stack[-1], None)
            if item is None:
                stack.pop()
            elif isinstance(item, Entry):
                yield item
            else:
                stack.append(self._children(*item))

    def _children(self, folder: Path, rel: str, chain: frozenset[tuple[int, int]]) -> Iterator[_Child]:
        """One directory's files and subdirectories, in the order their paths sort: a
        subdirectory sorts as its name + "/", so ``a-b`` comes before everything in ``a/``
        and ``a0`` after it, as in S3's order of whole keys."""
        follow = self.follow_links
        found: list[tuple[str, _Child]] = []
        try:
            it = os.scandir(folder)
        except OSError as exc:
            raise LocalIOError(f"cannot read directory {folder}: {exc.strerror}") from exc
        with it:
            for de in it:
                name = rel + de.name
                try:
                    if de.is_dir(follow_symlinks=False):
                        inside = chain
                        if follow:
                            st = de.stat(follow_symlinks=False)
                            inside = chain | {(st.st_dev, st.st_ino)}
                        found.append((de.name + "/", (Path(de.path), name + "/", inside)))
                    elif de.is_file() and not is_temporary(de.name):
                        st = de.stat()
                        found.append((de.name, Entry(name, st.st_size, st.st_mtime, ctime=st.st_ctime)))
                    elif follow and de.is_symlink() and not os.path.exists(de.path):
                        target = os.readlink(de.path)
                        self.warnings.append(f"skipping {de.path}: a broken symlink (-> {target})")
                    elif follow and de.is_symlink() and de.is_dir():
                        st = de.stat()
                        inode = (st.st_dev, st.st_ino)
                        if inode in chain:
                            self.warnings.append(
                                f"not following {de.path} -> {os.readlink(de.path)}: "
                                "a symlink loop (it leads back to a directory it is in)"
                            )
                        else:
                            found.append((de.name + "/", (Path(de.path), name + "/", chain | {inode})))
                except OSError:
                    continue  # vanished or dangling symlink between scandir and stat
        found.sort(key=lambda pair: pair[0])
        return (item for _, item in found)

    async def stat(self, path: str) -> Entry | None:
        try:
            st = self._file(path).stat()
        except FileNotFoundError:
            return None
        if not os.path.isfile(self._file(path)):
            return None
        return Entry(path, st.st_size, st.st_mtime, ctime=st.st_ctime)

    async def open(
        self, path: str, offset: int = 0, length: int | None = None, version: str | None = None
    ) -> Reader:
        try:
            return LocalReader(self._file(path), offset, length)
        except FileNotFoundError as exc:
            raise NotFoundError(f"local file vanished: {self._file(path)}") from exc

    def _in_thread(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run blocking file-system work off the event loop. Creating a file costs about
        0.5 ms of kernel time here; done inline it would serialise a many-file download."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=IO_THREADS, thread_name_prefix="runctl-io")
        return asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None

    async def write(self, path: str, src: Store, entry: Entry, progress: ProgressFn) -> None:
        final = self._file(path)
        tmp = final.parent / f".{final.name[:100]}{TMP_MARK}{secrets.token_hex(4)}"
        partial: Partial | None = None
        try:
            src_file = src.local_file(entry.path)
            if src_file is not None:
                await self._in_thread(_copy_file, src_file, tmp, final)
                progress(entry.size)
                return
            first = await src.open(entry.path, 0, None if entry.size <= self.part_size else self.part_size)
            expected = first.expected
            if first.size <= self.part_size:
                # Small file: gather it (bounded by the part size), then one thread hop
                # creates, writes, hashes, stamps and renames it (unless the digest differs).
                chunks = [c async for c in first.chunks()]
                mtime = first.mtime if first.mtime is not None else entry.mtime
                actual = await self._in_thread(_write_whole, tmp, final, chunks, mtime, expected)
                if expected is None:
                    self.tally.unverified += 1
                elif actual is None:
                    self.tally.verified += 1
                else:  # the digest differs: an error, unless the source disowns it
                    await self._verify(src, entry, final, expected, actual)
                    await self._in_thread(os.replace, tmp, final)
                progress(sum(len(c) for c in chunks))
                return
            await self._in_thread(_make_parent, final)
            hasher = None
            if expected is not None:
                hasher = hasher_for(expected, first.size, self.part_size, sequential=first.whole)
            if first.whole:  # the source ignored the range: this one stream is the file
                mtime, actual = await self._stream_whole(tmp, entry, first, progress, hasher)
            else:
                if first.version is not None:
                    identity = {
                        "source": f"{src.url}{entry.path}",
                        "version": first.version,
                        "size": first.size,
                        "range": self.part_size,
                    }
                    partial = await self._in_thread(Partial.claim, final, identity)
                    if partial is not None:
                        tmp = partial.data
                mtime, actual = await self._fill_parts(tmp, src, entry, first, progress, hasher, partial)
            if expected is None or actual is None:
                self.tally.unverified += 1
            elif actual != expected.value:
                await self._verify(src, entry, final, expected, actual)
            else:
                self.tally.verified += 1
            os.utime(tmp, (mtime, mtime))
            os.replace(tmp, final)
            if partial is not None:
                partial.discard()
        except BaseException as exc:
            if partial is not None and not isinstance(exc, _START_OVER):
                partial.keep()  # interrupted, or the network failed: the next run resumes
            elif partial is not None:
                partial.discard()
            else:
                with contextlib.suppress(OSError):  # e.g. the parent is not a directory
                    tmp.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise LocalIOError(f"cannot write {final}: {exc.strerror or exc}") from exc
            raise

    async def _verify(self, src: Store, entry: Entry, final: Path, expected: Expected, actual: str) -> None:
        """``actual`` differs from the digest the source vouched for: an IntegrityError,
        unless the source, asked again, disowns it (an ETag that is no MD5)."""
        if expected.recheck is not None and not await expected.recheck():
            self.tally.disowned += 1
            return
        what = f"download of {src.url}{entry.path} to {final}"
        raise mismatch(what, expected.spec, actual, expected)

    async def _stream_whole(
        self, tmp: Path, entry: Entry, reader: Reader, progress: ProgressFn, hasher: WriteHasher | None
    ) -> tuple[float, str | None]:
        """Write one stream that holds the whole file; returns the mtime and the digest."""
        fd = await self._in_thread(os.open, tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        offset = 0
        actual = None
        try:
            async for chunk in reader.chunks():
                await self._in_thread(_pwrite_all, fd, chunk, offset, hasher)
                offset += len(chunk)
                progress(len(chunk))
            if offset != reader.size:
                raise LocalIOError(f"{entry.path}: got {offset:,} of {reader.size:,} bytes", "Run it again.")
            if hasher is not None:
                actual = await self._in_thread(hasher.result, fd, offset)
        finally:
            os.close(fd)
        return (reader.mtime if reader.mtime is not None else entry.mtime), actual

    async def _fill_parts(
        self,
        tmp: Path,
        src: Store,
        entry: Entry,
        first: Reader,
        progress: ProgressFn,
        hasher: WriteHasher | None,
        partial: Partial | None = None,
    ) -> tuple[float, str | None]:
        """Large file: several ranged reads in flight into one pre-sized file, each range
        hashed as it is written; returns the mtime and the digest. With ``partial``, the
        ranges an earlier run wrote are reused (those whose bytes still check out) and
        each range written is recorded there."""
        size = first.size
        actual = None
        flags = os.O_RDWR | os.O_CREAT | (0 if partial is not None else os.O_TRUNC)
        fd = await self._in_thread(os.open, tmp, flags, 0o644)
        try:
            os.ftruncate(fd, size)
            reused = await self._reuse(fd, partial, size, hasher) if partial is not None else set()
            if reused:
                done = sum(min(self.part_size, size - offset) for offset in reused)
                self.tally.resumed += 1
                self.tally.resumed_bytes += done
                progress(done)
            gate = asyncio.Semaphore(self.parts_in_flight)

            async def part(offset: int) -> None:
                async with gate:
                    if offset == 0:
                        reader = first  # already open: its response is the first part
                    else:  # of the same version as the first: a rewrite mid-download is refused
                        length = min(self.part_size, size - offset)
                        reader = await src.open(entry.path, offset, length, version=first.version)
                    start, crc = offset, (0 if partial is not None else None)
                    shared = _journal_crc_is(hasher) if crc is not None else None
                    feed = None if shared is not None else hasher
                    async for chunk in reader.chunks():
                        # Copying into the page cache costs ~0.4 ms per MiB, an MD5 ~1.4, a
                        # CRC ~0.05: done in a thread, overlapping with receiving the others.
                        crc = await self._in_thread(_pwrite_all, fd, chunk, offset, feed, crc)
                        offset += len(chunk)
                        progress(len(chunk))
                    if partial is not None and crc is not None:
                        partial.finished(start, offset - start, crc)
                        if shared is not None:
                            shared.add(start, offset, crc)

            async with unwrap_groups(), asyncio.TaskGroup() as tg:
                for offset in range(0, size, self.part_size):
                    if offset not in reused:
                        tg.create_task(part(offset))
            if hasher is not None:
                actual = await self._in_thread(hasher.result, fd, size)
        finally:
            os.close(fd)
        return (first.mtime if first.mtime is not None else entry.mtime), actual

    async def _reuse(self, fd: int, partial: Partial, size: int, hasher: WriteHasher | None) -> set[int]:
        """The offsets of the ranges an earlier run wrote whose bytes still have the CRC it
        recorded (each then fed to ``hasher`` as if just written): not fetched again."""

        async def check(offset: int, length: int, crc: int) -> int | None:
            good = await self._in_thread(_reusable, fd, offset, length, crc, hasher)
            return offset if good else None

        ranges = [
            (offset, length, crc)
            for offset, (length, crc) in partial.done.items()
            if offset % self.part_size == 0 and offset < size and length == min(self.part_size, size - offset)
        ]
        found = await asyncio.gather(*(check(*r) for r in ranges))
        return {offset for offset in found if offset is not None}

    async def delete(self, paths: Iterable[str]) -> None:
        for path in paths:
            try:
                self._file(path).unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise LocalIOError(f"cannot delete {self._file(path)}: {exc.strerror}") from exc


def _make_parent(final: Path) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)


def _copy_file(src: Path, tmp: Path, final: Path) -> None:
    _make_parent(final)
    shutil.copyfile(src, tmp)
    shutil.copystat(src, tmp)
    os.replace(tmp, final)


def _write_whole(
    tmp: Path, final: Path, chunks: list[bytes], mtime: float, expected: Expected | None
) -> str | None:
    """Write, stamp and rename a small file; with ``expected``, hash it first and, when the
    digest differs, leave it at ``tmp`` and return the digest (the caller decides)."""
    _make_parent(final)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    os.utime(tmp, (mtime, mtime))
    if expected is not None:
        actual = digest_of(chunks, expected.spec)
        if actual != expected.value:
            return actual
    os.replace(tmp, final)
    return None


def _pwrite_all(
    fd: int, chunk: bytes, offset: int, hasher: WriteHasher | None = None, crc: int | None = None
) -> int | None:
    """Write ``chunk`` at ``offset`` and feed it to ``hasher``; returns ``crc`` (a CRC-32C
    so far, if one is kept) extended by it."""
    view = memoryview(chunk)
    at = offset
    while view:
        written = os.pwrite(fd, view, at)
        at += written
        view = view[written:]
    if hasher is not None:
        hasher.written(fd, chunk, offset)
    return None if crc is None else crc_extend(crc, chunk)


def _journal_crc_is(hasher: WriteHasher | None) -> RangeCRCs | None:
    """``hasher`` when the check is the CRC-32C the resume journal keeps of each range:
    then the journal's CRCs are handed to it, not computed twice."""
    return hasher if isinstance(hasher, RangeCRCs) and hasher.crc.kind == CRC32C else None


def _reusable(fd: int, offset: int, length: int, crc: int, hasher: WriteHasher | None) -> bool:
    if crc_of(fd, offset, length) != crc:
        return False  # torn or damaged since: fetched again
    shared = _journal_crc_is(hasher)
    if shared is not None:
        shared.add(offset, offset + length, crc)  # just checked: the bytes the file holds
    elif hasher is not None:
        at, end = offset, offset + length
        while at < end:
            data = os.pread(fd, min(CHUNK, end - at), at)
            hasher.written(fd, data, at)
            at += len(data)
    return True
