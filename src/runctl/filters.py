"""Path filters. Two pattern languages, kept apart on purpose:

* gitignore rules (pathspec's GitIgnoreSpec): S3 ``--exclude`` / ``--include`` and the
  code-push file selection. Flags are kept in command-line order and the last matching
  one wins, so ``--exclude 'data/' --include 'data/small/'`` re-includes what the
  exclude dropped, exactly as a ``!pattern`` line does in a .gitignore.
* fnmatch globs: checkpoint housekeeping's ``--pattern`` (``*`` crosses ``/``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Literal

Rule = tuple[Literal["exclude", "include"], str]
PathTest = Callable[[str], bool]


# -- gitignore rules ------------------------------------------------------------------
def gitignore_spec(lines: Iterable[str]) -> Any:
    """A GitIgnoreSpec of .gitignore-style lines (pathspec is imported only when needed)."""
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines(lines)


def rule_lines(rules: Iterable[Rule]) -> list[str]:
    """Flags as .gitignore lines: an include is a negated (``!``) pattern."""
    return [p if kind == "exclude" else "!" + p for kind, p in rules]


@dataclass(frozen=True)
class Filter:
    rules: tuple[Rule, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "_spec", gitignore_spec(rule_lines(self.rules)))

    def __bool__(self) -> bool:
        return bool(self.rules)

    def __call__(self, path: str) -> bool:
        """True when ``path`` (relative, "/"-separated) passes the filter."""
        return not self._spec.match_file(path)  # type: ignore[attr-defined]


def from_flags(order: Sequence[Rule] = ()) -> Filter:
    """A filter from ``--exclude`` / ``--include`` flags in command-line order."""
    return Filter(tuple(order))


# -- fnmatch globs --------------------------------------------------------------------
def everything(path: str) -> bool:
    return True


def glob_selector(patterns: Sequence[str] | None, default: PathTest = everything) -> PathTest:
    """Match relative paths against any of ``patterns`` (fnmatch, case-sensitive, ``*``
    crosses ``/``); with no patterns, use ``default``."""
    if not patterns:
        return default
    globs = tuple(patterns)
    return lambda path: any(fnmatchcase(path, g) for g in globs)
