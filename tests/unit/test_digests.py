from __future__ import annotations

import hashlib
import os
import random
import zlib
from pathlib import Path

import pytest

from runctl.crcs import _Field, crc32c_combine
from runctl.digests import (
    CRC32C,
    MD5,
    S3_ETAG,
    SHA256,
    DigestSpec,
    StreamHasher,
    file_digest,
    recorded_crc32c,
)


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
    assert file_digest(str(path), DigestSpec("crc64nvme")) is None
    assert file_digest(str(path), DigestSpec(S3_ETAG)) is None


def test_crc32c_is_castagnolis() -> None:
    """The catalogue's check value (CRC-32/ISCSI of "123456789") and S3's empty-object CRC."""
    hasher = StreamHasher(DigestSpec(CRC32C))
    hasher.update(b"123456789")
    assert hasher.hexdigest() == "e3069283"
    assert StreamHasher(DigestSpec(CRC32C)).hexdigest() == "00000000"


def test_file_crc32c_for_any_read_split(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 11)
    path = tmp_path / "f"
    path.write_bytes(data)
    whole = StreamHasher(DigestSpec(CRC32C))
    whole.update(data)
    pieces = StreamHasher(DigestSpec(CRC32C))
    for at in range(0, len(data), 77_777):
        pieces.update(memoryview(data)[at : at + 77_777])
    assert file_digest(str(path), DigestSpec(CRC32C)) == whole.hexdigest() == pieces.hexdigest()


@pytest.mark.parametrize("seed", range(20))
def test_crc32c_combine_is_the_crc_of_the_concatenation(seed: int) -> None:
    rng = random.Random(seed)
    a = rng.randbytes(rng.choice([0, 1, rng.randrange(5000)]))
    b = rng.randbytes(rng.choice([0, 1, 8, rng.randrange(70_000)]))
    assert crc32c_combine(crc_int(a), crc_int(b), len(b)) == crc_int(a + b)


@pytest.mark.parametrize("seed", range(5))
def test_the_combine_math_matches_zlib_for_crc32(seed: int) -> None:
    """The same field arithmetic with CRC-32's polynomial against an independent
    implementation (zlib's own crc32 of the concatenation)."""
    rng = random.Random(seed)
    a, b = rng.randbytes(rng.randrange(3000)), rng.randbytes(rng.randrange(90_000))
    ieee = _Field(32, 0xEDB88320)
    assert ieee.combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)


def test_crc32c_combine_at_lengths_past_four_gib() -> None:
    """Lengths past 2^29 bytes use squares beyond the first 32 (no cycle is assumed):
    one jump over 5 GiB of zeros must equal two jumps over half of it each."""
    a = int(crc_text(b"runctl"), 16)
    half = 5 * 1024**3 // 2
    z_half = _crc_of_zeros(half)
    z_full = crc32c_combine(z_half, z_half, half)
    assert crc32c_combine(a, z_full, 2 * half) == crc32c_combine(
        crc32c_combine(a, z_half, half), z_half, half
    )


def _crc_of_zeros(n: int) -> int:
    """The CRC-32C of n zero bytes, by doubling from one (combine only)."""
    one = int(crc_text(b"\0"), 16)
    result, length, piece, size = 0, 0, one, 1
    while n:
        if n & 1:
            result, length = crc32c_combine(result, piece, size), length + size
        piece, size = crc32c_combine(piece, piece, size), size * 2
        n >>= 1
    return result


def test_crc_of_zeros_matches_a_direct_crc() -> None:
    assert _crc_of_zeros(100_003) == int(crc_text(bytes(100_003)), 16)


def test_recorded_crc32c_reads_only_eight_hex_digits() -> None:
    assert recorded_crc32c(" E3069283 ") == "e3069283"
    for value in (None, "", "e306928", "e30692833", "zz069283", "4w=="):
        assert recorded_crc32c(value) is None


def crc_text(data: bytes) -> str:
    hasher = StreamHasher(DigestSpec(CRC32C))
    hasher.update(data)
    return hasher.hexdigest()


def crc_int(data: bytes) -> int:
    return int(crc_text(data), 16)
