"""`runctl local-s3 start|stop|status`: a local S3-compatible server for trying runctl."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from .console import Console

if TYPE_CHECKING:
    from ..local_s3 import LocalS3
    from ..settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .main import add_global_options

    p = sub.add_parser("local-s3", help="run a local S3-compatible server (SeaweedFS)")
    p_sub = p.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)
    for name, help_text in (
        ("start", "start the server in the background and print its environment"),
        ("stop", "stop the server"),
        ("status", "say whether the server runs, and where"),
    ):
        leaf = p_sub.add_parser(name, help=help_text, description=help_text)
        add_global_options(leaf, nested=True)
        leaf.set_defaults(handler=cmd_local_s3, action=name)


def _describe(console: Console, server: LocalS3, state: str) -> None:
    if console.json:
        console.document(
            {
                "ok": True,
                "command": "local-s3",
                "state": state,
                "pid": server.pid,
                "endpoint": server.endpoint,
                "bucket": server.bucket,
                "env": server.env(),
                "data_dir": server.data_dir,
            }
        )
        return
    console.info(f"local S3 {state}: {server.endpoint} (pid {server.pid}, bucket s3://{server.bucket})")
    console.lines(f"export {k}={v}" for k, v in server.env().items())


def cmd_local_s3(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    from .. import local_s3

    if args.action == "start":
        server, new = local_s3.start_background()
        _describe(console, server, "started" if new else "already running")
    elif args.action == "stop":
        server = local_s3.stop_background()
        if console.json:
            console.document({"ok": True, "command": "local-s3", "state": "stopped", "pid": server.pid})
        else:
            console.lines([f"stopped local S3 (pid {server.pid})"])
    else:
        found = local_s3.status()
        if found is None:
            if console.json:
                console.document({"ok": True, "command": "local-s3", "state": "stopped"})
            else:
                console.lines(["local S3 is not running"])
            return 0
        _describe(console, found, "running")
    return 0
