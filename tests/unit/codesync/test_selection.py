"""The code-push file set: gitignore semantics, default excludes, .runctlignore, flags."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest

import runctl.codesync.selection as selection
from runctl.codesync.selection import Rules, select
from runctl.errors import NotFoundError


def files(root: Path, *flags: tuple[str, str]) -> list[str]:
    return [e.path for e in select(root, flags).entries if e.kind != "dir"]


def write(root: Path, *paths: str) -> Path:
    for rel in paths:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(rel)
    return root


def test_default_excludes(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.py",
        ".git/HEAD",
        "pkg/__pycache__/a.pyc",
        "b.pyc",
        ".venv/lib/x.py",
        "venv/y.py",
        "node_modules/m.js",
        ".mypy_cache/c",
        ".pytest_cache/d",
        "pkg/.DS_Store",
        "pkg/ok.py",
    )
    assert files(tmp_path) == ["a.py", "pkg/ok.py"]


def test_nested_gitignore_negation_and_anchoring(tmp_path: Path) -> None:
    write(
        tmp_path,
        "top.txt",
        "sub/top.txt",
        "x.log",
        "sub/keep.log",
        "sub/drop.log",
        "build/out.o",
        "build/keep.txt",
    )
    (tmp_path / ".gitignore").write_text("/top.txt\n*.log\nbuild/\n!build/keep.txt\n")
    (tmp_path / "sub" / ".gitignore").write_text("!keep.log\n")
    # build/keep.txt stays out: git cannot re-include a file inside an ignored directory.
    assert files(tmp_path) == [".gitignore", "sub/.gitignore", "sub/keep.log", "sub/top.txt"]


def test_runctlignore_and_flags_in_order(tmp_path: Path) -> None:
    write(tmp_path, "a.py", "notes.md", "data/small/x.csv", "data/big/y.csv")
    (tmp_path / ".gitignore").write_text("data/\n")
    (tmp_path / ".runctlignore").write_text("notes.md\n")
    assert files(tmp_path) == [".gitignore", ".runctlignore", "a.py"]
    assert files(tmp_path, ("include", "data/small/")) == [
        ".gitignore",
        ".runctlignore",
        "a.py",
        "data/small/x.csv",
    ]
    # last match wins: exclude after include drops it again
    assert "data/small/x.csv" not in files(tmp_path, ("include", "data/"), ("exclude", "data/small/"))
    assert "a.py" not in files(tmp_path, ("exclude", "*.py"))
    assert "notes.md" in files(tmp_path, ("include", "notes.md"))


def test_symlinks_modes_and_empty_dirs(tmp_path: Path) -> None:
    write(tmp_path, "run.sh", "pkg/a.py")
    (tmp_path / "run.sh").chmod(0o755)
    (tmp_path / "link").symlink_to("pkg/a.py")
    (tmp_path / "dirlink").symlink_to("pkg")
    (tmp_path / "empty" / "deeper").mkdir(parents=True)
    (tmp_path / "__pycache__").mkdir()
    entries = {e.path: e for e in select(tmp_path).entries}
    assert entries["run.sh"].mode == 0o755
    assert entries["link"].kind == "symlink" and entries["link"].link == "pkg/a.py"
    assert entries["dirlink"].kind == "symlink"
    assert entries["empty"].kind == "dir" and entries["empty/deeper"].kind == "dir"
    assert entries["pkg"].kind == "dir"
    assert "__pycache__" not in entries
    assert list(entries) == sorted(entries)


def test_git_work_tree(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    write(tmp_path, "tracked.py", "untracked.py", "wandb/run.bin", "data/small.csv", "forced.log")
    (tmp_path / ".gitignore").write_text("wandb/\ndata/\n*.log\n")
    (tmp_path / "empty").mkdir()
    subprocess.run(["git", "-C", str(tmp_path), "add", "tracked.py"], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "add", "-f", "forced.log"], check=True)
    sel = select(tmp_path)
    assert sel.git
    expected = [".gitignore", "empty", "forced.log", "tracked.py", "untracked.py"]
    assert [e.path for e in sel.entries] == expected
    assert "data/small.csv" in files(tmp_path, ("include", "data/"))
    allow = sel.allow()
    assert not allow("wandb/other.bin") and not allow("x/__pycache__/a.pyc") and allow("stale.py")
    assert allow("forced.log")  # tracked despite the ignore rule


def test_missing_dir(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        select(tmp_path / "nope")


def test_layers_screen_keeps_pathspec_verdicts(tmp_path: Path) -> None:
    # Layers 2-4 screen paths with one regex before asking pathspec: the verdicts must be
    # exactly pathspec's for every path, matching or not.
    (tmp_path / ".runctlignore").write_text(
        "data/\n!data/small/\n/top\na/**/b\n*.log\n!keep.log\nx?y\n[ab]*\n"
    )
    flags = (("exclude", "out/"), ("include", "out/keep/"), ("exclude", "**/tmp"), ("include", "venv/ok.py"))
    rules = Rules.load(tmp_path, flags)
    assert rules.screen is not None
    rnd = random.Random(7)
    names = ["data", "small", "top", "a", "b", "x_y", "keep.log", "z.log", "out", "keep", "tmp", "venv"]
    names += ["ok.py", ".git", "__pycache__", "m.pyc", ".DS_Store", "node_modules", "src", "f.py", "a\nb"]
    for _ in range(3000):
        path = "/".join(rnd.choice(names) for _ in range(rnd.randint(1, 4)))
        for is_dir in (False, True):
            exact = rules.extra.check_file(path + "/" if is_dir else path).include
            assert rules.verdict(path, is_dir) == (None if exact is None else bool(exact)), (path, is_dir)


def test_name_screen_never_misses_a_verdict(tmp_path: Path) -> None:
    # With name-only lines and no negation, a file is screened by its name alone; for
    # every file whose parents the layers keep, a name the screen passes over must be
    # one pathspec says nothing of.
    (tmp_path / ".runctlignore").write_text("*.log\nx?y\n[ab]*\nbuild/\n**.tmp\n\\#lit\n# comment\n")
    rules = Rules.load(tmp_path, (("exclude", "*.bak"),))
    assert rules.name_screen is not None
    rnd = random.Random(11)
    names = ["a.log", "xzy", "b1", "build", "c.tmp", "#lit", "ok.py", ".git", "__pycache__", "m.pyc"]
    names += [".DS_Store", "venv", "src", "f.bak", "log", "x/y", "keep", "a\nb", "tmp"]
    checked = 0
    for _ in range(4000):
        parts = [rnd.choice(names).replace("/", "_") for _ in range(rnd.randint(1, 4))]
        parents = ["/".join(parts[:i]) for i in range(1, len(parts))]
        if any(rules.verdict(d, True) for d in parents):
            continue  # pruned by the walk: never screened
        path, name = "/".join(parts), parts[-1]
        if rules.name_screen.search(name) is None:
            assert rules.verdict(path) is None, path
            checked += 1
    assert checked > 500


@pytest.mark.parametrize("line", ["/top", "a/b", "!keep.log", "**/cache"])
def test_name_screen_only_for_name_patterns(tmp_path: Path, line: str) -> None:
    (tmp_path / ".runctlignore").write_text(f"*.log\n{line}\n")
    assert Rules.load(tmp_path).name_screen is None


def test_walk_by_name_selects_what_the_path_verdicts_select(tmp_path: Path) -> None:
    rnd = random.Random(5)
    names = ["a.log", "b", "build", "ok.py", "m.pyc", "__pycache__", "x.tmp", "src", "deep"]
    paths = {"/".join(rnd.choice(names) for _ in range(rnd.randint(1, 4))) + f"{i % 3}" for i in range(300)}
    write(tmp_path, *paths)
    write(tmp_path, "src/z.log", "build/x.py", "src/build/y.py", "deep/n.pyc", "deep/keep.py")
    (tmp_path / ".runctlignore").write_text("*.log\nbuild/\nb?\n")
    fast = select(tmp_path, (("exclude", "*.tmp2"),))
    assert fast.rules.name_screen is not None
    slow_rules = Rules.load(tmp_path, (("exclude", "*.tmp2"),))
    slow_rules.name_screen = None
    walked = selection._walk(tmp_path, slow_rules, use_git=False)
    slow = [e.path for e in selection._entries(tmp_path, walked)]
    assert [e.path for e in fast.entries] == slow
    assert "deep/keep.py" in slow and "src/z.log" not in slow and "src/build/y.py" not in slow


def test_gitignore_idioms_outside_a_work_tree(tmp_path: Path) -> None:
    write(tmp_path, "top.py", "data/a.csv", "data/x/b.csv", "data/x/c.txt", "cache/keep.me", "cache/junk")
    (tmp_path / ".gitignore").write_text("**/cache/**\n!**/cache/keep.me\n")
    (tmp_path / "data" / ".gitignore").write_text("*\n!*/\n!*.csv\n")
    sel = select(tmp_path)
    assert not sel.git
    kept = [".gitignore", "cache/keep.me", "data/a.csv", "data/x/b.csv", "top.py"]
    assert [e.path for e in sel.entries if e.kind != "dir"] == kept
    # a flag still re-includes what git ignores
    assert "data/x/c.txt" in files(tmp_path, ("include", "*.txt"))
    # remote-only paths are judged the same way (kept ones may be deleted, ignored ones not)
    allow = sel.allow()
    assert allow("cache/sub.txt") is False and allow("data/new.csv") and not allow("data/new.txt")
    assert allow("stale.py")
