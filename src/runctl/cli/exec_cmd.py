"""`runctl exec TARGET -- COMMAND [ARG...]`: run a command on a machine, exit with its status."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from .console import Console

if TYPE_CHECKING:
    from ..settings import Settings

TARGET_HELP = (
    "[user@]host, an ssh config alias, ssh://..., or an EC2 instance id (i-0abc...); "
    "with :PATH the command runs in that directory"
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .main import add_global_options
    from .remote_options import add_remote_options

    p = sub.add_parser(
        "exec",
        help="run a command on a remote machine (SSH, or AWS SSM for instance ids)",
        description="Run COMMAND on TARGET and exit with its status. Over SSH its output streams as it "
        "comes; over SSM it is printed when the command ends (inline output is cut at 24,000/8,000 "
        "characters unless --ssm-output-s3 is set). One argument is a shell command line; several "
        "are passed exactly (each quoted).",
    )
    add_global_options(p, nested=True)
    p.add_argument("target", metavar="TARGET", help=TARGET_HELP)
    # The command after "--" is split off before parsing (cli.main), so that its own
    # options are never taken for runctl's; this entry is for --help.
    p.add_argument("_command", nargs="?", metavar="-- COMMAND [ARG...]", help="what to run (after --)")
    add_remote_options(p)
    p.set_defaults(handler=cmd_exec)


def cmd_exec(args: argparse.Namespace, settings: Settings | None, console: Console) -> int:
    from ..aio import run
    from ..remote.command import run_command
    from ..remote.target import parse_target
    from .remote_options import connect_options

    if args._command is not None:
        from ..errors import UsageError

        raise UsageError(
            f"put the command after --: runctl exec {args.target} -- {args._command} ...",
            "Everything after -- is passed to the remote command as is.",
        )
    argv = list(args.remote_command)
    target = parse_target(args.target)
    opts = connect_options(args, settings)
    if console.json:
        result = run(run_command(target, argv, opts))
        console.document(result.to_dict())
        return result.exit_status
    out = sys.stdout.buffer if console.out is sys.stdout else None
    err = sys.stderr.buffer if console.err is sys.stderr else None

    def to_out(chunk: bytes) -> None:
        if out is not None:
            out.write(chunk)
            out.flush()
        else:
            console.out.write(chunk.decode(errors="replace"))

    def to_err(chunk: bytes) -> None:
        if err is not None:
            err.write(chunk)
            err.flush()
        else:
            console.err.write(chunk.decode(errors="replace"))

    result = run(run_command(target, argv, opts, stdout=to_out, stderr=to_err))
    if result.truncated and result.via == "ssm":
        console.warn(
            f"the output from {result.target} was cut (SSM keeps 24,000 characters of stdout, 8,000 of "
            "stderr inline); pass --ssm-output-s3 s3://BUCKET/PREFIX for all of it"
        )
    if console.verbose:
        console.info(f"exit status {result.exit_status} via {result.via} in {result.seconds:.2f}s")
    return result.exit_status
