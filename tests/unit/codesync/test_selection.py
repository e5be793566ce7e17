"""The code-push file set: gitignore semantics, default excludes, .runctlignore, flags."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from runctl.codesync.selection import select
from runctl.codesync.target import parse_dest
from runctl.errors import NotFoundError, UsageError


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


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
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


def test_parse_dest() -> None:
    t = parse_dest("gpu1:proj")
    assert (t.host, t.path, t.user, t.port) == ("gpu1", "proj", None, None)
    t = parse_dest("me@gpu1:~/a b/$x")
    assert (t.host, t.path, t.user) == ("gpu1", "a b/$x", "me")
    assert parse_dest("gpu1:").path == "."
    t = parse_dest("ssh://me@10.0.0.5:2222/srv/code")
    assert (t.host, t.path, t.user, t.port) == ("10.0.0.5", "/srv/code", "me", 2222)
    assert parse_dest("ssh://h/~/x").path == "x"
    assert parse_dest("[::1]:p").host == "::1"
    for bad in ("just/a/path", "./a:b", "ssh:///x"):
        with pytest.raises(UsageError):
            parse_dest(bad)


def test_remote_error_codes() -> None:
    from runctl.stores.ssh_scripts import remote_error

    assert remote_error("tar", 2, "tar: x: Cannot write: No space left on device").code == "remote_disk_full"
    assert remote_error("tar", 2, "mkdir: cannot create directory 'x': Permission denied").code == (
        "remote_not_writable"
    )
    assert remote_error("tar", 127, "sh: 1: tar: not found").code == "remote_tool_missing"
    assert remote_error("tar", 1, "weird").code == "remote"


@pytest.mark.skipif(shutil.which("perl") is None or shutil.which("find") is None, reason="needs perl, find")
def test_perl_listing_matches_gnu_find(tmp_path: Path) -> None:
    """The fallback lister (remotes without GNU find) must parse like GNU find's output."""
    from runctl.stores import ssh_scripts
    from runctl.stores.ssh import _parse_listing

    write(tmp_path, "a.py", "sp ace/b $x.py")
    (tmp_path / "l").symlink_to("a.py")
    (tmp_path / "e").mkdir()
    os.chmod(tmp_path / "a.py", 0o751)
    gnu = subprocess.run(
        ["find", ".", "-mindepth", "1", "-printf", r"%y\0%s\0%T@\0%m\0%P\0%l\0"],
        cwd=tmp_path,
        capture_output=True,
        check=True,
    ).stdout
    perl = subprocess.run(
        ["perl", "-e", ssh_scripts._PERL_LISTER], cwd=tmp_path, capture_output=True, check=True
    ).stdout

    def norm(raw: bytes) -> list[tuple[object, ...]]:
        entries = _parse_listing(raw)
        return sorted((e.path, e.kind, e.size, e.mode, e.link, round(e.mtime, 2)) for e in entries)

    assert norm(perl) == norm(gnu)
