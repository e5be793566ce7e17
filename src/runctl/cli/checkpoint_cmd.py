"""`runctl checkpoint list|cleanup DIR`: the local twin of `runctl s3 cleanup`.

Looks recursively under DIR; by default only files with a common checkpoint extension
(.pt .pth .ckpt .safetensors .bin .pkl .h5 .onnx); --pattern GLOB overrides that.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from .console import Console

if TYPE_CHECKING:
    from ..housekeeping.ranking import CleanupResult, RankedList
    from ..settings import Settings
    from ..stores.base import Store


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .main import add_global_options
    from .s3_housekeeping import add_cleanup_args

    top = sub.add_parser("checkpoint", help="list and prune checkpoints in a local directory")
    ck_sub = top.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)

    p = ck_sub.add_parser("list", help="list checkpoints under DIR, newest first")
    add_global_options(p, nested=True)
    p.add_argument("dir", type=Path, metavar="DIR")
    p.add_argument(
        "--pattern",
        action="append",
        metavar="GLOB",
        help="match paths below DIR (fnmatch; repeatable; default: checkpoint extensions)",
    )
    p.set_defaults(handler=cmd_list)

    p = ck_sub.add_parser("cleanup", help="delete all but the newest N checkpoints under DIR")
    add_global_options(p, nested=True)
    p.add_argument("dir", type=Path, metavar="DIR")
    add_cleanup_args(p, "directory", "checkpoint extensions")
    p.set_defaults(handler=cmd_cleanup)


def _store(root: Path, settings: Settings) -> Store:
    from ..stores.factory import LOCAL, open_store

    return open_store(root, settings, directory=True, scheme=LOCAL)[0]


def cmd_list(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    from ..aio import run
    from ..housekeeping.ranking import has_checkpoint_extension, list_ranked

    result: RankedList = run(list_ranked(_store(args.dir, settings), args.pattern, has_checkpoint_extension))
    if console.json:
        console.document(result.to_dict())
        return 0
    from ..sizes import human_size
    from .s3_housekeeping import entry_line

    console.lines(entry_line(result.naming.prefix + e.path, e) for e in result.entries)
    console.info(f"{len(result.entries)} checkpoints, {human_size(sum(e.size for e in result.entries))}")
    return 0


def cmd_cleanup(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    from ..aio import run
    from ..housekeeping.ranking import cleanup, has_checkpoint_extension
    from .s3_housekeeping import render_cleanup

    result: CleanupResult = run(
        cleanup(
            _store(args.dir, settings),
            args.keep_last_n,
            patterns=args.pattern,
            default=has_checkpoint_extension,
            dry_run=args.dry_run,
            force=args.force,
        )
    )
    return render_cleanup(console, result)
