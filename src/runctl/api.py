"""The public Python API: plain functions over the copy engine.

Each ``*_async`` coroutine has a blocking twin that runs its own event loop, so a
training script can call ``runctl.upload(...)`` from a background thread.

Path rules follow ``aws s3 cp``:
* ``--recursive`` treats the S3 side as a directory prefix (``s3://b/p`` = ``s3://b/p/``)
  and the local side as a directory whose *contents* map to keys below the prefix.
* A single file uploaded to a prefix ending in ``/`` (or to a bare bucket) keeps its
  name; otherwise the key is taken as given. A single key downloaded into an existing
  directory (or a path ending in ``/``) keeps its base name.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .aio import run
from .background import tracked
from .engine.execute import ExecOptions, Outcome, execute
from .engine.plan import PathFilter, Plan, plan_copy_all, plan_single
from .errors import NotFoundError, UsageError
from .events import Event, FileFailed, Reporter, null_reporter
from .results import ListResult, TransferResult
from .settings import Settings
from .stores.base import Entry, Store
from .stores.factory import LOCAL, open_local, open_s3, open_store, scheme_of
from .stores.local import LocalStore, check_destination, require_directory, require_readable_file


@dataclass
class Job:
    """A planned transfer: what to do, and between which two (open) stores."""

    plan: Plan
    src: Store
    dst: Store
    single: bool = False
    """One named file (not --recursive, not sync): its failure is the command's error."""


def exec_options(settings: Settings) -> ExecOptions:
    return ExecOptions(
        concurrency=settings.concurrency, transfer_peak=settings.part_size * settings.parts_in_flight
    )


async def transfer(
    command: str, job: Job, settings: Settings, reporter: Reporter, dry_run: bool = False
) -> TransferResult:
    """Execute the job's plan (or only describe it, for a dry run) and wrap the outcome."""
    if dry_run:
        outcome = Outcome(skipped=job.plan.skip_count)
    else:
        if job.single:
            reporter = _failures_raised(reporter)
        outcome = await execute(job.plan, job.src, job.dst, reporter, exec_options(settings))
        if job.single and outcome.failed and outcome.failed[0].exc is not None:
            # Nothing else was asked for: the one file's error (with its own exit code and
            # hint) is the command's, not "1 failed" in a summary.
            raise outcome.failed[0].exc
    result = TransferResult.from_outcome(command, job.src.url, job.dst.url, job.plan, outcome)
    result.dry_run = dry_run
    if job.dst.tally is not None:
        result.resumed_bytes = job.dst.tally.resumed_bytes
    return result


def _failures_raised(reporter: Reporter) -> Reporter:
    """The reporter of a single-file transfer: its failure is raised as the command's error,
    so it is not also reported as one failed item."""

    def report(event: Event) -> None:
        if not isinstance(event, FileFailed):
            reporter(event)

    return report


# Planning is separate from executing so that another executor (--use-s5cmd) can run
# the same plan, or at least announce its size.
@asynccontextmanager
async def prepare_upload(
    src: str | os.PathLike[str],
    dst: str,
    *,
    recursive: bool = False,
    settings: Settings,
    allow: PathFilter | None = None,
) -> AsyncIterator[Job]:
    path = Path(src)
    if not path.exists():
        raise NotFoundError(f"local path not found: {path}", "Check the path.")
    if recursive and not path.is_dir():
        raise UsageError(f"{path} is a file, not a directory", "Drop --recursive to upload one file.")
    if not recursive and path.is_dir():
        raise UsageError(f"{path} is a directory", "Add --recursive to upload a directory.")
    if recursive:
        require_directory(path)
    else:
        require_readable_file(path)
    from .stores.s3 import require_key_prefix, require_object_key

    store, key = open_s3(dst, settings, directory=recursive)
    if recursive:
        require_key_prefix(store.bucket, store.prefix)
    else:
        if not key or key.endswith("/"):
            key += path.name
        require_object_key(store.bucket, key)
    source, name = open_local(path, settings, directory=recursive)
    source.follow_links = True  # as `aws s3 cp`: a symlinked directory's files go up too
    async with source, store:
        if recursive:
            plan = await plan_copy_all(source.list(), where=str(path) + "/", allow=allow)
            plan.warnings.extend(source.warnings)
        else:
            entry = await source.stat(name)
            assert entry is not None
            plan = plan_single(entry, key)
        yield Job(plan, source, store, single=not recursive)


@asynccontextmanager
async def prepare_download(
    src: str,
    dst: str | os.PathLike[str],
    *,
    recursive: bool = False,
    settings: Settings,
    allow: PathFilter | None = None,
) -> AsyncIterator[Job]:
    from .stores.s3 import require_object_key

    target = Path(dst)
    if recursive:
        store, _ = open_s3(src, settings, directory=True)
        check_destination(target, directory=True)  # before any request: one error, not one per key
        async with store:
            plan = await plan_copy_all(store.list(), where=store.url, allow=allow)
            if not plan.actions and not plan.warnings:
                raise NotFoundError(
                    f"no objects found under {store.url}", "Check the prefix with `runctl s3 list`."
                )
            local, _ = open_local(target, settings, directory=True)
            async with local:
                yield Job(plan, store, local)
        return
    store, key = open_s3(src, settings, directory=False)
    if not key or key.endswith("/"):
        raise UsageError(f"{src} names a prefix, not an object", "Add --recursive to download a prefix.")
    require_object_key(store.bucket, key)
    if str(dst).endswith(("/", os.sep)) or target.is_dir():
        target = target / key.rsplit("/", 1)[-1]
    check_destination(target, directory=False)
    async with store:
        entry = await store.stat(key)
        if entry is None:
            raise NotFoundError(f"object not found: {src}", "Use --recursive to download a prefix.")
        local, name = open_local(target, settings, directory=False)
        async with local:
            yield Job(plan_single(entry, name), store, local, single=True)


@asynccontextmanager
async def prepare_sync(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    delete: bool = False,
    size_only: bool = False,
    checksum: bool = False,
    settings: Settings,
    allow: PathFilter | None = None,
) -> AsyncIterator[Job]:
    from .engine.compare import Checksum, Compare, SizeAndMtime
    from .engine.sync_plan import plan_sync

    if (scheme_of(src) == LOCAL) == (scheme_of(dst) == LOCAL):
        raise UsageError(
            f"sync needs one local directory and one s3:// location, got {str(src)!r} and {str(dst)!r}",
            "e.g. runctl s3 sync ./data s3://bucket/data",
        )
    if size_only and checksum:
        raise UsageError("--size-only and --checksum cannot be combined")
    if scheme_of(src) == LOCAL:
        require_directory(Path(src))
    else:
        check_destination(Path(dst), directory=True)
    source, _ = open_store(src, settings, directory=True)
    target, _ = open_store(dst, settings, directory=True)
    from .stores.s3 import S3Store, require_key_prefix

    if isinstance(target, S3Store):
        require_key_prefix(target.bucket, target.prefix)
    if isinstance(source, LocalStore):
        source.follow_links = True
    compare: Compare
    if checksum:
        compare = Checksum(source, target)
    elif size_only:
        compare = Compare(source, target)
    else:
        compare = SizeAndMtime(source, target)
    async with source, target:
        plan = await plan_sync(
            source,
            target,
            compare,
            delete=delete,
            allow=allow,
            checks_in_flight=max(32, settings.concurrency or 0),
            record_skips=False,  # counted: a dry run lists what would change, as aws s3 sync
        )
        if isinstance(source, LocalStore):
            plan.warnings.extend(source.warnings)
        yield Job(plan, source, target)


async def upload_async(
    src: str | os.PathLike[str],
    dst: str,
    *,
    recursive: bool = False,
    settings: Settings | None = None,
    reporter: Reporter = null_reporter,
    allow: PathFilter | None = None,
) -> TransferResult:
    settings = settings or Settings()
    async with prepare_upload(src, dst, recursive=recursive, settings=settings, allow=allow) as job:
        return await transfer("upload", job, settings, reporter)


async def download_async(
    src: str,
    dst: str | os.PathLike[str],
    *,
    recursive: bool = False,
    settings: Settings | None = None,
    reporter: Reporter = null_reporter,
    allow: PathFilter | None = None,
) -> TransferResult:
    settings = settings or Settings()
    async with prepare_download(src, dst, recursive=recursive, settings=settings, allow=allow) as job:
        return await transfer("download", job, settings, reporter)


async def list_async(url: str, *, recursive: bool = False, settings: Settings | None = None) -> ListResult:
    settings = settings or Settings()
    store, _ = open_s3(url, settings, directory=True)  # S3 only: one level needs list_dir
    async with store:
        if recursive:
            objects = [e async for e in store.list()]
            return ListResult(url, objects, key_prefix=store.prefix)
        dirs, objects = await store.list_dir()
        if not dirs and not objects:
            # Probe the bucket so a missing bucket is an error, not an empty listing.
            await store.stat(".runctl-probe")
        return ListResult(url, objects, dirs, key_prefix=store.prefix)


async def iter_objects(url: str, *, settings: Settings | None = None) -> AsyncIterator[tuple[str, Entry]]:
    """Every object under ``url`` as (key, entry), in key order, as the listing arrives:
    ``list_async(recursive=True)`` without holding the listing (a million keys)."""
    store, _ = open_s3(url, settings or Settings(), directory=True)
    async with store:
        async for entry in store.list():
            yield store.prefix + entry.path, entry


async def sync_async(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    delete: bool = False,
    dry_run: bool = False,
    size_only: bool = False,
    checksum: bool = False,
    settings: Settings | None = None,
    reporter: Reporter = null_reporter,
    allow: PathFilter | None = None,
) -> TransferResult:
    """Make ``dst`` match ``src``: a local directory and an ``s3://`` prefix, either way.

    Only new and changed files are copied (see engine/compare.py for "changed");
    ``delete`` removes destination files missing from the source, never files the
    filter excludes.
    """
    settings = settings or Settings()
    prepared = prepare_sync(
        src, dst, delete=delete, size_only=size_only, checksum=checksum, settings=settings, allow=allow
    )
    async with prepared as job:
        return await transfer("sync", job, settings, reporter, dry_run=dry_run)


def sync(src: str | os.PathLike[str], dst: str | os.PathLike[str], **kwargs: Any) -> TransferResult:
    """Blocking twin of :func:`sync_async`. Interpreter exit waits for it (from any thread)."""
    with tracked():
        return run(sync_async(src, dst, **kwargs))


def upload(src: str | os.PathLike[str], dst: str, **kwargs: Any) -> TransferResult:
    """Upload a file, or a directory with ``recursive=True``, to ``s3://bucket/prefix``.
    Interpreter exit waits for it, even in a daemon thread; to upload while a script
    goes on, use :func:`runctl.upload_in_background`."""
    with tracked():
        return run(upload_async(src, dst, **kwargs))


def download(src: str, dst: str | os.PathLike[str], **kwargs: Any) -> TransferResult:
    """Download an object, or a prefix with ``recursive=True``, to a local path."""
    return run(download_async(src, dst, **kwargs))


def list_objects(url: str, **kwargs: Any) -> ListResult:
    """List objects under ``s3://bucket/prefix`` (one level, or all with ``recursive=True``)."""
    return run(list_async(url, **kwargs))
