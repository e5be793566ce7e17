"""`runctl code push`: parse, call codesync.push, render. asyncssh loads only here."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .console import Console

if TYPE_CHECKING:
    from ..codesync.push import PushResult
    from ..remote.target import SSHClient
    from ..settings import Settings

DEST_HELP = "[user@]host:path (host may be an ~/.ssh/config alias) or ssh://[user@]host[:port]/path"


class _OrderedRule(argparse.Action):
    """--exclude/--include share one list, in command-line order (last match wins)."""

    def __call__(
        self, parser: argparse.ArgumentParser, ns: argparse.Namespace, value: Any, option: str | None = None
    ) -> None:
        rules = list(getattr(ns, "rules", None) or [])
        rules.append((self.const, value))
        ns.rules = rules


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .main import add_global_options
    from .remote_options import add_remote_options

    code = sub.add_parser("code", help="push code to a remote machine over SSH")
    code_sub = code.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)
    p = code_sub.add_parser(
        "push",
        help="send a source tree (what git would consider) to DEST",
        description="Send LOCAL_DIR to DEST: new and changed files only, as one tar stream over one "
        "SSH connection. Uses .gitignore (or git itself), .runctlignore and default excludes.",
    )
    add_global_options(p, nested=True)
    p.add_argument("local_dir", type=Path, metavar="LOCAL_DIR")
    p.add_argument("dest", metavar="DEST", help=DEST_HELP)
    p.add_argument(
        "--mode",
        choices=["incremental", "full"],
        default="incremental",
        help="incremental (default): changed files only; full: send all into a staging dir, swap in",
    )
    p.add_argument(
        "--delete", action="store_true", help="remove remote files gone locally (never excluded ones)"
    )
    p.add_argument("--dry-run", action="store_true", help="show what would be sent and deleted")
    p.add_argument(
        "--exclude",
        action=_OrderedRule,
        const="exclude",
        dest="rules",
        metavar="PATTERN",
        help="gitignore-style pattern to leave out (repeatable)",
    )
    p.add_argument(
        "--include",
        action=_OrderedRule,
        const="include",
        dest="rules",
        metavar="PATTERN",
        help="re-add paths an earlier rule or .gitignore dropped (repeatable)",
    )
    p.add_argument("--watch", action="store_true", help="keep pushing changes until Ctrl-C")
    p.add_argument(
        "--compress",
        choices=["auto", "always", "never"],
        default="auto",
        help="gzip the stream (level 1, dense files stored as is); auto: unless the host is this machine",
    )
    add_remote_options(p)
    p.set_defaults(handler=cmd_push, rules=[], uses_settings=False)


def cmd_push(args: argparse.Namespace, settings: Settings | None, console: Console) -> int:
    from ..aio import run
    from ..codesync.push import PushOptions, push_async, watch_async
    from .progress import reporter_for
    from .remote_options import connect_options

    options = PushOptions(
        mode=args.mode,
        delete=args.delete,
        dry_run=args.dry_run,
        rules=tuple(args.rules or ()),
        compress=args.compress,
        ssh=connect_options(args, None)._replace(
            staging=args.staging or _configured(args, "ssm", "staging"),
            ssm_output_s3=args.ssm_output_s3 or _configured(args, "ssm", "output_s3"),
        ),
    )
    if args.watch:
        console.info(f"watching {args.local_dir} (Ctrl-C to stop)")
        run(watch_async(args.local_dir, args.dest, options, lambda r: _emit(console, r)))
        return 0
    with reporter_for(console, "push") as report:
        result = run(push_async(args.local_dir, args.dest, options, report))
    partial = 0 if result.ok else 1  # some files failed (each was reported as it failed)
    if console.json:
        console.document(result.to_dict())
        return partial
    if console.verbose:
        tools = " ".join(result.remote_tools) or "none"
        lister = result.lister or "nothing (a new directory)"
        console.info(f"remote: via {result.transport}, listed by {lister}, tools: {tools}")
    if result.dry_run or console.verbose:
        verb = "(dry run) would" if result.dry_run else ""
        console.lines(_listing(verb, "send", result.sent))
        console.lines(_listing(verb, "delete", result.deleted))
    console.lines([summary(result)])
    return partial


def ssh_client(args: argparse.Namespace) -> SSHClient:
    """--ssh-client, else RUNCTL_SSH_CLIENT, else ``ssh_client`` in the config file, else
    asyncssh. The settings module is not loaded for this: code push start-up is timed."""
    import os

    chosen = args.ssh_client or os.environ.get("RUNCTL_SSH_CLIENT") or _configured_client(args)
    if chosen not in (None, "asyncssh", "openssh"):
        from ..errors import UsageError

        raise UsageError(f"unknown ssh client {chosen!r}", "Use asyncssh or openssh.")
    return "openssh" if chosen == "openssh" else "asyncssh"


def _configured_client(args: argparse.Namespace) -> str | None:
    return _configured(args, "runctl", "ssh_client")


def _configured(args: argparse.Namespace, table: str, key: str) -> str | None:
    """``key`` of ``[table]`` in the config file, read without loading the settings."""
    from ..config_file import read_config

    values = read_config(getattr(args, "config", None)).get(table)
    value = values.get(key) if isinstance(values, dict) else None
    return value if isinstance(value, str) else None


def _listing(verb: str, what: str, paths: Sequence[str]) -> list[str]:
    return [f"{verb} {what} {p}".strip() for p in paths]


def _emit(console: Console, result: PushResult) -> None:
    console.emit_line(result.to_dict(), summary(result))


def summary(result: PushResult) -> str:
    from ..sizes import human_size

    head = "dry run: would send" if result.dry_run else "sent"
    parts = [f"{head} {len(result.sent)} files ({human_size(result.bytes)})"]
    if result.deleted:
        parts.append(f"{'would delete' if result.dry_run else 'deleted'} {len(result.deleted)}")
    parts.append(f"{result.unchanged} unchanged")
    if result.failed:
        parts.append(f"{len(result.failed)} failed")
    return f"{result.destination}: " + ", ".join(parts) + f" in {result.seconds:.2f}s ({result.mode})"
