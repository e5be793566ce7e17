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


# -- hash partitions (shards) -----------------------------------------------------------
# ``--shard I/N`` is rclone's ``--hash-filter I/N`` (fs/filter/filter.go, IncludeRemote):
# the path relative to the root (not the leaf name) is NFC-normalised and lower-cased
# rune by rune (Go's strings.ToLower: simple case mapping, no context), hashed with MD5,
# and the first 8 bytes, read as a little-endian unsigned integer, modulo N give the
# shard. Directories are not hashed (rclone lists every directory in every shard); only
# files are partitioned. Unlike rclone, which reduces K modulo N (``3/3`` is ``0/3``),
# an index outside 0..N-1 is refused: it is almost always a typo in a fan-out.


def _simple_lower(text: str) -> str:
    """Lower-case one character at a time, as Go's strings.ToLower does. ``str.lower``
    differs in two ways that move paths between shards: U+0130 (capital I with dot above)
    becomes two characters instead of "i", and a final capital sigma becomes the final
    small sigma (U+03C2) instead of the ordinary one (U+03C3)."""
    return "".join("i" if ch == "\u0130" else ch.lower() for ch in text)


def shard_of(path: str, total: int) -> int:
    """The shard (0..total-1) of a relative, "/"-separated path, as rclone computes it."""
    import hashlib
    import unicodedata

    folded = _simple_lower(unicodedata.normalize("NFC", path))
    digest = hashlib.md5(folded.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "little") % total


@dataclass(frozen=True)
class Shard:
    """A path predicate: True for the paths in shard ``index`` of ``total``."""

    index: int
    total: int

    def __post_init__(self) -> None:
        from .errors import UsageError

        if self.total < 1 or not 0 <= self.index < self.total:
            raise UsageError(
                f"bad shard {self.index}/{self.total}: need 0 <= I < N",
                "e.g. --shard 0/4 ... --shard 3/4 for four machines",
            )

    def __call__(self, path: str) -> bool:
        return shard_of(path, self.total) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.total}"


def parse_shard(text: str) -> Shard:
    """``"I/N"`` as a Shard; anything else (``3/3``, ``-1/2``, ``a/b``, ``1/0``) is a UsageError."""
    import re

    from .errors import UsageError

    match = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if match is None:
        raise UsageError(f"bad shard {text!r}: expected I/N with 0 <= I < N", "e.g. --shard 0/4")
    return Shard(int(match.group(1)), int(match.group(2)))


# -- gitignore rules as regular expressions ------------------------------------------------
# For a machine without pathspec (a training box's bare python3): the rules are shipped
# as the regexes pathspec itself matches with, plus how it ranks matches. That ranking
# is not "the last match wins": a match of the file itself beats a match of one of its
# directories, and pathspec releases differ on an exclude that matches a directory after
# an include matched the file, so the installed release is asked (``precedence``).
DIR_MARK = "ps_d"
"""The group name pathspec gives the "/" after a directory match in its regexes."""

Precedence = Literal["file-match-wins", "in-order"]
"""file-match-wins: the last match of the file itself decides, else the last directory
match (pathspec >= 1.0). in-order: an exclude that matches a directory always wins, a
later include only when it matches at least as closely (pathspec 0.12)."""


def rule_regexes(rules: Sequence[Rule]) -> list[tuple[bool, str]]:
    """Each effective rule as ``(excludes, regex)``, in order: the pattern pathspec
    matches with (Python ``re`` syntax; a directory match sets the group ``DIR_MARK``).
    Rules that match nothing (empty patterns, comments) are dropped."""
    found: list[tuple[bool, str]] = []
    for pattern in gitignore_spec(rule_lines(rules)).patterns:
        regex = getattr(pattern, "regex", None)
        if pattern.include is None or regex is None:
            continue
        text = regex.pattern
        found.append((bool(pattern.include), text if isinstance(text, str) else text.decode()))
    return found


def precedence() -> Precedence:
    """How the installed pathspec ranks an exclude of a directory after an include of the file."""
    probe = Filter((("include", "d/f"), ("exclude", "d/")))
    return "file-match-wins" if probe("d/f") else "in-order"


def filter_passes(compiled: Sequence[tuple[bool, Any]], path: str, order: Precedence) -> bool:
    """What ``Filter(rules)(path)`` answers, from ``rule_regexes`` compiled with ``re``."""
    excluded, rank_so_far = False, 0
    for excludes, regex in compiled:
        match = regex.search(path)
        if match is None:
            continue
        rank = 1 if match.groupdict().get(DIR_MARK) else 2
        if order == "file-match-wins":
            if rank >= rank_so_far:
                excluded, rank_so_far = excludes, rank
        elif (excludes and rank == 1) or rank >= rank_so_far:
            excluded, rank_so_far = excludes, rank
    return not excluded
