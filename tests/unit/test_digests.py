from __future__ import annotations

import hashlib
import os
from pathlib import Path

from runctl.digests import MD5, S3_ETAG, SHA256, DigestSpec, file_digest


def test_whole_file_digests(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 7)  # more than one 1 MiB read
    path = tmp_path / "f"
    path.write_bytes(data)
    assert file_digest(str(path), DigestSpec(MD5)) == hashlib.md5(data).hexdigest()
    assert file_digest(str(path), DigestSpec(SHA256)) == hashlib.sha256(data).hexdigest()


def test_s3_multipart_etag_form(tmp_path: Path) -> None:
    data = os.urandom(5 * 1024 * 1024 + 123)
    path = tmp_path / "f"
    path.write_bytes(data)
    part = 2 * 1024 * 1024  # not a multiple of the read size: parts straddle reads
    digests = [hashlib.md5(data[i : i + part]).digest() for i in range(0, len(data), part)]
    expected = hashlib.md5(b"".join(digests)).hexdigest() + "-3"
    assert file_digest(str(path), DigestSpec(S3_ETAG, part)) == expected
    # Another part size gives another part count, so it can never equal that ETag.
    assert (file_digest(str(path), DigestSpec(S3_ETAG, 5 * 1024 * 1024)) or "").endswith("-2")


def test_unknown_kinds_and_missing_part_size_are_not_computed(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x")
    assert file_digest(str(path), DigestSpec("crc32c")) is None
    assert file_digest(str(path), DigestSpec(S3_ETAG)) is None
