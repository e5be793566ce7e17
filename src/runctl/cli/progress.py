"""Turn engine events into a progress bar (stderr, terminals only) and warnings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..events import BytesMoved, Event, FileDone, FileFailed, Notice, Planned, Reporter
from .console import Console


@contextmanager
def reporter_for(console: Console, label: str) -> Iterator[Reporter]:
    """A reporter that draws a bar when a person is watching, and prints warnings."""
    bar: Any = None
    task: Any = None
    if console.show_progress():
        # rich is imported only here: piped and JSON runs never pay for it.
        from rich.console import Console as RichConsole
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TextColumn("{task.fields[files]}"),
            TimeRemainingColumn(),
            console=RichConsole(file=console.err),
            transient=True,
        )
    done_files = 0
    total_files = 0

    def report(event: Event) -> None:
        nonlocal task, done_files, total_files
        if isinstance(event, Notice):
            if bar is not None:
                bar.console.print(f"warning: {event.message}", style="yellow", markup=False)
            else:
                console.warn(event.message)
        elif isinstance(event, FileFailed):
            line = f"failed: {event.path}: {event.error}"
            if bar is not None:
                bar.console.print(line, style="red", markup=False)
            elif not console.json:
                console.err.write(line + "\n")
        elif bar is None:
            if isinstance(event, FileDone) and console.verbose and not console.json:
                console.err.write(f"{label}: {event.path}\n")
        elif isinstance(event, Planned):
            total_files = event.files
            task = bar.add_task(label, total=event.bytes, files=f"0/{total_files} files")
        elif isinstance(event, BytesMoved) and task is not None:
            bar.advance(task, event.nbytes)
        elif isinstance(event, FileDone) and task is not None:
            done_files += 1
            bar.update(task, files=f"{done_files}/{total_files} files")

    if bar is not None:
        bar.start()
    try:
        yield report
    finally:
        if bar is not None:
            bar.stop()
