"""Include/exclude filters with gitignore semantics (pathspec's GitIgnoreSpec).

Flags are kept in command-line order and the last matching one wins, so
``--exclude 'data/' --include 'data/small/'`` re-includes what the exclude dropped,
exactly as a ``!pattern`` line does in a .gitignore.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Rule = tuple[Literal["exclude", "include"], str]


@dataclass(frozen=True)
class Filter:
    rules: tuple[Rule, ...] = ()

    def __post_init__(self) -> None:
        import pathspec

        lines = [p if kind == "exclude" else "!" + p for kind, p in self.rules]
        object.__setattr__(self, "_spec", pathspec.GitIgnoreSpec.from_lines(lines))

    def __bool__(self) -> bool:
        return bool(self.rules)

    def __call__(self, path: str) -> bool:
        """True when ``path`` (relative, "/"-separated) passes the filter."""
        return not self._spec.match_file(path)  # type: ignore[attr-defined]


def from_flags(
    excludes: Sequence[str] = (), includes: Sequence[str] = (), order: Sequence[Rule] = ()
) -> Filter:
    """Build a filter. ``order`` (as parsed from argv) wins; else excludes then includes."""
    if order:
        return Filter(tuple(order))
    return Filter(tuple([("exclude", p) for p in excludes] + [("include", p) for p in includes]))
