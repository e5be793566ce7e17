from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from runctl.digests import MD5, S3_ETAG, SHA256, DigestSpec
from runctl.engine.compare import UNSURE, Checksum, Compare, SizeAndMtime
from runctl.stores.base import Entry
from runctl.stores.local import LocalStore


class _S3Like(LocalStore):
    """A local store that lists like S3 (LastModified, not the source mtime)."""

    listing_mtime_is_source = False
    mtime_precision = 1.0


def test_size_only_ignores_mtime(tmp_path: Path) -> None:
    c = Compare(LocalStore(tmp_path), LocalStore(tmp_path))
    assert c.quick(Entry("a", 1, 10.0), Entry("a", 1, 99.0)) is None
    assert c.quick(Entry("a", 1, 10.0), Entry("a", 2, 10.0)) == "size differs"


def test_local_to_local_compares_mtimes_at_store_precision(tmp_path: Path) -> None:
    c = SizeAndMtime(LocalStore(tmp_path), LocalStore(tmp_path))
    assert c.quick(Entry("a", 1, 10.0), Entry("a", 1, 10.0)) is None
    assert c.quick(Entry("a", 1, 10.5), Entry("a", 1, 10.0)) == "mtime differs"


def test_upload_direction_copies_only_when_local_is_newer(tmp_path: Path) -> None:
    c = SizeAndMtime(LocalStore(tmp_path), _S3Like(tmp_path))
    assert c.quick(Entry("a", 1, 100.0), Entry("a", 1, 100.5)) is None  # uploaded after the edit
    assert c.quick(Entry("a", 1, 200.0), Entry("a", 1, 100.0)) == "source is newer"


def test_download_direction_needs_the_recorded_mtime_unless_exactly_last_modified(tmp_path: Path) -> None:
    c = SizeAndMtime(_S3Like(tmp_path), LocalStore(tmp_path))
    assert c.quick(Entry("a", 1, 100.0), Entry("a", 1, 100.0)) is None
    assert c.quick(Entry("a", 1, 100.0), Entry("a", 1, 42.25)) == UNSURE


def test_download_direction_trusts_a_file_written_after_the_object_changed(tmp_path: Path) -> None:
    c = SizeAndMtime(_S3Like(tmp_path), LocalStore(tmp_path))
    obj = Entry("a", 1, 1000.0)  # LastModified
    downloaded = Entry("a", 1, 500.0, ctime=1005.0)  # mtime set into the past, written later
    assert c.quick(obj, downloaded) is None
    written_too_soon = Entry("a", 1, 500.0, ctime=1001.0)  # within the clock-skew margin
    assert c.quick(obj, written_too_soon) == UNSURE
    edited_locally = Entry("a", 1, 1005.0, ctime=1005.0)  # mtime == ctime: an edit, not a download
    assert c.quick(obj, edited_locally) == UNSURE
    object_newer = Entry("a", 1, 500.0, ctime=900.0)  # re-uploaded after we wrote the file
    assert c.quick(obj, object_newer) == UNSURE


class _ListsETags(LocalStore):
    """A local store whose listing carries S3-style ETags (as S3's does) and that can
    compute nothing itself: Checksum must hash the *other* side to match."""

    digests = frozenset()

    def listed_digest(self, entry: Entry) -> tuple[DigestSpec, str] | None:
        etag = entry.etag or ""
        if "-" in etag:
            return DigestSpec(S3_ETAG, 4), etag
        return (DigestSpec(MD5), etag) if etag else None


class _NoDigests(LocalStore):
    digests = frozenset()


class _Recording(LocalStore):
    """Remembers which digest kinds it was asked for."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.asked: list[str] = []

    async def digest(self, entry: Entry, spec: DigestSpec) -> str | None:
        self.asked.append(spec.kind)
        return await super().digest(entry, spec)


def resolve(c: Checksum, s: Entry, d: Entry) -> str | None:
    return asyncio.run(c.resolve(s, d))


def test_checksum_hashes_the_local_side_like_the_listed_etag(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abcdefghij")
    md5 = hashlib.md5(b"abcdefghij").hexdigest()
    parts = [hashlib.md5(p).digest() for p in (b"abcd", b"efgh", b"ij")]
    multipart = hashlib.md5(b"".join(parts)).hexdigest() + "-3"
    local, remote = LocalStore(tmp_path), _ListsETags(tmp_path)
    mine = Entry("f", 10, 1.0)
    for src, dst, s_etag, d_etag in ((local, remote, None, "x"), (remote, local, "x", None)):
        c = Checksum(src, dst)
        assert c.quick(Entry("f", 10, 1.0), Entry("f", 11, 1.0)) == "size differs"
        assert c.quick(mine, mine) == UNSURE
        for etag, expected in ((md5, None), (multipart, None), ("0" * 32, "content differs")):
            s = Entry("f", 10, 1.0, etag if s_etag else None)
            d = Entry("f", 10, 1.0, etag if d_etag else None)
            assert resolve(c, s, d) == expected, (src, etag)


def test_checksum_without_a_shared_digest_cannot_compare(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abc")
    entry = Entry("f", 3, 1.0)
    assert resolve(Checksum(LocalStore(tmp_path), _ListsETags(tmp_path)), entry, entry) == (
        "content cannot be compared"  # no ETag listed, and the other side computes nothing
    )
    assert resolve(Checksum(_NoDigests(tmp_path), _ListsETags(tmp_path)), entry, Entry("f", 3, 1.0, "e")) == (
        "content cannot be compared"
    )


def test_checksum_between_two_hashing_stores_uses_the_strongest_shared_kind(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "f").write_bytes(b"same")
    (tmp_path / "b" / "f").write_bytes(b"same")
    (tmp_path / "b" / "g").write_bytes(b"diff")
    (tmp_path / "a" / "g").write_bytes(b"DIFF")
    src, dst = _Recording(tmp_path / "a"), _Recording(tmp_path / "b")
    c = Checksum(src, dst)
    assert resolve(c, Entry("f", 4, 1.0), Entry("f", 4, 2.0)) is None
    assert resolve(c, Entry("g", 4, 1.0), Entry("g", 4, 1.0)) == "content differs"
    assert src.asked == dst.asked == [SHA256, SHA256]
