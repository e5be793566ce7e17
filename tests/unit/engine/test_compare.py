from __future__ import annotations

import hashlib
import os
from pathlib import Path

from runctl.engine.compare import UNSURE, Compare, SizeAndMtime, _file_md5
from runctl.stores.base import Entry
from runctl.stores.local import LocalStore
from runctl.stores.s3 import part_size_for


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


def test_file_md5_plain_and_multipart(tmp_path: Path) -> None:
    data = os.urandom(5 * 1024 * 1024 + 123)
    path = tmp_path / "f"
    path.write_bytes(data)
    assert _file_md5(str(path), 0, 0) == hashlib.md5(data).hexdigest()
    part = 2 * 1024 * 1024
    digests = [hashlib.md5(data[i : i + part]).digest() for i in range(0, len(data), part)]
    expected = hashlib.md5(b"".join(digests)).hexdigest() + "-3"
    assert _file_md5(str(path), part, 3) == expected
    assert _file_md5(str(path), part, 4) == "different-part-count"


def test_part_size_grows_so_no_upload_needs_more_than_10000_parts() -> None:
    eight = 8 * 1024 * 1024
    assert part_size_for(1024, eight) == eight
    six_tib = 6 * 1024**4
    part = part_size_for(six_tib, eight)
    assert part > eight and -(-six_tib // part) <= 10_000
    seven_gib = 7 * 1024**3  # > 5 GiB: still 8 MiB parts, 896 of them
    assert part_size_for(seven_gib, eight) == eight
