"""The one writer for everything the CLI says: results on stdout, diagnostics on stderr,
in a human form or as JSON; and the one error boundary that picks exit codes."""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

from ..errors import Interrupted, RunctlError


@dataclass
class Console:
    output: str = "text"
    quiet: bool = False
    verbose: int = 0
    progress: bool = True
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)

    @property
    def json(self) -> bool:
        return self.output == "json"

    def show_progress(self) -> bool:
        """Bars only for a person: text output, a terminal on stderr, not silenced."""
        return self.progress and not self.quiet and not self.json and self.err.isatty()

    def document(self, doc: dict[str, Any]) -> None:
        """The single JSON document of a command (JSON mode only)."""
        self.out.write(json.dumps(doc, ensure_ascii=False) + "\n")

    def document_with_array(self, doc: dict[str, Any], key: str, items: Iterable[str]) -> None:
        """``doc`` with one more field, ``key``, last: an array written item by item from
        ``items`` (each already JSON), so a million-item array is never one list."""
        self.out.write(json.dumps(doc, ensure_ascii=False)[:-1] + f', "{key}": [')
        for i, item in enumerate(items):
            self.out.write((", " if i else "") + item)
        self.out.write("]}\n")

    def emit_line(self, doc: dict[str, Any], text: str) -> None:
        """One streaming record: an NDJSON object or a text line (for watch-style commands)."""
        self.out.write((json.dumps(doc, ensure_ascii=False) if self.json else text) + "\n")
        self.out.flush()

    def lines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.out.write(line + "\n")

    def info(self, message: str) -> None:
        if not self.quiet and not self.json:
            self.err.write(message + "\n")

    def warn(self, message: str) -> None:
        if not self.json:
            self.err.write(f"warning: {message}\n")

    def error(self, exc: RunctlError) -> None:
        if self.json:
            self.document({"ok": False, "error": exc.to_dict()})
            return
        self.err.write(f"error: {exc.message}\n")
        if exc.hint:
            self.err.write(f"hint: {exc.hint}\n")


def guarded(console: Console, fn: Callable[[], int]) -> int:
    """Run a command; map every error to its exit code. No traceback unless -v."""
    try:
        return fn()
    except RunctlError as exc:
        if console.verbose:
            traceback.print_exc(file=console.err)
        console.error(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        console.error(Interrupted("interrupted"))
        return Interrupted.exit_code
    except Exception as exc:  # a bug: still one line, still structured
        if console.verbose:
            traceback.print_exc(file=console.err)
        wrapped = RunctlError(
            f"internal error: {type(exc).__name__}: {exc}",
            "This is a bug in runctl; rerun with -v for a traceback and report it.",
        )
        console.error(wrapped)
        return 1
