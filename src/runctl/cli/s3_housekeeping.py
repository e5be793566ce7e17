"""`runctl s3 cleanup|watch|review`: checkpoint housekeeping on an S3 prefix.

The work is done by runctl.housekeeping (store-agnostic); this module parses, calls,
and renders. `runctl checkpoint ...` (local directories) reuses the renderers here.

`watch` runs until Ctrl-C and then exits 130 (the status of errors.Interrupted and of
any Ctrl-C'd Unix command) with no error record, so an NDJSON stream ends cleanly.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .console import Console

if TYPE_CHECKING:
    from ..housekeeping.ranking import CleanupResult
    from ..housekeeping.review import Review
    from ..settings import Settings
    from ..stores.base import Entry, Store

Leaf = Callable[[str, str], argparse.ArgumentParser]


def register_s3(leaf: Leaf) -> None:
    p = leaf("cleanup", "delete all but the newest N objects under s3://BUCKET/PREFIX")
    p.add_argument("url", metavar="s3://BUCKET/PREFIX")
    add_cleanup_args(p, "prefix", "every object")
    p.set_defaults(handler=cmd_cleanup)

    p = leaf("abort-uploads", "list or abort unfinished multipart uploads under s3://BUCKET/PREFIX")
    p.add_argument("url", metavar="s3://BUCKET/PREFIX")
    p.add_argument("--older-than", metavar="AGE", help="only uploads started longer ago, e.g. 1d, 12h, 30m")
    p.add_argument("--dry-run", action="store_true", help="list what would be aborted; abort nothing")
    p.set_defaults(handler=cmd_abort_uploads)

    p = leaf("watch", "print objects that appear, change or disappear under s3://BUCKET/PREFIX")
    p.add_argument("url", metavar="s3://BUCKET/PREFIX")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between polls (default 5)")
    p.add_argument("--max-polls", type=int, default=None, help="stop after N polls (default: until Ctrl-C)")
    p.set_defaults(handler=cmd_watch)

    p = leaf("review", "summarise a prefix: counts and sizes of checkpoints, models, logs")
    p.add_argument("url", metavar="s3://BUCKET/PREFIX")
    p.add_argument("--detailed", action="store_true", help="list the objects of each category")
    p.set_defaults(handler=cmd_review)


def add_cleanup_args(p: argparse.ArgumentParser, where: str, default: str) -> None:
    p.add_argument(
        "--keep-last-n", type=int, required=True, metavar="N", help="how many of the newest to keep"
    )
    p.add_argument("--dry-run", action="store_true", help="show what would be deleted; delete nothing")
    p.add_argument(
        "--pattern",
        action="append",
        metavar="GLOB",
        help=f"only consider paths below the {where} matching GLOB (fnmatch; repeatable; default: {default})",
    )
    p.add_argument("--force", action="store_true", help="allow --keep-last-n 0 (delete every match)")


def _store(url: str, settings: Settings) -> Store:
    from ..stores.factory import open_store

    return open_store(url, settings, directory=True, scheme="s3")[0]


def entry_line(name: str, entry: Entry) -> str:
    when = datetime.fromtimestamp(entry.mtime, UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"{when} {entry.size:>12} {name}"


# -- cleanup --------------------------------------------------------------------
def cmd_cleanup(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    from ..aio import run
    from ..housekeeping.ranking import check_keep, cleanup

    check_keep(args.keep_last_n, args.force)
    store = _store(args.url, settings)

    async def go() -> CleanupResult:
        async with store:
            return await cleanup(
                store, args.keep_last_n, patterns=args.pattern, dry_run=args.dry_run, force=args.force
            )

    return render_cleanup(console, run(go()))


def render_cleanup(console: Console, result: CleanupResult) -> int:
    if console.json:
        console.document(result.to_dict())
        return 0
    from ..sizes import human_size

    verb = "(dry run) would delete" if result.dry_run else "deleted"
    naming = result.naming
    console.lines(f"{verb} {entry_line(naming.prefix + e.path, e)}" for e in result.deleted)
    tag, did = ("cleanup (dry run)", "would delete") if result.dry_run else ("cleanup", "deleted")
    summary = (
        f"{tag}: {len(result.kept) + len(result.deleted)} matching of {result.listed} listed;"
        f" keep {len(result.kept)}, {did} {len(result.deleted)} ({human_size(result.deleted_bytes)})"
    )
    if result.kept:
        summary += f"; newest kept: {naming.prefix + result.kept[0].path}"
    console.info(summary)
    return 0


# -- abort-uploads --------------------------------------------------------------
def cmd_abort_uploads(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    from ..aio import run
    from ..housekeeping.uploads import AbortResult, abort_uploads, parse_age, started
    from ..stores.s3 import S3Store

    older_than = parse_age(args.older_than) if args.older_than is not None else None
    store = _store(args.url, settings)
    assert isinstance(store, S3Store)

    async def go() -> AbortResult:
        async with store:
            return await abort_uploads(store, older_than=older_than, dry_run=args.dry_run)

    result = run(go())
    if console.json:
        console.document(result.to_dict(store.prefix))
        return 0
    verb = "(dry run) would abort" if result.dry_run else "aborted"
    console.lines(f"{verb} {started(u)} {store.prefix + u.path} ({u.upload_id})" for u in result.uploads)
    spared = result.found - len(result.uploads)
    tail = f", {spared} younger than --older-than left alone" if spared else ""
    tag, did = (
        ("abort-uploads (dry run)", "would be aborted") if result.dry_run else ("abort-uploads", "aborted")
    )
    console.info(f"{tag}: {len(result.uploads)} of {result.found} unfinished uploads {did}{tail}")
    return 0


# -- watch ----------------------------------------------------------------------
def cmd_watch(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    from ..aio import run
    from ..errors import Interrupted, NetworkError
    from ..housekeeping.location import naming_for
    from ..housekeeping.watch import watch

    store = _store(args.url, settings)
    naming = naming_for(store)

    def retry(exc: NetworkError, delay: float) -> None:
        console.warn(f"{exc.message}; retrying in {delay:g}s")

    def started(poll: int) -> None:
        if poll == 0:
            console.info(f"watching {store.url} every {args.interval:g}s (Ctrl-C to stop)")

    async def go() -> None:
        async with store:
            changes = watch(
                store, interval=args.interval, max_polls=args.max_polls, on_poll=started, on_retry=retry
            )
            async for ch in changes:
                console.emit_line(
                    ch.to_dict(naming), f"{ch.event:<7} {entry_line(naming.prefix + ch.entry.path, ch.entry)}"
                )

    try:
        run(go())
    except KeyboardInterrupt:
        console.info("watch: stopped")
        return Interrupted.exit_code
    return 0


# -- review ---------------------------------------------------------------------
def cmd_review(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    from ..aio import run
    from ..housekeeping.review import review

    store = _store(args.url, settings)

    async def go() -> Review:
        async with store:
            return await review(store, detailed=args.detailed)

    return render_review(console, run(go()))


def render_review(console: Console, result: Review) -> int:
    if console.json:
        console.document(result.to_dict())
        return 0
    from ..housekeeping.ranking import rank
    from ..sizes import human_size

    naming = result.naming
    lines = [f"{result.url}: {result.count} objects, {human_size(result.bytes)}"]
    for name, tally in result.categories.items():
        lines.append(f"  {name:<12} {tally.count:>8} {human_size(tally.bytes):>12}")
        if result.detailed:
            lines.extend(f"      {entry_line(naming.prefix + e.path, e)}" for e in rank(tally.entries))
    for label, entry in (("newest", result.newest), ("oldest", result.oldest), ("largest", result.largest)):
        if entry is not None:
            lines.append(f"{label + ':':<9}{entry_line(naming.prefix + entry.path, entry)}")
    console.lines(lines)
    return 0
