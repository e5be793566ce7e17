"""Parsing the remote tree listing: the column-at-a-time parser (the usual listing)
gives exactly what the record-by-record one gives, on real GNU find output and on
generated records; listings it does not take (other kinds, temporary names) go to
the record-by-record parser."""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

from runctl.remote import scripts
from runctl.stores import remote_tree
from runctl.stores.local import TMP_MARK


def records(body: bytes) -> tuple[list[bytes], list[bytes]]:
    """(heads, symlink targets) of a listing."""
    found = body.split(b"\0")
    del found[len(found) - len(found) % 2 :]
    return found[0::2], found[1::2]


def find_listing(root: Path) -> bytes:
    return subprocess.run(
        ["find", ".", "-mindepth", "1", "-printf", scripts.LIST_FORMAT],
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout


def test_columns_parse_real_find_output_as_records_do(tmp_path: Path) -> None:
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "empty").mkdir()
    for rel in ("a.py", "sub/b c.txt", "sub/deeper/x", "back\\slash", "new\nline", "  two  spaces "):
        (tmp_path / rel).write_bytes(os.urandom(len(rel) * 7))
    (tmp_path / os.fsdecode(b"latin-\xe9.txt")).write_bytes(b"x")
    os.chmod(tmp_path / "a.py", 0o751)
    (tmp_path / "link").symlink_to("sub/b c.txt")
    (tmp_path / "dangling").symlink_to("nowhere/at all")
    body = find_listing(tmp_path)

    by_columns = remote_tree._parse_columns(*records(body))
    assert by_columns is not None
    assert by_columns == remote_tree._parse_records(*records(body), [])
    kinds = {e.path: (e.kind, e.size, e.link) for e in by_columns}
    assert kinds["link"] == ("symlink", 0, "sub/b c.txt")
    assert kinds["sub"] == ("dir", 0, None)  # a directory's listed size is not kept
    assert kinds["a.py"] == ("file", 4 * 7, None)
    assert os.fsdecode(b"latin-\xe9.txt") in kinds
    assert remote_tree.parse_listing(body) == by_columns


def test_columns_parse_generated_records_as_records_do() -> None:
    rng = random.Random(7)
    names = ["a", "b/c", "d e", "é", "x\\y", "z-1", "q/r/s"]
    for _ in range(50):
        listed = []
        for i in range(rng.randint(0, 40)):
            kind = rng.choice([b"f", b"f", b"d", b"l"])
            mode = rng.choice([b"644", b"755", b"600", b"4755"])
            link = rng.choice(names).encode() if kind == b"l" else b""
            mtime = f"{rng.randint(0, 2**31)}.{rng.randint(0, 10**10 - 1):010d}".encode()
            ctime = f"{rng.randint(0, 2**31)}".encode()
            path = f"{rng.choice(names)}{i}".encode()
            size = str(rng.randint(0, 10**9)).encode()
            listed.append(b" ".join([kind, mode, size, mtime, ctime, path]) + b"\0" + link + b"\0")
        body = b"".join(listed)
        by_columns = remote_tree._parse_columns(*records(body))
        assert by_columns == remote_tree._parse_records(*records(body), [])
        assert len(by_columns or []) == len(listed)


def test_other_kinds_and_temporary_names_go_record_by_record(tmp_path: Path) -> None:
    (tmp_path / "keep.py").write_text("x")
    os.mkfifo(tmp_path / "pipe")
    body = find_listing(tmp_path)
    assert remote_tree._parse_columns(*records(body)) is None  # a fifo is no kind of ours
    assert [e.path for e in remote_tree.parse_listing(body)] == ["keep.py"]

    os.unlink(tmp_path / "pipe")
    (tmp_path / f"keep.py{TMP_MARK}1234").write_text("half")
    leftovers: list[tuple[str, float]] = []
    assert [e.path for e in remote_tree.parse_listing(find_listing(tmp_path), leftovers)] == ["keep.py"]
    assert [path for path, _ in leftovers] == [f"keep.py{TMP_MARK}1234"]
