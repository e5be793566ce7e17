"""The digests transfers are checked with, and what a mismatch does (runctl.integrity).
Against a real server: tests/integration/test_s3_integrity.py."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
from collections.abc import AsyncIterator, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from runctl.digests import (
    CRC32C,
    MD5,
    S3_ETAG,
    SHA256,
    DigestSpec,
    StreamHasher,
    etag_digest,
    etag_parts,
    file_digest,
)
from runctl.errors import IntegrityError, NetworkError, SourceChangedError
from runctl.integrity import Expected, InOrder, PartDigests, RangeCRCs, etag_vouches, hasher_for, mismatch
from runctl.settings import Settings
from runctl.stores import s3 as s3_module
from runctl.stores.base import Entry, ProgressFn, Reader, Store
from runctl.stores.factory import open_s3
from runctl.stores.local import TMP_MARK, LocalStore
from runctl.stores.s3 import CRC_KEY, MD5_KEY, S3Store
from tests.conftest import crc32c_of

KIB = 1024


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def multipart_etag(data: bytes, part: int) -> str:
    parts = [hashlib.md5(data[i : i + part]).digest() for i in range(0, len(data), part)] or [
        hashlib.md5(b"").digest()
    ]
    return hashlib.md5(b"".join(parts)).hexdigest() + f"-{len(parts)}"


def random_pieces(data: bytes, rng: random.Random, largest: int) -> list[bytes]:
    pieces, at = [], 0
    while at < len(data):
        n = rng.randint(1, largest)
        pieces.append(data[at : at + n])
        at += n
    return pieces


# -- streamed digests: one implementation for --checksum, uploads and downloads ---------


@pytest.mark.parametrize("seed", range(5))
def test_stream_hasher_matches_hashlib_and_s3_for_any_split(seed: int) -> None:
    rng = random.Random(seed)
    data = rng.randbytes(rng.randint(0, 300 * KIB))
    part = rng.choice([1, 7 * KIB, 64 * KIB, 100 * KIB])
    for spec, want in (
        (DigestSpec(MD5), md5(data)),
        (DigestSpec(SHA256), hashlib.sha256(data).hexdigest()),
        (DigestSpec(S3_ETAG, part), multipart_etag(data, part)),
    ):
        hasher = StreamHasher(spec)
        for piece in random_pieces(data, rng, 50 * KIB):
            hasher.update(piece)
        assert hasher.hexdigest() == want, spec


def test_file_digest_is_the_stream_hasher(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * KIB + 5)
    path = tmp_path / "f"
    path.write_bytes(data)
    assert file_digest(str(path), DigestSpec(S3_ETAG, 1024 * KIB)) == multipart_etag(data, 1024 * KIB)
    assert file_digest(str(path), DigestSpec(MD5)) == md5(data)


@pytest.mark.parametrize(
    ("etag", "want"),
    [
        ('"900150983cd24fb0d6963f7d28e17f72"', (DigestSpec(MD5), "900150983cd24fb0d6963f7d28e17f72")),
        ("900150983CD24FB0D6963F7D28E17F72", (DigestSpec(MD5), "900150983cd24fb0d6963f7d28e17f72")),
        (
            '"0123456789abcdef0123456789abcdef-3"',
            (DigestSpec(S3_ETAG, 8), "0123456789abcdef0123456789abcdef-3"),
        ),
        ('"not-an-md5"', None),
        ("0123456789abcdef0123456789abcde", None),  # 31 digits
        ("0123456789abcdef0123456789abcdef-0", None),
        ("", None),
        (None, None),
    ],
)
def test_etag_digest_reads_only_the_forms_of_a_digest(
    etag: str | None, want: tuple[DigestSpec, str] | None
) -> None:
    assert etag_digest(etag, 8) == want
    assert etag_digest(etag, 0) == (want if want is None or want[0].kind == MD5 else None)


def test_etag_parts() -> None:
    assert etag_parts('"0123456789abcdef0123456789abcdef-12"') == 12
    assert etag_parts("0123456789abcdef0123456789abcdef") is None


# -- hashing a file written as parallel ranges -------------------------------------------


def write_ranges(path: Path, data: bytes, hasher: Any, range_size: int, seed: int) -> str:
    """Write ``data`` as ranges of ``range_size``, their pieces from several threads in a
    shuffled order (each range's pieces in order, as a download writes them)."""
    rng = random.Random(seed)
    ranges = []
    for start in range(0, len(data), range_size):
        at, pieces = start, []
        for piece in random_pieces(data[start : start + range_size], rng, 20 * KIB):
            pieces.append((at, piece))
            at += len(piece)
        ranges.append(pieces)
    rng.shuffle(ranges)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC)
    try:
        os.ftruncate(fd, len(data))

        def one_range(pieces: list[tuple[int, bytes]]) -> None:
            for at, piece in pieces:
                os.pwrite(fd, piece, at)
                hasher.written(fd, piece, at)

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(one_range, ranges))
        return str(hasher.result(fd, len(data)))
    finally:
        os.close(fd)


@pytest.mark.parametrize("seed", range(4))
def test_part_digests_of_ranges_written_side_by_side(tmp_path: Path, seed: int) -> None:
    part = 40 * KIB
    data = random.Random(seed).randbytes(13 * part + 999)
    got = write_ranges(tmp_path / "f", data, PartDigests(len(data), part), 2 * part, seed)
    assert got == multipart_etag(data, part)


def test_part_digests_hash_a_part_never_written_as_the_file_holds_it(tmp_path: Path) -> None:
    part = 10 * KIB
    data = os.urandom(3 * part)
    hasher = PartDigests(len(data), part)
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT)
    try:
        os.ftruncate(fd, len(data))
        for at in (0, 2 * part):  # the middle part is never written: zeros
            os.pwrite(fd, data[at : at + part], at)
            hasher.written(fd, data[at : at + part], at)
        got = hasher.result(fd, len(data))
    finally:
        os.close(fd)
    assert got == multipart_etag(data[:part] + bytes(part) + data[2 * part :], part)
    assert got != multipart_etag(data, part)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("spec", [DigestSpec(MD5), DigestSpec(S3_ETAG, 30 * KIB)])
def test_in_order_digest_of_ranges_written_in_any_order(tmp_path: Path, seed: int, spec: DigestSpec) -> None:
    data = random.Random(seed).randbytes(500 * KIB + 7)
    got = write_ranges(tmp_path / "f", data, InOrder(spec), 64 * KIB, seed)
    assert got == (md5(data) if spec.kind == MD5 else multipart_etag(data, 30 * KIB))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("range_size", [64 * KIB, 100_003])
def test_range_crcs_of_ranges_written_in_any_order(tmp_path: Path, seed: int, range_size: int) -> None:
    data = random.Random(seed).randbytes(700 * KIB + seed)
    assert write_ranges(tmp_path / "f", data, RangeCRCs(), range_size, seed) == crc32c_of(data)


def test_range_crcs_read_back_what_no_piece_wrote_and_pieces_written_twice(tmp_path: Path) -> None:
    data = os.urandom(30 * KIB)
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT)
    try:
        os.pwrite(fd, data, 0)
        holes = RangeCRCs()  # only the middle third is reported written
        holes.written(fd, data[10 * KIB : 20 * KIB], 10 * KIB)
        assert holes.result(fd, len(data)) == crc32c_of(data)
        twice = RangeCRCs()  # a range written again (a retry): the file is what counts
        for at in (0, 10 * KIB, 0, 20 * KIB):
            twice.written(fd, data[at : at + 10 * KIB], at)
        assert twice.result(fd, len(data)) == crc32c_of(data)
        short = RangeCRCs()  # the file lacks its last bytes: not the object's CRC
        os.ftruncate(fd, len(data) - 1)
        short.written(fd, data[: 10 * KIB], 0)
        assert short.result(fd, len(data)) != crc32c_of(data)
    finally:
        os.close(fd)


def test_hasher_for_hashes_parts_in_parallel_only_when_ranges_hold_whole_parts() -> None:
    etag = Expected(DigestSpec(S3_ETAG, 8), "x-2", "ETag")
    assert isinstance(hasher_for(etag, 100, 16, sequential=False), PartDigests)
    assert isinstance(hasher_for(etag, 100, 12, sequential=False), InOrder)  # parts straddle ranges
    assert isinstance(hasher_for(etag, 100, 16, sequential=True), InOrder)  # one whole stream
    assert isinstance(hasher_for(Expected(DigestSpec(MD5), "x", "ETag"), 100, 16, False), InOrder)
    recorded = Expected(DigestSpec(CRC32C), "x", "recorded CRC-32C")
    assert isinstance(hasher_for(recorded, 100, 12, sequential=False), RangeCRCs)
    assert isinstance(hasher_for(recorded, 100, 12, sequential=True), RangeCRCs)


# -- when an ETag is no digest: no false alarms -------------------------------------------


@pytest.mark.parametrize(
    ("head", "aws", "part", "vouches"),
    [
        ({}, True, None, True),
        ({"ServerSideEncryption": "AES256"}, True, None, True),  # SSE-S3 keeps MD5 ETags on AWS
        ({"ServerSideEncryption": "AES256"}, False, None, False),  # elsewhere: not known
        ({"ServerSideEncryption": "aws:kms"}, True, None, False),
        ({"ServerSideEncryption": "aws:kms:dsse"}, True, None, False),
        ({"SSECustomerAlgorithm": "AES256"}, True, None, False),
        ({"PartsCount": 3, "ContentLength": 8}, True, 8, True),
        ({"PartsCount": 3, "ContentLength": 7}, True, 8, False),  # uploaded with other parts
        ({"ContentLength": 20}, True, 8, False),  # the server does not say: not known
        ({"PartsCount": 3, "ContentLength": 8, "ServerSideEncryption": "aws:kms"}, True, 8, False),
    ],
)
def test_etag_vouches(head: dict[str, Any], aws: bool, part: int | None, vouches: bool) -> None:
    assert etag_vouches(head, aws=aws, part_size=part) is vouches


def test_integrity_error_is_a_retried_network_error_that_names_both_digests() -> None:
    exp = Expected(DigestSpec(MD5), "a" * 32, "ETag")
    err = mismatch("download of s3://b/k to /d/k", DigestSpec(MD5), "b" * 32, exp)
    assert isinstance(err, IntegrityError) and isinstance(err, NetworkError)
    assert err.exit_code == 5 and not err.fatal and err.code == "integrity"
    assert "s3://b/k" in err.message and "a" * 32 in err.message and "b" * 32 in err.message
    assert "\n" not in err.message


# -- LocalStore.write checks before the rename --------------------------------------------


class Source(Store):
    """One file in memory, served with a vouched-for digest; ``damage`` flips a byte of
    the next N reads that cover ``at``."""

    url = "mem://"

    def __init__(self, data: bytes, expected: Expected | None, *, damage: int = 0, at: int = 0) -> None:
        self.data = data
        self.expected = expected
        self.damage = damage
        self.at = at
        self.opens = 0

    async def open(
        self, path: str, offset: int = 0, length: int | None = None, version: str | None = None
    ) -> Reader:
        self.opens += 1
        end = len(self.data) if length is None else offset + length
        body = bytearray(self.data[offset:end])
        if self.damage and offset <= self.at < end:
            self.damage -= 1
            body[self.at - offset] ^= 1
        return Body(bytes(body), len(self.data), self.expected if offset == 0 else None)

    async def list(self) -> AsyncIterator[Entry]:
        yield Entry("f", len(self.data), 1.0)

    async def stat(self, path: str) -> Entry | None:
        return Entry("f", len(self.data), 1.0)

    async def write(self, path: str, src: Store, entry: Entry, progress: ProgressFn) -> None:
        raise NotImplementedError

    async def delete(self, paths: Iterable[str]) -> None:
        raise NotImplementedError


class Body(Reader):
    def __init__(self, body: bytes, size: int, expected: Expected | None) -> None:
        self.size = size
        self.mtime = 1_600_000_000.0
        self.expected = expected
        self._body = body

    async def chunks(self) -> AsyncIterator[bytes]:
        for i in range(0, len(self._body), 3000):
            await asyncio.sleep(0)
            yield self._body[i : i + 3000]


def download(tmp_path: Path, src: Source, range_size: int) -> LocalStore:
    dst = LocalStore(tmp_path, part_size=range_size, parts_in_flight=3)
    asyncio.run(dst.write("f", src, Entry("f", len(src.data), 1.0), lambda n: None))
    return dst


def digest(kind: str, data: bytes) -> str:
    return {MD5: md5, CRC32C: crc32c_of}[kind](data) if kind != S3_ETAG else multipart_etag(data, 5000)


@pytest.mark.parametrize("size", [5000, 50_000])  # one small file; ranges of 10,000 bytes
@pytest.mark.parametrize("kind", [MD5, S3_ETAG, CRC32C])
def test_damaged_download_raises_and_leaves_nothing(tmp_path: Path, size: int, kind: str) -> None:
    data = os.urandom(size)
    spec = DigestSpec(kind, 5000 if kind == S3_ETAG else 0)
    value = digest(kind, data)
    src = Source(data, Expected(spec, value, "ETag"), damage=1, at=size - 10)
    with pytest.raises(IntegrityError) as caught:
        download(tmp_path, src, 10_000)
    damaged = bytearray(data)
    damaged[size - 10] ^= 1
    got = digest(kind, bytes(damaged))
    assert value in caught.value.message and got in caught.value.message
    assert os.listdir(tmp_path) == []  # no final name, no temporary file


@pytest.mark.parametrize("size", [5000, 50_000])
@pytest.mark.parametrize("kind", [S3_ETAG, CRC32C])
def test_intact_download_is_verified(tmp_path: Path, size: int, kind: str) -> None:
    data = os.urandom(size)
    spec = DigestSpec(kind, 5000 if kind == S3_ETAG else 0)
    dst = download(tmp_path, Source(data, Expected(spec, digest(kind, data), "ETag")), 10_000)
    assert (tmp_path / "f").read_bytes() == data
    assert (dst.tally.verified, dst.tally.unverified) == (1, 0)


@pytest.mark.parametrize("size", [5000, 50_000])
def test_a_mismatch_the_source_disowns_is_no_error(tmp_path: Path, size: int) -> None:
    """An ETag that looked like an MD5 and was not (SSE-KMS): the HEAD says so, the file lands."""
    data = os.urandom(size)
    asked: list[bool] = []

    async def recheck() -> bool:
        asked.append(True)
        return False

    dst = download(tmp_path, Source(data, Expected(DigestSpec(MD5), "0" * 32, "ETag", recheck)), 10_000)
    assert (tmp_path / "f").read_bytes() == data
    assert asked == [True] and dst.tally.disowned == 1
    assert not [n for n in os.listdir(tmp_path) if TMP_MARK in n]


def test_no_digest_downloads_unverified(tmp_path: Path) -> None:
    data = os.urandom(50_000)
    dst = download(tmp_path, Source(data, None), 10_000)
    assert (tmp_path / "f").read_bytes() == data
    assert (dst.tally.verified, dst.tally.unverified) == (0, 1)


def test_the_whole_stream_of_a_server_that_ignores_ranges_is_verified(tmp_path: Path) -> None:
    data = os.urandom(50_000)

    class Whole(Source):
        async def open(
            self, path: str, offset: int = 0, length: int | None = None, version: str | None = None
        ) -> Reader:
            reader = await super().open(path)  # the whole body, whatever was asked
            reader.whole = True
            return reader

    good = Whole(data, Expected(DigestSpec(S3_ETAG, 8000), multipart_etag(data, 8000), "ETag"))
    assert download(tmp_path / "a", good, 10_000).tally.verified == 1
    bad = Whole(data, Expected(DigestSpec(MD5), md5(data), "ETag"), damage=1, at=3)
    with pytest.raises(IntegrityError):
        download(tmp_path / "b", bad, 10_000)
    assert os.listdir(tmp_path / "b") == []


# -- uploads: the ETag answered against the MD5 of what was sent ----------------------------


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> S3Store:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    return open_s3("s3://bucket/p/", Settings(region="us-east-1", part_size=5 * 1024 * KIB), directory=True)[
        0
    ]


def fake_put(monkeypatch: pytest.MonkeyPatch, etag: str | None) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    async def put(store: object, key: str, body: object, **kwargs: Any) -> dict[str, Any]:
        if not isinstance(body, bytes):  # a multipart stream: read it, as obstore would
            body = b"".join([bytes(c) async for c in body])  # type: ignore[attr-defined]
        calls.append({"key": key, "body": body, **kwargs})
        return {"e_tag": etag, "version": None}

    monkeypatch.setattr("runctl.stores.s3.obstore.put_async", put)

    async def nothing_to_resume(self: S3Store, *args: object) -> None:
        return None  # no server to ask for unfinished uploads

    monkeypatch.setattr(S3Store, "_resumable", nothing_to_resume)
    return calls


def upload(s3: S3Store, tmp_path: Path, data: bytes) -> None:
    (tmp_path / "f").write_bytes(data)
    src = LocalStore(tmp_path)
    asyncio.run(s3.write("f", src, Entry("f", len(data), 1.0), lambda n: None))


def test_single_put_records_its_md5_and_checks_the_etag(
    s3: S3Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(1000)
    calls = fake_put(monkeypatch, f'"{md5(data)}"')
    upload(s3, tmp_path, data)
    assert calls[0]["attributes"][MD5_KEY] == md5(data) and calls[0]["body"] == data
    assert s3.tally.verified == 1


@pytest.mark.parametrize("size", [1000, 12 * 1024 * KIB])  # one PUT; multipart (5 MiB parts)
def test_an_etag_that_is_not_the_digest_sent_is_an_integrity_error(
    s3: S3Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    wrong = "0" * 32 if size == 1000 else "0" * 32 + "-3"
    fake_put(monkeypatch, f'"{wrong}"')
    parts: list[int | None] = []

    async def vouches(self: S3Store, path: str, part_size: int | None) -> bool:
        parts.append(part_size)
        return True

    monkeypatch.setattr(S3Store, "_etag_vouches", vouches)
    data = os.urandom(size)
    with pytest.raises(IntegrityError) as caught:
        upload(s3, tmp_path, data)
    sent = md5(data) if size == 1000 else multipart_etag(data, 5 * 1024 * KIB)
    assert wrong in caught.value.message and sent in caught.value.message
    assert parts == [None if size == 1000 else 5 * 1024 * KIB]


@pytest.mark.parametrize("span", [64 << 20, 1 << 20, 3 * KIB + 1])  # one piece; several, side by side
def test_a_multipart_upload_records_the_crc32c_of_the_file(
    s3: S3Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, span: int
) -> None:
    monkeypatch.setattr(s3_module, "CRC_SPAN", span)
    data = os.urandom(12 * 1024 * KIB)
    calls = fake_put(monkeypatch, f'"{multipart_etag(data, 5 * 1024 * KIB)}"')
    upload(s3, tmp_path, data)
    assert calls[0]["attributes"][CRC_KEY] == crc32c_of(data) and calls[0]["body"] == data
    assert MD5_KEY not in calls[0]["attributes"] and s3.tally.verified == 1


def test_a_file_rewritten_between_its_crc_pass_and_its_parts_is_not_stored(
    s3: S3Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same size, same mtime, other bytes (what a stat cannot see): the CRC taken before
    the upload is not the bytes' sent, so the object would lie about its content."""
    data = os.urandom(12 * 1024 * KIB)
    calls = fake_put(monkeypatch, f'"{multipart_etag(data, 5 * 1024 * KIB)}"')
    deleted: list[list[str]] = []

    async def delete(self: S3Store, paths: Iterable[str]) -> None:
        deleted.append(list(paths))

    monkeypatch.setattr(S3Store, "delete", delete)
    real = s3_module._file_crc

    async def other_bytes(path: Path, planned: tuple[int, int, int]) -> int:
        return await real(path, planned) ^ 1

    monkeypatch.setattr(s3_module, "_file_crc", other_bytes)
    with pytest.raises(SourceChangedError, match="changed while it was uploaded"):
        upload(s3, tmp_path, data)
    assert len(calls) == 1 and deleted == [["f"]]


def test_an_upload_etag_mismatch_under_kms_is_no_error(
    s3: S3Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_put(monkeypatch, '"' + "1" * 32 + '"')

    async def disowns(self: S3Store, path: str, part_size: int | None) -> bool:
        return False

    monkeypatch.setattr(S3Store, "_etag_vouches", disowns)
    upload(s3, tmp_path, b"kms")
    assert s3.tally.disowned == 1


def test_an_upload_without_an_etag_is_unverified(
    s3: S3Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_put(monkeypatch, None)
    upload(s3, tmp_path, b"abc")
    assert (s3.tally.verified, s3.tally.unverified) == (0, 1)


def test_off_loop_hashes_inline_once_executors_refuse_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """At interpreter shutdown (a background upload finishing as the script exits) every
    executor refuses new work: the hashing still happens, on the event loop."""
    from runctl.integrity import off_loop

    async def go() -> tuple[str, str]:
        threaded = await off_loop(md5, b"abc")
        loop = asyncio.get_running_loop()

        def refuse(*args: Any) -> Any:
            raise RuntimeError("cannot schedule new futures after interpreter shutdown")

        monkeypatch.setattr(loop, "run_in_executor", refuse)
        return threaded, await off_loop(md5, b"abc")

    assert asyncio.run(go()) == (md5(b"abc"), md5(b"abc"))
