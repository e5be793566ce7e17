"""`runctl data load`: parse, call runctl.dataload, render.

Text mode prints the load's report line on stdout (the same line the generated script
ends with, so a script that hands the load to runctl on an instance reports the same
way) and a summary on stderr; ``-o json`` prints one document instead.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from .console import Console

if TYPE_CHECKING:
    from ..dataload.options import LoadOptions
    from ..dataload.result import LoadResult
    from ..filters import Shard
    from ..settings import Settings

DEST_HELP = "directory on the machine that loads (created if missing)"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .main import add_global_options
    from .remote_options import add_remote_options
    from .s3_cmds import add_filter_options

    data = sub.add_parser("data", help="put S3 datasets onto machines")
    data_sub = data.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)
    p = data_sub.add_parser(
        "load",
        help="fetch s3://BUCKET/PREFIX into DEST with runctl, s5cmd or the AWS CLI",
        description="Fetch the objects under s3://BUCKET/PREFIX into DEST, here or on instances, with the "
        "best tool there: runctl, else s5cmd, else the AWS CLI. --print-script shows the POSIX sh "
        "script that does it (for user-data or a Dockerfile).",
    )
    add_global_options(p, nested=True)
    p.add_argument("source", metavar="s3://BUCKET/PREFIX")
    p.add_argument("dest", metavar="DEST", help=DEST_HELP)
    p.add_argument(
        "--tool",
        choices=["auto", "runctl", "s5cmd", "aws"],
        default="auto",
        help="auto (default): runctl if installed, else s5cmd, else aws; here, auto is runctl",
    )
    p.add_argument("--print-script", action="store_true", help="print the sh script; run nothing")
    p.add_argument(
        "--delete",
        action="store_true",
        help="remove files under DEST that are not in the (filtered, sharded) source set; "
        "never files the rules exclude",
    )
    add_filter_options(p)
    p.add_argument(
        "--shard",
        metavar="I/N",
        help="load only shard I of N (0 <= I < N): rclone's --hash-filter partition of the keys",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--on", metavar="TARGET", help="load on this machine (host or instance id)")
    where.add_argument("--targets", metavar="T1,T2,...", help="load on each of these machines")
    add_remote_options(p)
    p.set_defaults(handler=cmd_load)


def cmd_load(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    from ..dataload.options import LoadOptions
    from ..filters import parse_shard

    shard = parse_shard(args.shard) if args.shard is not None else None
    options = LoadOptions.from_settings(
        settings, tool=args.tool, delete=args.delete, rules=tuple(args.filter_rules or ())
    )
    if args.print_script:
        return _print_script(args, options, shard, console)
    if args.on is not None or args.targets is not None:
        return _load_remotely(args, settings, options, shard, console)
    from ..aio import run
    from ..dataload.local import load_async
    from .progress import reporter_for

    with reporter_for(console, "load") as report:
        result = run(
            load_async(args.source, args.dest, options, shard=shard, settings=settings, reporter=report)
        )
    return render_load(console, result)


def _load_remotely(
    args: argparse.Namespace, settings: Settings, options: LoadOptions, shard: Shard | None, console: Console
) -> int:
    from ..aio import run
    from ..dataload.remote import load_on, load_on_targets
    from ..errors import UsageError
    from .remote_options import connect_options

    opts = connect_options(args, settings)
    if args.on is not None:
        return render_load(console, run(load_on(args.on, args.source, args.dest, options, opts, shard)))
    if shard is not None:
        raise UsageError(
            "--shard and --targets do not go together: with --targets, the k-th machine loads shard k",
            "Drop --shard, or load one shard with --on TARGET --shard I/N.",
        )
    result = run(load_on_targets(args.targets, args.source, args.dest, options, opts))
    if console.json:
        console.document(result.to_dict())
    else:
        from ..sizes import human_size

        for t in result.targets:
            where = f"{t.target} (shard {t.shard}, {t.via})"
            if t.ok:
                console.info(f"{where}: {t.files} files, {human_size(t.bytes)} in {t.seconds:.2f}s")
            else:
                message = t.error.message if t.error else "failed"
                console.err.write(f"{where}: error: {message}\n")
    if result.ok:
        return 0
    if not console.json:
        names = ", ".join(t.target for t in result.failed)
        console.err.write(f"error: the load failed on {names}\n")
    return 1


def _print_script(
    args: argparse.Namespace, options: LoadOptions, shard: Shard | None, console: Console
) -> int:
    from ..dataload.options import parse_source
    from ..dataload.script import load_script

    script = load_script(args.source, args.dest, options, shard)
    if console.json:
        console.document(
            {
                "ok": True,
                "command": "data load",
                "source": parse_source(args.source).url,
                "destination": args.dest,
                "tool": options.tool,
                "shard": str(shard) if shard else None,
                "script": script,
            }
        )
    else:
        console.out.write(script)
    return 0


def render_load(console: Console, result: LoadResult) -> int:
    """The JSON document, or the report line on stdout and a summary on stderr."""
    from ..dataload.report import format_report

    if console.json:
        console.document(result.to_dict())
    else:
        from ..sizes import human_size

        for warning in result.warnings:
            console.warn(warning)
        for failure in result.failed:
            console.err.write(f"error: {failure.path + ': ' if failure.path else ''}{failure.error}\n")
        shard = f" (shard {result.shard})" if result.shard else ""
        parts = [
            f"data load{shard}: {result.destination} holds {result.files} files, {human_size(result.bytes)}"
        ]
        if result.copied is not None:
            parts.append(f"{result.copied} copied")
        if result.deleted:
            parts.append(f"{result.deleted} deleted")
        if result.failed:
            parts.append(f"{len(result.failed)} failed")
        console.info(", ".join(parts) + f" in {result.seconds:.2f}s with {result.tool}")
        console.lines([format_report(result.report())])
    return 0 if result.ok else 1
