"""Which files a code push sends: what git would consider, minus default and user excludes.

Layers, each able to override the one before (last match wins, as in a .gitignore):
1. git's view: tracked + untracked-not-ignored (``git ls-files -co --exclude-standard``)
   inside a work tree, else the tree's nested .gitignore files read with pathspec;
2. default excludes (``.git/``, ``__pycache__/``, virtualenvs, ...);
3. a ``.runctlignore`` file at the root;
4. ``--exclude`` / ``--include`` flags in command-line order.
An ``--include`` (or a ``!pattern`` in .runctlignore) re-adds paths the earlier layers
dropped, e.g. a small gitignored ``data/`` directory.
"""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import NotFoundError
from ..filters import Rule, rule_lines
from ..filters import gitignore_spec as _spec
from ..stores.base import Entry
from ..stores.local import TMP_MARK, LocalStore

DEFAULT_EXCLUDES = (
    ".git/",
    "__pycache__/",
    "*.pyc",
    ".venv/",
    "venv/",
    "node_modules/",
    ".mypy_cache/",
    ".pytest_cache/",
    ".DS_Store",
)
IGNORE_FILE = ".runctlignore"


class GitIgnoreTree:
    """Nested .gitignore files matched as git does: the deepest file with a matching
    pattern decides, patterns are relative to their file's directory, and nothing
    below an ignored directory can be re-included."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._specs: dict[str, Any] = {}
        self._dir_ignored: dict[str, bool] = {}

    def _spec_for(self, folder: str) -> Any:
        if folder not in self._specs:
            lines: list[str] = []
            sources = [self.root / folder / ".gitignore"]
            if folder == "":
                sources.insert(0, self.root / ".git" / "info" / "exclude")
            for source in sources:
                with contextlib.suppress(OSError):
                    lines += source.read_text(errors="replace").splitlines()
            self._specs[folder] = _spec(lines) if lines else None
        return self._specs[folder]

    def _own(self, path: str, is_dir: bool) -> bool:
        """Ignored by its own name, ignoring whether a parent directory is."""
        parts = path.split("/")
        for depth in range(len(parts) - 1, -1, -1):
            folder = "/".join(parts[:depth])
            spec = self._spec_for(folder)
            if spec is None:
                continue
            rel = "/".join(parts[depth:]) + ("/" if is_dir else "")
            result = spec.check_file(rel).include
            if result is not None:
                return bool(result)
        return False

    def dir_ignored(self, path: str) -> bool:
        if path not in self._dir_ignored:
            parent = path.rpartition("/")[0]
            self._dir_ignored[path] = (bool(parent) and self.dir_ignored(parent)) or self._own(path, True)
        return self._dir_ignored[path]

    def ignored(self, path: str, is_dir: bool = False) -> bool:
        parent = path.rpartition("/")[0]
        if parent and self.dir_ignored(parent):
            return True
        return self.dir_ignored(path) if is_dir else self._own(path, False)


@dataclass
class Rules:
    """Layers 2-4 as one spec, over git's view (layer 1)."""

    root: Path
    extra: Any
    has_includes: bool
    gitignore: GitIgnoreTree

    @classmethod
    def load(cls, root: Path, flags: Sequence[Rule] = ()) -> Rules:
        lines = list(DEFAULT_EXCLUDES)
        with contextlib.suppress(OSError):
            text = (root / IGNORE_FILE).read_text(errors="replace")
            lines += [ln for ln in text.splitlines() if ln.strip()]
        lines += rule_lines(flags)
        has_includes = any(ln.startswith("!") for ln in lines)
        return cls(root, _spec(lines), has_includes, GitIgnoreTree(root))

    def verdict(self, path: str, is_dir: bool = False) -> bool | None:
        """True: excluded by layers 2-4; False: re-included; None: they say nothing."""
        result = self.extra.check_file(path + "/" if is_dir else path).include
        return None if result is None else bool(result)

    def excluded(self, path: str, is_dir: bool = False) -> bool:
        """Would this path stay out of a push (used to protect remote-only paths)?"""
        # Directory patterns match everything below them, so one check covers parents too.
        verdict = self.verdict(path, is_dir)
        return self.gitignore.ignored(path, is_dir) if verdict is None else verdict


@dataclass
class Selection:
    """The selected tree: sorted entries (files, symlinks, and directories)."""

    root: Path
    rules: Rules
    entries: list[Entry] = field(default_factory=list)
    git: bool = False

    def paths(self) -> set[str]:
        return {e.path for e in self.entries}

    def allow(self) -> Any:
        """A path filter for sync planning: selected paths, and remote-only paths that a
        push would not exclude. Excluded remote paths (outputs, caches) stay invisible,
        so --delete never touches them."""
        selected = self.paths()

        def allow(path: str) -> bool:
            if path in selected:
                return True
            return not (self.rules.excluded(path) or self.rules.excluded(path, True))

        return allow


def select(root: Path, flags: Sequence[Rule] = ()) -> Selection:
    """Compute the file set of ``root`` (see module docstring)."""
    if not root.is_dir():
        raise NotFoundError(f"local directory not found: {root}", "Check the path.")
    rules = Rules.load(root, flags)
    git_view = _git_files(root)
    if git_view is None:
        paths = set(_walk(root, rules, use_git=False))
    else:
        files, dirs = git_view
        paths = {p for p in files if not rules.verdict(p)}
        paths |= {d for d in _empty_dirs_below(root, dirs) if not rules.excluded(d, True)}
        if rules.has_includes:
            paths |= set(_walk(root, rules, use_git=True))
    return Selection(root, rules, _entries(root, paths), git=git_view is not None)


def _git_files(root: Path) -> tuple[list[str], list[str]] | None:
    """(files, untracked directories) as git sees them, or None outside a work tree."""
    try:
        inside = subprocess.run(
            ["git", "rev-parse", "--is-inside-work-tree"], cwd=root, capture_output=True, text=True
        )
        if inside.returncode != 0 or inside.stdout.strip() != "true":
            return None
        files = subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=root, capture_output=True, check=True
        )
        # --directory shows wholly untracked directories (empty ones included) as "dir/".
        dirs = subprocess.run(
            ["git", "ls-files", "-o", "--directory", "--exclude-standard", "-z"],
            cwd=root,
            capture_output=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None  # no git, or a broken repository: fall back to reading .gitignore files
    decode = os.fsdecode
    file_list = [decode(p) for p in files.stdout.split(b"\0") if p]
    dir_list = [decode(p).rstrip("/") for p in dirs.stdout.split(b"\0") if p.endswith(b"/")]
    return file_list, dir_list


def _empty_dirs_below(root: Path, dirs: Sequence[str]) -> Iterator[str]:
    """Empty directories inside git's untracked directories (git never lists them)."""
    for top in dirs:
        for folder, subdirs, files in os.walk(root / top):
            if not subdirs and not files:
                yield Path(folder).relative_to(root).as_posix()


def _walk(root: Path, rules: Rules, *, use_git: bool) -> Iterator[str]:
    """Walk the tree applying the layers. With ``use_git`` (git already gave layer 1),
    yield only paths that layers 2-4 explicitly re-include."""
    stack: list[tuple[str, bool]] = [("", False)]
    top = str(root)
    while stack:
        rel_dir, dropped = stack.pop()
        try:
            with os.scandir(os.path.join(top, rel_dir)) as it:
                children = list(it)
        except OSError:
            continue
        for de in children:
            rel = f"{rel_dir}/{de.name}" if rel_dir else de.name
            if rel == ".git" or TMP_MARK in de.name:
                continue
            is_dir = de.is_dir(follow_symlinks=False)
            verdict = rules.verdict(rel, is_dir)
            out = (
                verdict
                if verdict is not None
                else (dropped or use_git or rules.gitignore.ignored(rel, is_dir))
            )
            if is_dir:
                # An excluded directory is still entered when some rule may re-include
                # a path inside it; otherwise it is pruned (a .venv is never walked).
                if not out or rules.has_includes:
                    stack.append((rel, out))
            elif not out:
                yield rel
        if rel_dir and not dropped and not use_git and not children:
            yield rel_dir  # an empty, selected directory


def _entries(root: Path, paths: set[str]) -> list[Entry]:
    """Entries for the selected paths plus every directory above them, sorted."""
    found: dict[str, Entry] = {}
    top = str(root)  # plain string joins: pathlib's cost a tenth of the walk
    for path in paths:
        full = os.path.join(top, path)
        try:
            st = os.lstat(full)
        except OSError:
            continue  # tracked but deleted, or vanished since listing
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISLNK(st.st_mode):
            link = os.readlink(full)
            found[path] = Entry(path, 0, st.st_mtime, kind="symlink", mode=mode, link=link)
        elif stat.S_ISDIR(st.st_mode):
            # An empty directory, or one git lists (a submodule): not descended into.
            found.setdefault(path, Entry(path, 0, st.st_mtime, kind="dir", mode=mode))
        elif stat.S_ISREG(st.st_mode):
            found[path] = Entry(path, st.st_size, st.st_mtime, mode=mode)
        else:
            continue  # sockets, fifos and devices are not code
        parent = path.rpartition("/")[0]
        while parent and parent not in found:
            try:
                pst = os.lstat(os.path.join(top, parent))
            except OSError:
                break
            found[parent] = Entry(parent, 0, pst.st_mtime, kind="dir", mode=stat.S_IMODE(pst.st_mode))
            parent = parent.rpartition("/")[0]
    return sorted(found.values(), key=lambda e: e.path)


class SelectedStore(LocalStore):
    """The local tree, listing only the selected entries (with kinds, modes, links)."""

    lists_directories = True

    def __init__(self, selection: Selection) -> None:
        super().__init__(selection.root)
        self.selection = selection

    async def list(self) -> AsyncIterator[Entry]:
        for entry in self.selection.entries:
            yield entry
