"""`runctl demo`: start the embedded S3 server, round-trip a sample dataset, verify, stop."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from .console import Console

if TYPE_CHECKING:
    from ..settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .main import add_global_options

    p = sub.add_parser("demo", help="round-trip a sample dataset through a local S3 server")
    add_global_options(p, nested=True)
    p.set_defaults(handler=cmd_demo)


def cmd_demo(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    from ..demo import run_demo
    from ..sizes import human_size
    from .progress import reporter_for

    console.info("starting a local S3 server (SeaweedFS weed mini) on loopback...")
    with reporter_for(console, "demo") as report:
        result = run_demo(settings, report)
    if console.json:
        console.document(result.to_dict())
        return 0
    for step in (result.upload, result.download):
        rate = step.bytes / step.seconds if step.seconds else 0.0
        console.lines(
            [
                f"{step.command:>8}: {step.files} files, {human_size(step.bytes)} in {step.seconds:.2f}s"
                f" ({human_size(rate)}/s)"
            ]
        )
    console.lines(
        [
            f"  listed: {result.listed} objects",
            f"verified: {result.verified} files identical",
            f"endpoint: {result.endpoint} (stopped)",
        ]
    )
    return 0
