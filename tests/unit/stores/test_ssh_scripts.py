"""The remote sh scripts: error mapping and the perl lister that stands in for GNU find."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from runctl.stores import ssh_scripts
from runctl.stores.ssh import _parse_listing


def test_remote_error_codes() -> None:
    def code(status: int, stderr: str) -> str:
        return ssh_scripts.remote_error("tar", status, stderr).code

    assert code(2, "tar: x: Cannot write: No space left on device") == "remote_disk_full"
    assert code(2, "mkdir: cannot create directory 'x': Permission denied") == "remote_not_writable"
    assert code(127, "sh: 1: tar: not found") == "remote_tool_missing"
    assert code(1, "weird") == "remote"


@pytest.mark.skipif(shutil.which("perl") is None or shutil.which("find") is None, reason="needs perl, find")
def test_perl_listing_matches_gnu_find(tmp_path: Path) -> None:
    """The fallback lister (remotes without GNU find) must parse like GNU find's output."""
    for rel in ("a.py", "sp ace/b $x.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
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
