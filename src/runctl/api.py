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
from .stores.local import LocalStore
from .stores.s3 import S3Store, parse_s3_url


def as_dir_prefix(key: str) -> str:
    return key if not key or key.endswith("/") else key + "/"


def s3_store(url: str, settings: Settings, *, directory: bool) -> tuple[S3Store, str]:
    """An S3 store for ``url`` and the key relative to it ("" for directory stores)."""
    loc = parse_s3_url(url)
    prefix = as_dir_prefix(loc.key) if directory else ""
    store = S3Store(
        loc.bucket,
        prefix,
        settings.s3_options(),
        part_size=settings.part_size,
        parts_in_flight=settings.parts_in_flight,
    )
    return store, ("" if directory else loc.key)


def local_store(root: Path, settings: Settings) -> LocalStore:
    return LocalStore(root, part_size=settings.download_range, parts_in_flight=settings.parts_in_flight)


def exec_options(settings: Settings) -> ExecOptions:
    return ExecOptions(concurrency=settings.concurrency)


async def transfer(
    command: str,
    plan: Plan,
    src: Store,
    dst: Store,
    settings: Settings,
    reporter: Reporter,
    dry_run: bool = False,
) -> TransferResult:
    """Execute ``plan`` (or only describe it, for a dry run) and wrap the outcome."""
    if dry_run:
        outcome = Outcome(skipped=len(plan.skips))
    else:
        outcome = await execute(plan, src, dst, reporter, exec_options(settings))
    result = TransferResult.from_outcome(command, src.url, dst.url, plan, outcome)
    result.dry_run = dry_run
    return result


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
    path = Path(src)
    if not path.exists():
        raise NotFoundError(f"local path not found: {path}", "Check the path.")
    if recursive:
        if not path.is_dir():
            raise UsageError(f"{path} is a file, not a directory", "Drop --recursive to upload one file.")
        store, _ = s3_store(dst, settings, directory=True)
        source = local_store(path, settings)
        plan = await plan_copy_all(source.list(), where=str(path) + "/", allow=allow)
    else:
        if path.is_dir():
            raise UsageError(f"{path} is a directory", "Add --recursive to upload a directory.")
        store, key = s3_store(dst, settings, directory=False)
        if not key or key.endswith("/"):
            key += path.name
        source = local_store(path.parent, settings)
        entry = await source.stat(path.name)
        assert entry is not None
        plan = plan_single(entry, key)
    async with store:
        return await transfer("upload", plan, source, store, settings, reporter)


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
    target = Path(dst)
    if recursive:
        store, _ = s3_store(src, settings, directory=True)
        async with store:
            plan = await plan_copy_all(store.list(), where=store.url, allow=allow)
            if not plan.actions and not plan.warnings:
                raise NotFoundError(
                    f"no objects found under {store.url}", "Check the prefix with `runctl s3 list`."
                )
            return await transfer("download", plan, store, local_store(target, settings), settings, reporter)
    store, key = s3_store(src, settings, directory=False)
    if not key or key.endswith("/"):
        raise UsageError(f"{src} names a prefix, not an object", "Add --recursive to download a prefix.")
    async with store:
        entry = await store.stat(key)
        if entry is None:
            raise NotFoundError(f"object not found: {src}", "Use --recursive to download a prefix.")
        if str(dst).endswith(("/", os.sep)) or target.is_dir():
            target = target / key.rsplit("/", 1)[-1]
        return await transfer(
            "download",
            plan_single(entry, target.name),
            store,
            local_store(target.parent, settings),
            settings,
            reporter,
        )


async def list_async(url: str, *, recursive: bool = False, settings: Settings | None = None) -> ListResult:
    settings = settings or Settings()
    store, _ = s3_store(url, settings, directory=True)
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
    from .engine.compare import Checksum, Compare, SizeAndMtime
    from .engine.sync_plan import plan_sync

    settings = settings or Settings()
    src_s, dst_s = str(src), str(dst)
    if src_s.startswith("s3://") == dst_s.startswith("s3://"):
        raise UsageError(
            f"sync needs one local directory and one s3:// location, got {src_s!r} and {dst_s!r}",
            "e.g. runctl s3 sync ./data s3://bucket/data",
        )
    if size_only and checksum:
        raise UsageError("--size-only and --checksum cannot be combined")
    if src_s.startswith("s3://"):
        source: Store = s3_store(src_s, settings, directory=True)[0]
        target: Store = local_store(Path(dst_s), settings)
    else:
        if not Path(src_s).is_dir():
            raise NotFoundError(f"local directory not found: {src_s}", "sync copies a directory's contents.")
        source = local_store(Path(src_s), settings)
        target = s3_store(dst_s, settings, directory=True)[0]
    compare: Compare
    if checksum:
        compare = Checksum(source, target, settings.part_size)
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
        return await transfer("sync", plan, source, target, settings, reporter, dry_run=dry_run)


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
