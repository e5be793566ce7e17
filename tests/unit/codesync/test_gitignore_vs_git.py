"""runctl's .gitignore matcher (trees that are not git work trees) against git itself.

Hundreds of seeded random trees and pattern sets: runctl's file set must equal
``git ls-files -co --exclude-standard`` of the same tree, exactly. git runs with its
repository outside the tree (``--git-dir``), so runctl sees a plain directory.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from runctl.codesync.gitignore import parse_pattern
from runctl.codesync.selection import select

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

SEED = 20240609
BATCH_CASES = 400  # one tree, one git run: each case is a directory of its own
FUZZ_CASES = 200  # also in the batch: names and patterns from a few special characters
ROOT_CASES = 40  # each its own tree, so .gitignore files sit at the root too

# Names with the characters that matter to patterns: dots, dashes, spaces (leading and
# trailing), glob specials, "!" and "#" (special at a line's start), a backslash, a
# non-ASCII name (git matches bytes) and names repeated at several depths. None is one
# of runctl's default excludes.
NAMES = [
    "a", "b", "ab", "abc", "a.b", "x-y", "foo.log", "bar.txt", "keep.me", "cache", "build",
    "with space", "trail ", " lead", "!bang", "#hash", "a[1]", "back\\slash", "UP.TXT",
    "data.csv", "notes.md", "deep", "caf\u00e9", "q?", "st*r", ".hidden", "...", "-dash", "foo",
]  # fmt: skip
IDIOMS = [
    "*", "!*/", "**", "!**/", "**/", "*/", "/*", "!/*/", "*.log", "!*.md", "!*.csv",
    "**/cache/**", "!**/cache/keep.me", "cache/", "/build", "build/**", "**/a", "a/**/b",
    "**/a/**", "/**/b", "*/*", "!*/*/", "a**", "a/**", "*.*", "!.*", ".*", "[ab]", "[!a]*",
    "[a-c]*/", "?", "??", "*[.]*", "//a", "a//", "/a//b", "a/[!x]b", "*/?/*", "a[/]b",
    "\\!bang", "\\#hash", "#hash", "!", "/", "\\",
    "foo\\", "a[", "[]", "[!]", "[]]*", "[a-]", "[[:alpha:]]*", "[[:digit:][:punct:]]*",
    "[[:bogus:]]", "trail\\ ", "trail ", "with\\ space", "with space", "a\\*", "st\\*r",
    "q\\?", "back\\\\slash", "**/**/x-y", "a**/b", "ab**/**", "a/b**", "/a/*/", "deep/",
]  # fmt: skip


@dataclass
class Case:
    """A generated tree: paths (dirs end with "/"), symlinks and .gitignore texts."""

    paths: list[str] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)
    ignores: dict[str, str] = field(default_factory=dict)  # directory -> file text

    def write(self, root: Path) -> None:
        for rel in self.paths:
            full = root / rel
            if rel.endswith("/"):
                full.mkdir(parents=True, exist_ok=True)
            else:
                full.parent.mkdir(parents=True, exist_ok=True)
                full.write_text("x")
        for rel, target in self.links.items():
            (root / rel).symlink_to(target)
        for folder, text in self.ignores.items():
            (root / folder / ".gitignore").write_bytes(text.encode())


def _tree(rnd: random.Random, case: Case, prefix: str, depth: int) -> None:
    for name in rnd.sample(NAMES, rnd.randint(1, 5)):
        if depth < 4 and rnd.random() < 0.4:
            case.paths.append(f"{prefix}{name}/")
            _tree(rnd, case, f"{prefix}{name}/", depth + 1)
        else:
            case.paths.append(prefix + name)
    if rnd.random() < 0.15:  # a symlink: to a file or a directory ("dir/" must not match it)
        target = rnd.choice(case.paths).rstrip("/").rpartition("/")[2]
        name = rnd.choice(NAMES)
        if prefix + name not in case.paths and prefix + name + "/" not in case.paths:
            case.links[prefix + name] = target


def _escape(name: str) -> str:
    out = "".join("\\" + c if c in "*?[\\" else c for c in name)
    if out.endswith(" "):
        out = out[:-1] + "\\ "
    return out


def _glob(rnd: random.Random, name: str) -> str:
    """One path component as a pattern: literal, or with a wildcard that still matches it."""
    r = rnd.random()
    plain = all(c not in "*?[\\" for c in name)
    if r < 0.45 or not plain:
        return _escape(name)
    if r < 0.55:
        return "*"
    if r < 0.62:
        return "**"
    i = rnd.randrange(len(name))
    if r < 0.72:
        return name[:i] + "?" + name[i + 1 :]
    if r < 0.82:
        c = name[i]
        cls = rnd.choice([f"[{c}x]", f"[!{'x' if c != 'x' else 'y'}]", "[a-z]", "[^.]", "[[:alnum:]]"])
        return name[:i] + cls + name[i + 1 :]
    if r < 0.91:
        return "*" + name[i:]
    return name[:i] + "*"


def _pattern(rnd: random.Random, case: Case, folder: str) -> str:
    """A line for the .gitignore in ``folder``, usually aimed at a path below it."""
    if rnd.random() < 0.2:
        return rnd.choice(IDIOMS)
    below = [p for p in [*case.paths, *case.links] if p.startswith(folder) and p != folder]
    parts = rnd.choice(below)[len(folder) :].rstrip("/").split("/")
    start = rnd.randrange(len(parts))  # a pattern may start anywhere along the path
    end = rnd.randint(start + 1, len(parts))  # and stop short of it (a parent directory)
    comps = [_glob(rnd, c) for c in parts[start:end]]
    if rnd.random() < 0.15:
        comps.insert(rnd.randrange(len(comps) + 1), rnd.choice(["**", "*"]))
    body = "/".join(comps)
    r = rnd.random()
    if r < 0.3 and start == 0:
        body = "/" + body
    elif r < 0.45:
        body = "**/" + body
    elif r < 0.5:
        body += "/**"
    if rnd.random() < 0.25:
        body += "/"
    if body.startswith(("!", "#")) and rnd.random() < 0.8:
        body = "\\" + body
    if rnd.random() < 0.35:
        body = "!" + body
    if rnd.random() < 0.1:
        body += rnd.choice([" ", "  ", "\\ ", " \\ "])
    return body


def generate(rnd: random.Random) -> Case:
    case = Case()
    _tree(rnd, case, "", 0)
    dirs = [""] + [p for p in case.paths if p.endswith("/")]
    folders = {""} if rnd.random() < 0.85 else set()
    folders |= {rnd.choice(dirs) for _ in range(rnd.randint(0, 3))}
    for folder in sorted(folders):
        lines = []
        for _ in range(rnd.randint(1, 8)):
            if rnd.random() < 0.05:
                lines.append(rnd.choice(["# a comment", "", "   ", "#!bang"]))
            lines.append(_pattern(rnd, case, folder))
        eol = "\r\n" if rnd.random() < 0.05 else "\n"
        case.ignores[folder] = eol.join(lines) + ("" if rnd.random() < 0.1 else eol)
    return case


def _fuzz_name(rnd: random.Random) -> str:
    while True:
        name = "".join(rnd.choice("ab.-[]!*? \\#") for _ in range(rnd.randint(1, 4)))
        if name not in (".", "..", ".git"):
            return name


def _fuzz_tree(rnd: random.Random, case: Case, prefix: str, depth: int) -> None:
    for name in {_fuzz_name(rnd) for _ in range(rnd.randint(1, 5))}:
        if depth < 3 and rnd.random() < 0.4:
            if prefix + name not in case.paths:
                case.paths.append(f"{prefix}{name}/")
                _fuzz_tree(rnd, case, f"{prefix}{name}/", depth + 1)
        elif prefix + name + "/" not in case.paths:
            case.paths.append(prefix + name)


def fuzz(rnd: random.Random) -> Case:
    """Names and patterns drawn character by character: malformed classes, stray
    escapes, slashes in classes, "**" in odd places."""
    case = Case()
    _fuzz_tree(rnd, case, "", 0)
    dirs = [""] + [p for p in case.paths if p.endswith("/")]
    for folder in {""} | {rnd.choice(dirs) for _ in range(rnd.randint(0, 2))}:
        lines = []
        for _ in range(rnd.randint(1, 10)):
            line = "".join(rnd.choice("ab*?[]!^-/\\ :.#") for _ in range(rnd.randint(1, 8)))
            if rnd.random() < 0.1:
                cls = rnd.choice(["alpha", "punct", "space", "digit", "bogus"])
                line = line.replace("[", f"[[:{cls}:]", 1)
            lines.append(line)
        case.ignores[folder] = "\n".join(lines) + "\n"
    return case


def git_files(tree: Path, scratch: Path) -> set[str]:
    """What git shows of ``tree`` as the untracked files of a fresh repository, with no
    system or global config (so no core.excludesFile)."""
    home = scratch / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
    repo = scratch / "repo"
    if not repo.exists():
        subprocess.run(["git", "init", "-q", str(repo)], env=env, check=True)
    where = [f"--git-dir={repo / '.git'}", f"--work-tree={tree}", "-c", "core.ignorecase=false"]
    out = subprocess.run(
        ["git", *where, "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=tree,
        env=env,
        capture_output=True,
        check=True,
    ).stdout
    return {os.fsdecode(p) for p in out.split(b"\0") if p}


def runctl_files(tree: Path) -> set[str]:
    selection = select(tree)
    assert not selection.git  # the tree must not be a work tree, or git decides for us
    return {e.path for e in selection.entries if e.kind != "dir"}


def _report(label: str, case: Case, want: set[str], got: set[str]) -> str:
    ignores = "".join(f"  {d or '.'}/.gitignore: {t!r}\n" for d, t in case.ignores.items())
    return f"{label}\n{ignores}  only git: {sorted(want - got)}\n  only runctl: {sorted(got - want)}"


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    """A directory for many small trees: in memory where possible (on a loaded disk,
    creating the files takes far longer than comparing them)."""
    if os.access("/dev/shm", os.W_OK):
        with tempfile.TemporaryDirectory(dir="/dev/shm") as tmp:
            yield Path(tmp)
    else:
        yield tmp_path


def _by_case(paths: set[str]) -> dict[str, set[str]]:
    cases: dict[str, set[str]] = {}
    for path in paths:
        cases.setdefault(path.partition("/")[0], set()).add(path)
    return cases


def test_random_pattern_sets_match_git(scratch: Path) -> None:
    rnd = random.Random(SEED)
    tmp_path = scratch
    batch = tmp_path / "batch"
    cases = [generate(rnd) for _ in range(BATCH_CASES)] + [fuzz(rnd) for _ in range(FUZZ_CASES)]
    for i, case in enumerate(cases):
        case.write(batch / f"c{i}")
    want, got = _by_case(git_files(batch, tmp_path)), _by_case(runctl_files(batch))
    mismatches = []
    for i, case in enumerate(cases):
        w, g = want.get(f"c{i}", set()), got.get(f"c{i}", set())
        if w != g:
            mismatches.append(_report(f"c{i}", case, w, g))
    for i in range(ROOT_CASES):
        case, tree = generate(rnd), tmp_path / f"root{i}"
        case.write(tree)
        w, g = git_files(tree, tmp_path), runctl_files(tree)
        if w != g:
            mismatches.append(_report(f"root{i}", case, w, g))
    assert not mismatches, f"{len(mismatches)} cases differ from git:\n" + "\n".join(mismatches[:10])
    assert sum(map(len, want.values())) > 5 * len(cases)  # the cases are not trivially empty


# -- the idioms from the issue, and other edges, as named regressions --------------------
def _check(tmp_path: Path, files: list[str], ignores: dict[str, str], expected: list[str]) -> None:
    tree = tmp_path / "t"
    Case(paths=files, ignores=ignores).write(tree)
    got = runctl_files(tree)
    assert sorted(got) == sorted(expected)
    assert got == git_files(tree, tmp_path)


def test_ignore_everything_except_in_nested_file(tmp_path: Path) -> None:
    files = ["top.txt", "data/a.csv", "data/x/b.csv", "data/x/c.txt", "data/y.txt"]
    # "*" also ignores data/.gitignore itself; git still reads it.
    expected = ["top.txt", "data/a.csv", "data/x/b.csv"]
    _check(tmp_path, files, {"data": "*\n!*/\n!*.csv\n"}, expected)


def test_cache_contents_with_a_kept_file(tmp_path: Path) -> None:
    files = ["cache/a", "cache/keep.me", "x/cache/keep.me", "x/cache/b", "x/cache/sub/keep.me", "y"]
    # "cache/**" matches what is in cache, not cache itself, so cache is entered; but
    # x/cache/sub is matched as a directory, so its keep.me stays out (as in git).
    expected = ["cache/keep.me", "x/cache/keep.me", "y", ".gitignore"]
    _check(tmp_path, files, {"": "**/cache/**\n!**/cache/keep.me\n"}, expected)


def test_everything_but_markdown(tmp_path: Path) -> None:
    files = ["a.md", "b.txt", "d/c.md", "d/e/f.md", "d/g.txt"]
    _check(tmp_path, files, {"": "**\n!**/\n!*.md\n"}, ["a.md", "d/c.md", "d/e/f.md"])


def test_excluded_directory_cannot_be_reentered(tmp_path: Path) -> None:
    # git's documented rule: a file below an excluded directory cannot be re-included.
    files = ["build/keep.txt", "build/out.o", "logs/a/keep.log", "src/x.py"]
    ignores = {"": "build/\n!build/keep.txt\nlogs\n!logs/a/\n!keep.log\n"}
    _check(tmp_path, files, ignores, [".gitignore", "src/x.py"])


def test_directory_only_patterns_and_symlinks(tmp_path: Path) -> None:
    tree = tmp_path / "t"
    Case(paths=["real/f", "other/g"], ignores={"": "real/\nlink\n!link/\n"}).write(tree)
    (tree / "link").symlink_to("other")  # a symlink is not a directory: "link" applies
    (tree / "real2").symlink_to("real")  # nor does "real/" match a link to a directory
    assert runctl_files(tree) == {".gitignore", "other/g", "real2"} == git_files(tree, tmp_path)


def test_prefix_quirk_double_star_after_literal(tmp_path: Path) -> None:
    # git wildmatches only what follows a pattern's literal prefix, so in "a/b**/c" the
    # "**" counts as a whole component and spans directories ("a/bx/y/c" matches).
    files = ["a/bx/y/c", "a/bx/c", "a/b/c", "a/x/c"]
    _check(tmp_path, files, {"": "a/b**/c\n"}, [".gitignore", "a/x/c"])


def test_escapes_trailing_spaces_and_comments(tmp_path: Path) -> None:
    files = ["!bang", "#hash", "trail ", "trail", "sp  ", "a*", "ab", "keep"]
    text = "\\!bang\n\\#hash\n#keep\ntrail\\ \nsp\\ \\ \na\\*\nkeep   \n!keep\n"
    _check(tmp_path, files, {"": text}, [".gitignore", "trail", "ab", "keep"])


def test_symlinked_gitignore_is_not_read(tmp_path: Path) -> None:
    tree = tmp_path / "t"
    Case(paths=["a.log", "sub/b.log"], ignores={"": ""}).write(tree)
    (tree / "rules").write_text("*.log\n")
    (tree / "sub" / ".gitignore").symlink_to("../rules")  # git (2.32+) does not follow it
    assert runctl_files(tree) == git_files(tree, tmp_path)
    assert "sub/b.log" in runctl_files(tree)


def test_bytes_not_characters(tmp_path: Path) -> None:
    # "?" is one byte to git: the two-byte "\u00e9" needs "??", and a class never matches it.
    files = ["caf\u00e9", "cafe", "x\u00e9y"]
    _check(tmp_path, files, {"": "caf?\nx??y\n"}, [".gitignore", "caf\u00e9"])


def test_case_sensitive_without_a_repository() -> None:
    # Not followed: core.ignorecase. git turns it on when `git init` runs on a
    # case-insensitive file system; without a repository there is no setting to read,
    # so runctl matches case-sensitively, as git does on Linux.
    assert parse_pattern("*.LOG").regex != parse_pattern("*.log").regex


@pytest.mark.parametrize(
    ("text", "files", "kept"),
    [
        # No class matches "/", not even a negated one, "[/]", a range over "/" or [:punct:].
        ("/a[!x]b\n/a[/]b\n/a[+-0]b\n/a[[:punct:]]b\n", ["a/b", "a+b"], ["a/b"]),
        # After a range "-" is literal again: [a-c-e] is a, b, c, "-" and e.
        ("[a-c-e]\n", ["b", "d", "-", "e", "f"], ["d", "f"]),
        # A "**" before an escaped slash spans directories but does not match zero of them.
        ("**\\/b\n", ["b", "x/b", "x/y/b"], ["b"]),
        # Unterminated classes, [:name:] without its "]" and unknown names match nothing.
        (
            "[ab\n[[:alpha\n[[:alpha:]\n[[:bogus:]]\n",
            ["a", "[ab", "[[:alpha", "z"],
            ["a", "[ab", "[[:alpha", "z"],
        ),
        # A UTF-8 byte order mark is skipped; a NUL ends a line; CRLF works.
        ("\ufeffa\nb\0junk\r\nc\r\n", ["a", "b", "junk", "c", "d"], ["junk", "d"]),
        # A trailing backslash escapes nothing: the line matches nothing.
        ("foo\\\n", ["foo", "foo\\"], ["foo", "foo\\"]),
        # Only one leading slash anchors; "//a" is a pattern for nothing.
        ("//a\n", ["a", "x/a"], ["a", "x/a"]),
    ],
)
def test_wildmatch_edges(tmp_path: Path, text: str, files: list[str], kept: list[str]) -> None:
    _check(tmp_path, files, {"": text}, [".gitignore", *kept])


def test_nested_dot_git_file_is_never_listed(tmp_path: Path) -> None:
    # A ".git" file (a submodule's pointer) is skipped by git's walk wherever it is.
    tree = tmp_path / "t"
    Case(paths=["sub/a.py", "sub/.git"]).write(tree)
    assert runctl_files(tree) == {"sub/a.py"} == git_files(tree, tmp_path)
