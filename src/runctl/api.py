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
from .engine.execute import ExecOptions, Outcome, execute
from .engine.plan import PathFilter, Plan, plan_copy_all, plan_single
from .errors import NotFoundError, UsageError
from .events import Reporter, null_reporter
from .results import ListResult, TransferResult
from .settings import Settings
from .stores.base import Store
from .stores.factory import LOCAL, open_s3, open_store, scheme_of


@dataclass
class Job:
    """A planned transfer: what to do, and between which two (open) stores."""

    plan: Plan
    src: Store
    dst: Store


def exec_options(settings: Settings) -> ExecOptions:
    return ExecOptions(concurrency=settings.concurrency)


async def transfer(
    command: str, job: Job, settings: Settings, reporter: Reporter, dry_run: bool = False
) -> TransferResult:
    """Execute the job's plan (or only describe it, for a dry run) and wrap the outcome."""
    if dry_run:
        outcome = Outcome(skipped=len(job.plan.skips))
    else:
        outcome = await execute(job.plan, job.src, job.dst, reporter, exec_options(settings))
    result = TransferResult.from_outcome(command, job.src.url, job.dst.url, job.plan, outcome)
    result.dry_run = dry_run
    return result


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
    store, key = open_store(dst, settings, directory=recursive, scheme="s3")
    source, name = open_store(path, settings, directory=recursive, scheme=LOCAL)
    async with source, store:
        if recursive:
            plan = await plan_copy_all(source.list(), where=str(path) + "/", allow=allow)
        else:
            if not key or key.endswith("/"):
                key += path.name
            entry = await source.stat(name)
            assert entry is not None
            plan = plan_single(entry, key)
        yield Job(plan, source, store)


@asynccontextmanager
async def prepare_download(
    src: str,
    dst: str | os.PathLike[str],
    *,
    recursive: bool = False,
    settings: Settings,
    allow: PathFilter | None = None,
) -> AsyncIterator[Job]:
    target = Path(dst)
    if recursive:
        store, _ = open_store(src, settings, directory=True, scheme="s3")
        async with store:
            plan = await plan_copy_all(store.list(), where=store.url, allow=allow)
            if not plan.actions and not plan.warnings:
                raise NotFoundError(
                    f"no objects found under {store.url}", "Check the prefix with `runctl s3 list`."
                )
            local, _ = open_store(target, settings, directory=True, scheme=LOCAL)
            async with local:
                yield Job(plan, store, local)
        return
    store, key = open_store(src, settings, directory=False, scheme="s3")
    if not key or key.endswith("/"):
        raise UsageError(f"{src} names a prefix, not an object", "Add --recursive to download a prefix.")
    async with store:
        entry = await store.stat(key)
        if entry is None:
            raise NotFoundError(f"object not found: {src}", "Use --recursive to download a prefix.")
        if str(dst).endswith(("/", os.sep)) or target.is_dir():
            target = target / key.rsplit("/", 1)[-1]
        local, name = open_store(target, settings, directory=False, scheme=LOCAL)
        async with local:
            yield Job(plan_single(entry, name), store, local)


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
    if scheme_of(src) == LOCAL and not Path(src).is_dir():
        raise NotFoundError(f"local directory not found: {src}", "sync copies a directory's contents.")
    source, _ = open_store(src, settings, directory=True)
    target, _ = open_store(dst, settings, directory=True)
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
            checks_in_flight=max(32, settings.concurrency),
        )
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
    """Blocking twin of :func:`sync_async`."""
    return run(sync_async(src, dst, **kwargs))


def upload(src: str | os.PathLike[str], dst: str, **kwargs: Any) -> TransferResult:
    """Upload a file, or a directory with ``recursive=True``, to ``s3://bucket/prefix``."""
    return run(upload_async(src, dst, **kwargs))


def download(src: str, dst: str | os.PathLike[str], **kwargs: Any) -> TransferResult:
    """Download an object, or a prefix with ``recursive=True``, to a local path."""
    return run(download_async(src, dst, **kwargs))


def list_objects(url: str, **kwargs: Any) -> ListResult:
    """List objects under ``s3://bucket/prefix`` (one level, or all with ``recursive=True``)."""
    return run(list_async(url, **kwargs))
