"""git's own .gitignore matching, for trees that are not git work trees.

This follows what git does (checked against ``git ls-files -co --exclude-standard`` by
tests/unit/codesync/test_gitignore_vs_git.py), not pathspec's model, which matches whole
paths and lets ``dir/`` or ``dir/**`` match everything below a directory:

* A pattern matches one path: ``foo/`` only the directory foo, ``foo/**`` only what is
  inside foo (not foo itself). The last matching line of the deepest .gitignore with a
  match decides; a ``!`` line decides "keep".
* git walks the tree and does not enter a directory it excludes, so nothing below it can
  come back, whatever ``!`` lines say about paths inside (``build/`` then
  ``!build/keep``). A directory whose last match is a ``!`` line (``*`` then ``!*/``) is
  entered, and its contents are decided one by one.
* git compares bytes: names and patterns are matched as the latin-1 text of their bytes,
  so ``?`` and ``[a-z]`` see single bytes as git's wildmatch does.
* Not followed: ``core.ignorecase`` (git sets it on case-insensitive file systems, e.g.
  macOS). Without a repository there is no config to read; matching is case-sensitive.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

_NEVER = "(?!)"  # a regex that matches nothing (bad patterns, which git never matches)
_GLOB_SPECIAL = "*?[\\"
_MISS = -2
# wildmatch's [:name:] classes, with git's ASCII-only ctype (no \v or \f in "space").
_CLASSES = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "blank": " \\t",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "\\x21-\\x7e",
    "lower": "a-z",
    "print": "\\x20-\\x7e",
    "punct": "!-/:-@\\[-`{-~",
    "space": " \\t\\n\\r",
    "upper": "A-Z",
    "xdigit": "0-9A-Fa-f",
}


def byte_text(name: str) -> str:
    """``name``'s bytes (as the OS has them) as latin-1 text: one character per byte."""
    return name if name.isascii() else os.fsencode(name).decode("latin-1")


def _trim_trailing_spaces(line: str) -> str:
    """Drop trailing spaces unless backslash-escaped (a trailing lone backslash keeps all)."""
    last_space = -1
    i = 0
    while i < len(line):
        c = line[i]
        if c == " ":
            if last_space < 0:
                last_space = i
        elif c == "\\":
            i += 1
            if i == len(line):
                return line
            last_space = -1
        else:
            last_space = -1
        i += 1
    return line[:last_space] if last_space >= 0 else line


def _char(c: str) -> str:
    return f"\\x{ord(c):02x}"


def _bracket(p: str, i: int) -> tuple[str, int]:
    """The regex for the class starting at ``p[i] == "["`` and the index after it.
    As in wildmatch: ``!`` or ``^`` negates, a first ``]`` is literal, ``a-z`` ranges
    (a reversed one matches nothing), ``\\x`` escapes, ``[:alpha:]`` names; a class that
    never closes makes the whole pattern match nothing. No class matches ``/``."""
    j = i + 1
    negated = j < len(p) and p[j] in "!^"
    j += negated
    parts: list[str] = []
    slash = False  # can a positive class match "/"?
    prev: str | None = None
    first = True
    while True:
        if j >= len(p):
            return _NEVER, len(p)
        c = p[j]
        if c == "]" and not first:
            break
        first = False
        if c == "\\":
            j += 1
            if j >= len(p):
                return _NEVER, len(p)
            prev = p[j]
            parts.append(_char(prev))
            slash |= prev == "/"
        elif c == "-" and prev is not None and j + 1 < len(p) and p[j + 1] != "]":
            j += 1
            hi = p[j]
            if hi == "\\":
                j += 1
                if j >= len(p):
                    return _NEVER, len(p)
                hi = p[j]
            if prev <= hi:
                parts.append(f"{_char(prev)}-{_char(hi)}")
                slash |= prev <= "/" <= hi
            prev = None
        elif c == "[" and p.startswith(":", j + 1):
            end = p.find("]", j + 2)
            if end < 0:
                return _NEVER, len(p)
            if end == j + 2 or p[end - 1] != ":":
                prev = "["  # not a [:name:]: a literal "[", then go on after it
                parts.append(_char(prev))
            else:
                name = p[j + 2 : end - 1]
                if name not in _CLASSES:
                    return _NEVER, len(p)
                parts.append(_CLASSES[name])
                slash |= name in ("graph", "print", "punct")
                prev = None
                j = end
        else:
            prev = c
            parts.append(_char(c))
            slash |= c == "/"
        j += 1
    body = "".join(parts)
    if negated:
        return f"[^{body}/]", j + 1
    if not body:
        return _NEVER, j + 1
    return ("(?!/)" if slash else "") + f"[{body}]", j + 1


def _wildmatch(p: str, pathname: bool) -> str:
    """A regex for wildmatch pattern ``p``. With ``pathname`` (WM_PATHNAME), ``*`` and
    ``?`` stop at ``/`` and ``**`` spans directories when it is a whole component
    (at the pattern's start or after ``/``, and at its end or before ``/``)."""
    out: list[str] = []
    i = 0
    while i < len(p):
        c = p[i]
        if c == "\\":
            if i + 1 == len(p):
                return _NEVER  # a trailing backslash escapes nothing: git never matches
            out.append(_char(p[i + 1]))
            i += 2
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "*":
            j = i
            while j < len(p) and p[j] == "*":
                j += 1
            whole = pathname and j - i > 1 and (i == 0 or p[i - 1] == "/")
            if whole and j == len(p):
                out.append(".*")
            elif whole and p[j] == "/":
                out.append("(?:.*/)?")  # zero or more directories
                j += 1
            elif whole and p.startswith("\\/", j):
                out.append(".*")  # an escaped slash: no zero-directory shortcut in git
            else:
                out.append("[^/]*")
            i = j
        elif c == "[":
            part, i = _bracket(p, i)
            out.append(part)
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


@dataclass(frozen=True)
class Pattern:
    """One line of a .gitignore, compiled."""

    regex: str
    negative: bool
    dir_only: bool
    basename: bool  # no "/" in it: matched against the last path component


def parse_pattern(line: str) -> Pattern:
    """A .gitignore line (already trimmed; not a comment) as git's parse_path_pattern reads it."""
    negative = line.startswith("!")
    body = line[1:] if negative else line
    dir_only = body.endswith("/")
    if dir_only:
        body = body[:-1]
    if "/" not in body:
        return Pattern(_wildmatch(body, False), negative, dir_only, True)
    if body.startswith("/"):
        body = body[1:]
    # git compares the literal prefix (up to the first special character) by itself and
    # wildmatches only the rest, so a "**" right after that prefix counts as being at the
    # start of a pattern: "a**/b" matches "abc/x/b".
    n = 0
    while n < len(body) and body[n] not in _GLOB_SPECIAL:
        n += 1
    return Pattern("".join(map(_char, body[:n])) + _wildmatch(body[n:], True), negative, dir_only, False)


def parse_lines(data: bytes) -> list[Pattern]:
    """The patterns of a .gitignore file's bytes (git's add_patterns_from_buffer)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    patterns = []
    for raw in data.decode("latin-1").split("\n"):
        if not raw or raw.startswith("#"):
            continue
        line = raw.split("\0", 1)[0]  # git's lines are C strings
        if line.endswith("\r"):
            line = line[:-1]
        patterns.append(parse_pattern(_trim_trailing_spaces(line)))
    return patterns


class _Alternation:
    """Patterns as one regex, last line first, so a match names the deciding line."""

    def __init__(self, indexed: list[tuple[int, Pattern]]) -> None:
        ordered = indexed[::-1]
        self.regex = re.compile("|".join(f"({p.regex})" for _, p in ordered), re.DOTALL)
        self.index = [-1] + [i for i, _ in ordered]  # group number -> line number
        self.top = max(i for i, _ in indexed)

    def last(self, text: str) -> int:
        m = self.regex.fullmatch(text)
        return self.index[m.lastindex or 0] if m else -1


class IgnoreFile:
    """One .gitignore: decides paths relative to its own directory."""

    def __init__(self, patterns: list[Pattern]) -> None:
        self.patterns = patterns
        # (is_dir, basename) -> the alternation of those lines, compiled when first needed
        self._groups: dict[tuple[bool, bool], _Alternation | None] = {}
        self._names: dict[bool, dict[str, int]] = {False: {}, True: {}}  # basename results

    def _group(self, is_dir: bool, basename: bool) -> _Alternation | None:
        key = (is_dir, basename)
        if key not in self._groups:
            chosen = [
                (i, p)
                for i, p in enumerate(self.patterns)
                if p.basename == basename and (is_dir or not p.dir_only)
            ]
            self._groups[key] = _Alternation(chosen) if chosen else None
        return self._groups[key]

    def decide(self, prefix: str, name: str, is_dir: bool) -> bool | None:
        """True: excluded, False: kept (a ``!`` line), None: no line matches ``prefix + name``.
        Both are byte text (see ``byte_text``); ``prefix`` is "" or ends with "/"."""
        names = self._names[is_dir]
        best = names.get(name, _MISS)
        if best == _MISS:
            base = self._group(is_dir, True)
            best = names[name] = -1 if base is None else base.last(name)
        path = self._group(is_dir, False)
        if path is not None and path.top > best:
            best = max(best, path.last(prefix + name))
        return None if best < 0 else not self.patterns[best].negative


def read_ignore_file(
    path: str, follow: bool = False, seen: dict[bytes, IgnoreFile] | None = None
) -> IgnoreFile | None:
    """The file's patterns, or None when it is absent, unreadable or empty. In-tree
    .gitignore files that are symlinks are not read, as git (2.32+) does not. Files
    with the same bytes (vendored copies) share one compiled IgnoreFile via ``seen``."""
    flags = os.O_RDONLY | (0 if follow else getattr(os, "O_NOFOLLOW", 0))
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if seen is not None and data in seen:
        return seen[data]
    patterns = parse_lines(data)
    found = IgnoreFile(patterns) if patterns else None
    if seen is not None and found is not None:
        seen[data] = found
    return found


@dataclass(frozen=True)
class Folder:
    """The .gitignore files that decide the entries of one directory, deepest first,
    each with the directory's path relative to that file's own directory."""

    chain: tuple[tuple[IgnoreFile, str], ...]

    def excluded(self, name: str, is_dir: bool) -> bool:
        """Is this entry excluded by its own name (its parents already being kept)?"""
        if name == ".git":
            return True  # git never lists or enters anything named .git
        if not self.chain:
            return False  # no .gitignore above (no conversion of the name: 60,000 a push)
        key = byte_text(name)
        for ignore, prefix in self.chain:
            decided = ignore.decide(prefix, key, is_dir)
            if decided is not None:
                return decided
        return False


class GitIgnoreTree:
    """Nested .gitignore files of a tree (plus ``.git/info/exclude``, lowest priority),
    read lazily and cached per directory."""

    def __init__(self, root: Path) -> None:
        self.root = str(root)
        self._folders: dict[str, Folder] = {}
        self._dir_ignored: dict[str, bool] = {}
        self._seen: dict[bytes, IgnoreFile] = {}
        exclude = read_ignore_file(os.path.join(self.root, ".git", "info", "exclude"), follow=True)
        self._exclude = ((exclude, ""),) if exclude else ()

    def folder(self, path: str) -> Folder:
        """The matcher for the entries of directory ``path`` ("" for the root)."""
        found = self._folders.get(path)
        if found is not None:
            return found
        missing = [path]  # built parents first, without recursion: trees can be deep
        while missing[-1] and (parent := missing[-1].rpartition("/")[0]) not in self._folders:
            missing.append(parent)
        for folder in reversed(missing):
            own = read_ignore_file(os.path.join(self.root, folder, ".gitignore"), seen=self._seen)
            if folder:
                parent, _, name = folder.rpartition("/")
                step = byte_text(name) + "/"
                chain = tuple((f, prefix + step) for f, prefix in self._folders[parent].chain)
            else:
                chain = self._exclude
            self._folders[folder] = Folder(((own, ""), *chain) if own else chain)
        return self._folders[path]

    def dir_ignored(self, path: str) -> bool:
        """Is directory ``path`` excluded, by itself or by a parent?"""
        found = self._dir_ignored.get(path)
        if found is not None:
            return found
        parent, excluded = "", False
        for name in path.split("/"):  # from the top: below an excluded one, all are
            current = f"{parent}/{name}" if parent else name
            known = self._dir_ignored.get(current)
            if known is None:
                known = excluded or self.folder(parent).excluded(name, True)
                self._dir_ignored[current] = known
            parent, excluded = current, known
        return excluded

    def ignored(self, path: str, is_dir: bool = False) -> bool:
        """Would git leave ``path`` out (as an untracked path of a fresh repository)?"""
        if is_dir:
            return self.dir_ignored(path)
        parent, _, name = path.rpartition("/")
        return (bool(parent) and self.dir_ignored(parent)) or self.folder(parent).excluded(name, False)
