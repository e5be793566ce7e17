"""The remote sh scripts: error mapping and the perl lister that stands in for GNU find."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from runctl.remote import scripts
from runctl.stores.remote_tree import parse_listing as _parse_listing


def test_remote_error_codes() -> None:
    def code(status: int, stderr: str) -> str:
        return scripts.remote_error("tar", status, stderr).code

    assert code(2, "tar: x: Cannot write: No space left on device") == "remote_disk_full"
    assert code(2, "tar: x: Wrote only 4608 of 10240 bytes\ntar: Exiting with failure") == "remote_disk_full"
    assert code(2, "mkdir: cannot create directory 'x': Permission denied") == "remote_not_writable"
    assert code(127, "sh: 1: tar: not found") == "remote_tool_missing"
    assert code(1, "weird") == "remote"


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
        ["perl", "-e", scripts._PERL_LISTER], cwd=tmp_path, capture_output=True, check=True
    ).stdout

    def norm(raw: bytes) -> list[tuple[object, ...]]:
        entries = _parse_listing(raw)
        return sorted((e.path, e.kind, e.size, e.mode, e.link, round(e.mtime, 2)) for e in entries)

    assert norm(perl) == norm(gnu)


@pytest.mark.parametrize("tool", [h[0] for h in scripts.HASHERS])
def test_hash_script_samples_then_digests(tmp_path: Path, tool: str) -> None:
    """Run the remote hash script with the local sh: a file whose ends match gets its
    whole digest, one whose ends differ gets SAMPLE_DIFFERS, a missing one too."""
    import threading

    from runctl.codesync.compare import _digest, _sample_digest

    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is not installed (the CI image installs it)")
    picked = scripts.pick_hasher([tool])
    assert picked is not None
    algo, command = picked
    sample = 4096
    same, changed, middle = tmp_path / "same.bin", tmp_path / "changed.bin", tmp_path / "sp ace $x.bin"
    for path in (same, changed, middle):
        path.write_bytes(os.urandom(50_000))
    expected = {p: _sample_digest(p, algo, sample) for p in (same, changed, middle)}
    changed.write_bytes(os.urandom(50_000))  # rewritten: both ends differ
    data = bytearray(middle.read_bytes())
    data[25_000] ^= 0xFF  # only the middle differs: the sample matches, the digest does not
    middle.write_bytes(bytes(data))
    items = [(p.name, expected[p]) for p in (same, changed, middle)] + [("gone.bin", "0" * 64)]
    script = scripts.hash_script(str(tmp_path), command, items, sample)
    out = subprocess.run(["sh", "-s"], input=script.encode(), capture_output=True, check=True).stdout
    never = threading.Event()
    assert out.decode().splitlines() == [
        _digest(same, algo, never),
        scripts.SAMPLE_DIFFERS,
        _digest(middle, algo, never),
        scripts.SAMPLE_DIFFERS,
    ]
    assert _digest(middle, algo, never) != _digest(same, algo, never)


def test_pick_hasher_prefers_the_fastest() -> None:
    fastest = scripts.pick_hasher(["md5sum", "sha256sum", "openssl"])
    assert fastest == ("sha256", "openssl dgst -sha256 -r")
    assert scripts.pick_hasher(["md5sum"]) == ("md5", "md5sum")
    assert scripts.pick_hasher(["tar"]) is None


def test_staged_update_renames_files_into_place(tmp_path: Path) -> None:
    """The incremental unpack, run by the local sh: files replaced whole, new
    directories made with their modes, the staging directory gone afterwards."""
    import io
    import tarfile

    root = tmp_path / "root"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "a.py").write_text("old")
    (root / "pkg" / "keep.py").write_text("untouched")
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for name, data in [("pkg/a.py", b"new"), ("new dir/b $x.py", b"b"), ("top.py", b"t")]:
            info = tarfile.TarInfo(".runctl-tmp-test/" + name)  # members lie in the staging dir
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo(".runctl-tmp-test/new dir")
        info.type, info.mode = tarfile.DIRTYPE, 0o700
        tar.addfile(info)
    files = ["pkg/a.py", "new dir/b $x.py", "top.py"]
    script = scripts.staged_update_script(
        str(root), ".runctl-tmp-test", files, [("new dir", 0o700)], existing={"pkg"}
    )
    assert "mkdir -p -- 'new dir'" in script and "mkdir -p -- pkg" not in script
    subprocess.run(["sh", "-c", script], input=archive.getvalue(), check=True)
    assert (root / "pkg" / "a.py").read_text() == "new"
    assert (root / "pkg" / "keep.py").read_text() == "untouched"
    assert (root / "new dir" / "b $x.py").read_text() == "b"
    assert (root / "new dir").stat().st_mode & 0o777 == 0o700
    assert (root / "top.py").read_text() == "t"
    assert not (root / ".runctl-tmp-test").exists()
