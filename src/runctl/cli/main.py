"""Entry point: parse argv, build settings, run one command inside the error boundary.

Command families live in their own modules, each with ``register(subparsers)``; their
heavy imports (obstore, asyncssh, rich) happen inside handlers so ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn, TextIO

from .. import __version__
from ..errors import UsageError
from .console import Console, guarded

GLOBAL_HELP = "global options (also accepted after the subcommand)"

COMMAND_MODULES = {
    "s3": "s3_cmds",  # runctl s3 upload|download|list|sync|...
    "local-s3": "local_s3_cmd",  # runctl local-s3 start|stop|status
    "demo": "demo_cmd",  # runctl demo
    "code": "code_cmd",  # runctl code push
    "checkpoint": "checkpoint_cmd",  # runctl checkpoint list|cleanup
    "exec": "exec_cmd",  # runctl exec TARGET -- COMMAND
    "data": "data_cmd",  # runctl data load
}
"""Family -> module under runctl.cli exposing register(subparsers). One line per command family."""

TAKES_A_COMMAND = {"exec"}
"""Families whose arguments after ``--`` are a command to run elsewhere, passed as is."""

_VALUE_OPTIONS = (
    "--output",
    "--endpoint-url",
    "--profile",
    "--region",
    "--concurrency",
    "--part-size",
    "--config",
)
"""Global options that take a separate value (also matched when abbreviated, as argparse allows)."""


def add_global_options(parser: argparse.ArgumentParser, *, nested: bool) -> None:
    """Global options. On subcommands they default to SUPPRESS so they never overwrite
    a value given before the subcommand."""
    d = argparse.SUPPRESS if nested else None
    g = parser.add_argument_group(GLOBAL_HELP)
    g.add_argument("--output", "-o", choices=["text", "json"], default=d if nested else "text")
    g.add_argument("--endpoint-url", default=d, help="S3 endpoint (else AWS_ENDPOINT_URL[_S3])")
    g.add_argument("--profile", default=d, help="AWS profile (as with the AWS CLI)")
    g.add_argument("--region", default=d)
    g.add_argument(
        "--concurrency",
        type=int,
        default=d,
        help="transfers in flight (default: up to 256 small files, fewer large ones; see README)",
    )
    g.add_argument("--part-size", default=d, help="multipart part size, e.g. 8MiB")
    g.add_argument("--quiet", "-q", action="store_true", default=d if nested else False)
    g.add_argument("--no-progress", action="store_true", default=d if nested else False)
    g.add_argument("--config", type=Path, default=d, help="config file (TOML, [runctl] table)")
    g.add_argument("-v", "--verbose", action="count", default=d if nested else 0)


def family_of(argv: Sequence[str]) -> str | None:
    """The command family named in ``argv`` (skipping global options and their values),
    or None when there is none or it is not a known one."""
    skip = False
    for token in argv:
        if skip:
            skip = False
        elif token == "--":
            return None
        elif token.startswith("-"):
            skip = token == "-o" or (
                token.startswith("--")
                and "=" not in token
                and any(o.startswith(token) for o in _VALUE_OPTIONS)
            )
        else:
            return token if token in COMMAND_MODULES else None
    return None


class _Parser(argparse.ArgumentParser):
    """Usage errors become typed errors, so `-o json` reports them as JSON like any other."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}", f"See `{self.prog} --help`.")


def _wants_json(argv: Sequence[str]) -> bool:
    """Whether argv asks for JSON output, read before (or without) a successful parse."""
    for i, token in enumerate(argv):
        if token in ("-o", "--output") and argv[i + 1 : i + 2] == ["json"]:
            return True
        if token in ("--output=json", "-ojson"):
            return True
    return False


def build_parser(family: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or with ``family`` only that family's commands: registering
    every family costs ~15 ms, paid on each run (code push is timed against rsync)."""
    import importlib

    parser = _Parser(
        prog="runctl",
        description="Move code and data between your laptop, S3 and GPU machines.",
    )
    parser.add_argument("--version", action="version", version=f"runctl {__version__}")
    add_global_options(parser, nested=False)
    sub = parser.add_subparsers(dest="family", metavar="COMMAND", required=True)
    for name, module in COMMAND_MODULES.items():
        if family is None or name == family:
            importlib.import_module(f"{__package__}.{module}").register(sub)
    return parser


def run_cli(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run one command and return its exit code (tests call this in-process)."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    family = family_of(arguments)
    command: list[str] = []
    if family in TAKES_A_COMMAND and "--" in arguments:
        # Everything after the first "--" is the remote command, options included:
        # argparse would otherwise read a remote "-l" as runctl's own.
        cut = arguments.index("--")
        arguments, command = arguments[:cut], arguments[cut + 1 :]
    parser = build_parser(family)
    try:
        args = parser.parse_args(arguments)
        args.remote_command = command
    except SystemExit as exc:  # argparse: --help or --version
        return int(exc.code or 0)
    except UsageError as exc:
        console = Console(
            output="json" if _wants_json(arguments) else "text", out=out or sys.stdout, err=err or sys.stderr
        )
        console.error(exc)
        return exc.exit_code
    console = Console(
        output=args.output,
        quiet=args.quiet,
        verbose=args.verbose,
        progress=not args.no_progress,
        out=out or sys.stdout,
        err=err or sys.stderr,
    )

    def invoke() -> int:
        handler = getattr(args, "handler", None)
        if handler is None:
            raise UsageError("missing subcommand")
        if not getattr(args, "uses_settings", True):
            # e.g. code push: no S3 option applies, and loading them costs ~6 ms of a
            # command that is timed against rsync.
            code: int = handler(args, None, console)
            return code
        from ..settings import load_settings

        settings = load_settings(
            args.config,
            {
                "endpoint_url": args.endpoint_url,
                "profile": args.profile,
                "region": args.region,
                "concurrency": args.concurrency,
                "part_size": args.part_size,
            },
        )
        code = handler(args, settings, console)
        return code

    return guarded(console, invoke)


def main() -> None:
    # Start-up creates ~45,000 long-lived objects (modules, classes, functions); at the
    # default threshold (700) the cycle collector sweeps them ~60 times for nothing:
    # ~10 ms of a code push, which is timed against rsync. Collect rarely instead; a
    # command's own garbage is mostly acyclic (bytes, entries) and freed by refcount.
    gc.set_threshold(50_000, 20, 20)
    code = run_cli()
    # End the process directly: a Rust runtime thread (obstore) can otherwise wake
    # during interpreter shutdown and abort the process after the work is done.
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        code = code or 1
    os._exit(code)
