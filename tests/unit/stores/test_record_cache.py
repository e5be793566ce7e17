"""Kept listing records: a parse that takes entries from earlier listings gives exactly
what a fresh parse of the same listing gives (real GNU find output, a tree changed in
every way a file can change), symlinks are always parsed again, and a kept file that
is damaged, truncated or of another Python is ignored, never half-trusted."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from runctl.stores import record_cache, remote_tree
from runctl.stores.record_cache import REWRITE_AT, RecordCache
from tests.unit.stores.test_remote_tree import find_listing


def by_path(entries: list[remote_tree.Entry]) -> list[remote_tree.Entry]:
    return sorted(entries, key=lambda e: e.path)


def make_tree(root: Path) -> None:
    (root / "sub" / "deep").mkdir(parents=True)
    for i in range(30):
        (root / "sub" / f"m{i}.py").write_text(f"x = {i}\n")
    (root / "a b  c.txt").write_text("spaces")
    (root / "sub" / "deep" / "new\nline").write_text("nl")
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "link").symlink_to("sub/m1.py")


def test_kept_records_give_what_a_fresh_parse_gives(tmp_path: Path) -> None:
    make_tree(tmp_path)
    before = find_listing(tmp_path)
    entries, kept = remote_tree.parse_known(before, remember_at=1)
    assert kept is not None and len(kept) == len(entries) - 1  # all but the symlink
    # The same entries (in another order: parse_tree sorts them), the symlink parsed again.
    assert by_path(remote_tree.parse_known(before, known=kept)[0]) == by_path(entries)

    (tmp_path / "sub" / "m0.py").write_text("x = 10\n")  # rewritten, another size
    (tmp_path / "sub" / "m2.py").write_text("x = 9\n")  # same size
    os.utime(tmp_path / "sub" / "m3.py", (1, 1))  # touched
    os.chmod(tmp_path / "run.sh", 0o755)  # exec bit
    (tmp_path / "sub" / "m4.py").unlink()
    (tmp_path / "sub" / "m5.py").rename(tmp_path / "sub" / "moved.py")
    (tmp_path / "fresh.py").write_text("new")
    (tmp_path / "link").unlink()
    (tmp_path / "link").symlink_to("sub/m7.py")  # a target of the same length
    after = find_listing(tmp_path)

    reused, _ = remote_tree.parse_known(after, known=kept)
    assert by_path(reused) == by_path(remote_tree.parse_listing(after))
    found = {e.path: e for e in reused}
    assert found["link"].link == "sub/m7.py" and "sub/m4.py" not in found
    assert found["sub/m3.py"].mtime == 1.0 and found["run.sh"].mode == 0o755


def test_symlink_records_are_never_taken_from_kept_ones() -> None:
    """A symlink's target is not in its record's key: kept, a retarget would be missed."""
    head = b"l 777 5 100.5 100.5 link"
    first, kept = remote_tree.parse_known(head + b"\0old-t\0" + b"f 644 1 1.5 1.5 a\0\0", remember_at=1)
    assert kept is not None and list(kept) == [b"f 644 1 1.5 1.5 a"]
    kept[head] = first[0]  # even if some writer kept it
    again, _ = remote_tree.parse_known(head + b"\0new-t\0", known={})
    assert [e.link for e in again] == ["new-t"]


def test_remembering_waits_for_enough_new_records() -> None:
    listing = b"".join(f"f 644 1 1.5 1.5 f{i}\0\0".encode() for i in range(REWRITE_AT + 5))
    _, kept = remote_tree.parse_known(listing, remember_at=REWRITE_AT)
    assert kept is not None
    few = listing + b"f 644 1 1.5 1.5 extra\0\0"
    assert remote_tree.parse_known(few, known=kept, remember_at=REWRITE_AT)[1] is None
    many = (
        b"".join(f"f 644 2 2.5 2.5 g{i}\0\0".encode() for i in range(REWRITE_AT)) + listing[:20]
    )  # one old record
    _, rewritten = remote_tree.parse_known(many, known=kept, remember_at=REWRITE_AT)
    assert rewritten is not None and len(rewritten) == REWRITE_AT + 1  # this listing's records only


def test_kept_file_round_trip_and_damage(tmp_path: Path) -> None:
    listing = b"".join(f"f 644 {i} {i}.25 {i}.5 p/{i}\0\0".encode() for i in range(10))
    _, kept = remote_tree.parse_known(listing, remember_at=1)
    assert kept is not None
    cache = RecordCache(tmp_path / "deep" / "er" / "file")
    assert cache.load() == {}  # missing
    cache.save(kept)
    assert cache.load() == kept
    assert stat.S_IMODE(cache.path.stat().st_mode) == 0o600  # it names the remote's files
    assert list(cache.path.parent.iterdir()) == [cache.path]  # no temporary file left

    good = cache.path.read_bytes()
    for damaged in (good[:-3], good[:2], b"", good[:40] + bytes([good[40] ^ 1]) + good[41:]):
        cache.path.write_bytes(damaged)
        assert cache.load() == {}, damaged[:8]


def test_a_kept_file_of_another_python_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, kept = remote_tree.parse_known(b"f 644 1 1.5 1.5 a\0\0", remember_at=1)
    assert kept is not None
    cache = RecordCache(tmp_path / "f")
    monkeypatch.setattr(record_cache, "_TAG", "runctl-records 1 py9.9 ascii")
    cache.save(kept)
    monkeypatch.undo()
    assert cache.load() == {}


def test_where_kept_files_live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNCTL_CACHE_DIR", "")
    assert RecordCache.for_destination("ssh host:/x") is None  # turned off
    monkeypatch.setenv("RUNCTL_CACHE_DIR", str(tmp_path))
    one, two = RecordCache.for_destination("ssh host:/x"), RecordCache.for_destination("ssh host:/y")
    assert one is not None and two is not None and one.path != two.path
    assert one.path.parent == tmp_path / "listings"
    monkeypatch.delenv("RUNCTL_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    three = RecordCache.for_destination("ssh host:/x")
    assert three is not None and three.path.parent == tmp_path / "xdg" / "runctl" / "listings"


def test_parse_tree_keeps_and_uses_records(tmp_path: Path) -> None:
    make_tree(tmp_path / "t")
    raw = b"runctl-list gnu sent=1 now=1 tar\n" + find_listing(tmp_path / "t")
    kept: list[record_cache.Known] = []
    first = remote_tree.parse_tree(raw, "t", {}, kept.append)
    assert len(kept) == 1  # nothing usable before: kept at once
    again = remote_tree.parse_tree(raw, "t", kept[0], kept.append)
    assert again.entries == first.entries == remote_tree.parse_tree(raw, "t").entries
    assert len(kept) == 1  # every record known: not kept again
