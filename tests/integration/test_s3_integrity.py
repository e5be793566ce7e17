"""Verified transfers against the real SeaweedFS: bytes damaged on the way down (a proxy
on loopback inverts one byte of a response body) are caught before the file takes its
name, retried, and reported with both digests when they stay damaged; what has no usable
digest still downloads, and an ETag that is not of runctl's part layout is no alarm."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from runctl.settings import Settings
from runctl.stores.factory import open_local, open_s3
from runctl.stores.local import LocalStore
from runctl.stores.s3 import CRC_KEY, MD5_KEY
from tests.conftest import CliResult, RcloneS3, S3Server, botocore_client, cli, crc32c_of, key_of
from tests.faultproxy import FaultProxy

MiB = 1024 * 1024


def via(proxy: FaultProxy, *argv: str) -> CliResult:
    return cli("--endpoint-url", proxy.endpoint, "--no-progress", *argv)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def flipped(data: bytes, at: int) -> bytes:
    damaged = bytearray(data)
    damaged[at] ^= 0xFF
    return bytes(damaged)


def multipart_etag(data: bytes, part: int) -> str:
    digests = [hashlib.md5(data[i : i + part]).digest() for i in range(0, len(data), part)]
    return hashlib.md5(b"".join(digests)).hexdigest() + f"-{len(digests)}"


def put_multipart(client: Any, bucket: str, key: str, data: bytes, part: int) -> str:
    """Upload ``data`` in ``part``-byte parts with botocore (another tool's part size)."""
    upload = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    done = []
    for n, at in enumerate(range(0, len(data), part), start=1):
        got = client.upload_part(
            Bucket=bucket, Key=key, UploadId=upload, PartNumber=n, Body=data[at : at + part]
        )
        done.append({"PartNumber": n, "ETag": got["ETag"]})
    client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": done})
    return str(client.head_object(Bucket=bucket, Key=key)["ETag"]).strip('"')


def download_with_api(url: str, dst: Path, **settings: Any) -> LocalStore:
    """One object downloaded through the stores (not the CLI), to read the tally."""

    async def go() -> LocalStore:
        opts = Settings(**settings)
        src, key = open_s3(url, opts, directory=False)
        local = open_local(dst.parent, opts, directory=True)[0]
        async with src, local:
            entry = await src.stat(key)
            assert entry is not None, url
            await local.write(dst.name, src, entry, lambda n: None)
        return local

    return asyncio.run(go())


def temp_files(root: Path) -> list[str]:
    return [p.name for p in root.rglob("*") if ".runctl-tmp-" in p.name]


def the_error(res: CliResult) -> str:
    assert "Traceback" not in res.err, res.err
    errors = [line for line in res.err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, res.err
    return errors[0]


# -- downloads ---------------------------------------------------------------------------


def test_a_byte_flipped_on_the_way_down_is_caught_and_the_file_retried(
    s3_env: S3Server, proxy: FaultProxy, direct: Any, tmp_path: Path
) -> None:
    url = s3_env.fresh_prefix() + "blob.bin"
    data = os.urandom(300_000)
    direct.put_object(Bucket=s3_env.bucket, Key=key_of(url), Body=data)  # single part: ETag = MD5
    proxy.flip(1, at=123_456, path=key_of(url) + "$")

    res = via(proxy, "s3", "download", url, str(tmp_path / "blob.bin"))

    assert res.code == 0, res.out + res.err
    assert (tmp_path / "blob.bin").read_bytes() == data
    assert len(proxy.seen("GET", path=key_of(url) + "$", action="flip")) == 1
    assert len(proxy.seen("GET", path=key_of(url) + "$", action="forward")) == 1  # the retry
    assert temp_files(tmp_path) == []


def test_a_damaged_range_of_a_multipart_download_is_caught_and_retried(
    s3_env: S3Server, proxy: FaultProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Uploaded by runctl in 5 MiB parts, downloaded in 10 MiB ranges: each range hashes
    its two parts; one range's byte is inverted once."""
    src = tmp_path / "big.bin"
    data = os.urandom(23 * MiB + 5)
    src.write_bytes(data)
    url = s3_env.fresh_prefix() + "big.bin"
    assert cli("--part-size", "5MiB", "s3", "upload", str(src), url).code == 0
    monkeypatch.setenv("RUNCTL_RANGE_SIZE", "10MiB")
    proxy.flip(1, at=3 * MiB, path=key_of(url), header=("Range", rf"^bytes={10 * MiB}-"))
    dst = tmp_path / "dst"
    dst.mkdir()

    res = via(proxy, "--part-size", "5MiB", "s3", "download", url, str(dst / "big.bin"))

    assert res.code == 0, res.out + res.err
    assert len(proxy.seen("GET", action="flip")) == 1
    ranged = [s for s in proxy.seen("GET", path=key_of(url)) if s.range]
    assert len(ranged) == 2 * 3  # three ranges, all fetched again
    assert (dst / "big.bin").read_bytes() == data
    assert os.listdir(dst) == ["big.bin"]


def test_a_download_that_stays_damaged_fails_with_both_digests_and_no_file(
    s3_env: S3Server, proxy: FaultProxy, direct: Any, tmp_path: Path
) -> None:
    url = s3_env.fresh_prefix() + "blob.bin"
    data = os.urandom(200_000)
    direct.put_object(Bucket=s3_env.bucket, Key=key_of(url), Body=data)
    proxy.flip(None, at=7, path=key_of(url) + "$")
    dst = tmp_path / "dst"
    dst.mkdir()

    res = via(proxy, "s3", "download", url, str(dst / "blob.bin"))

    assert res.code == 5, res.out + res.err
    line = the_error(res)
    assert key_of(url) in line and str(dst / "blob.bin") in line
    assert md5(data) in line and md5(flipped(data, 7)) in line
    assert len(proxy.seen("GET", path=key_of(url) + "$", action="flip")) == 2  # tried, retried once
    assert os.listdir(dst) == []  # nothing at the final name, no temporary file


def test_json_output_names_the_integrity_error(
    s3_env: S3Server, proxy: FaultProxy, direct: Any, tmp_path: Path
) -> None:
    url = s3_env.fresh_prefix() + "blob.bin"
    direct.put_object(Bucket=s3_env.bucket, Key=key_of(url), Body=b"z" * 5000)
    proxy.flip(None, at=0, path=key_of(url) + "$")

    res = via(proxy, "-o", "json", "s3", "download", url, str(tmp_path / "blob.bin"))

    assert res.code == 5
    doc = res.json()
    assert isinstance(doc, dict) and doc["error"]["code"] == "integrity", doc
    assert not (tmp_path / "blob.bin").exists()


def test_a_recorded_md5_is_checked_before_the_etag(s3_env: S3Server, direct: Any, tmp_path: Path) -> None:
    """The MD5 runctl records at upload wins over the ETag: an object whose content is
    not what its recorded MD5 says fails, though its ETag matches."""
    url = s3_env.fresh_prefix() + "x.bin"
    direct.put_object(Bucket=s3_env.bucket, Key=key_of(url), Body=b"new", Metadata={MD5_KEY: md5(b"old")})

    res = cli("s3", "download", url, str(tmp_path / "x.bin"))

    assert res.code == 5
    line = the_error(res)
    assert md5(b"old") in line and md5(b"new") in line and "recorded MD5" in line
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("size", [300_000, 21 * MiB + 3], ids=["one-get", "ranges"])
def test_a_recorded_crc32c_is_checked_before_the_etag(
    s3_env: S3Server, direct: Any, tmp_path: Path, size: int
) -> None:
    url = s3_env.fresh_prefix() + "x.bin"
    data = os.urandom(size)
    wrong = crc32c_of(flipped(data, size // 2))
    direct.put_object(Bucket=s3_env.bucket, Key=key_of(url), Body=data, Metadata={CRC_KEY: wrong})

    res = cli("s3", "download", url, str(tmp_path / "x.bin"))

    assert res.code == 5
    line = the_error(res)
    assert wrong in line and crc32c_of(data) in line and "recorded CRC-32C" in line
    assert os.listdir(tmp_path) == []


def test_a_multipart_object_uploaded_by_runctl_downloads_verified(s3_env: S3Server, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    data = os.urandom(21 * MiB + 3)
    src.write_bytes(data)
    url = s3_env.fresh_prefix() + "big.bin"
    assert cli("s3", "upload", str(src), url).code == 0  # 8 MiB parts: ETag md5(...)-3

    dst = tmp_path / "dst" / "big.bin"
    dst.parent.mkdir()
    tally = download_with_api(url, dst).tally  # 16 MiB ranges: two parts each

    assert dst.read_bytes() == data
    assert (tally.verified, tally.unverified, tally.disowned) == (1, 0, 0)


def test_an_object_of_another_part_size_downloads_unverified(
    s3_env: S3Server, direct: Any, tmp_path: Path
) -> None:
    """5 MiB parts (4 of them) where runctl's rule would make 8 MiB ones (2): the part
    layout is unknown, so nothing is checked, and the file downloads."""
    url = s3_env.fresh_prefix() + "other.bin"
    data = os.urandom(17 * MiB)
    assert put_multipart(direct, s3_env.bucket, key_of(url), data, 5 * MiB).endswith("-4")

    dst = tmp_path / "other.bin"
    tally = download_with_api(url, dst).tally

    assert dst.read_bytes() == data
    assert (tally.verified, tally.unverified) == (0, 1)


def test_a_multipart_etag_of_another_layout_with_the_same_count_is_no_alarm(
    s3_env: S3Server, direct: Any, tmp_path: Path
) -> None:
    """6 MiB parts, 3 of them, as 8 MiB ones would be: the ETag fits runctl's rule but is
    not the digest it computes. One HEAD (partNumber=1: a 6 MiB part) says why: no error."""
    url = s3_env.fresh_prefix() + "same-count.bin"
    data = os.urandom(17 * MiB)
    etag = put_multipart(direct, s3_env.bucket, key_of(url), data, 6 * MiB)
    assert etag.endswith("-3") and etag != multipart_etag(data, 8 * MiB)

    dst = tmp_path / "same-count.bin"
    tally = download_with_api(url, dst).tally

    assert dst.read_bytes() == data
    assert (tally.verified, tally.disowned) == (0, 1)


def test_a_server_that_ignores_ranges_still_downloads_verified(
    rclone_s3: RcloneS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in rclone_s3.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    data = os.urandom(20 * MiB + 1)
    # Through the S3 API: a file written into rclone's directory may stay unseen for a
    # while (its directory cache), which made this test fail in a full run.
    client = botocore_client(rclone_s3.endpoint, rclone_s3.access_key, rclone_s3.secret_key)
    client.put_object(Bucket=rclone_s3.bucket, Key="integrity/whole.bin", Body=data)

    dst = tmp_path / "whole.bin"
    tally = download_with_api(f"s3://{rclone_s3.bucket}/integrity/whole.bin", dst).tally

    assert dst.read_bytes() == data
    assert (tally.verified, tally.unverified) == (1, 0)


# -- uploads -----------------------------------------------------------------------------


def test_an_upload_records_its_md5_and_is_checked(s3_env: S3Server, direct: Any, tmp_path: Path) -> None:
    src = tmp_path / "small.bin"
    data = os.urandom(100_000)
    src.write_bytes(data)
    url = s3_env.fresh_prefix() + "small.bin"

    assert cli("s3", "upload", str(src), url).code == 0

    head = direct.head_object(Bucket=s3_env.bucket, Key=key_of(url))
    assert head["Metadata"][MD5_KEY] == md5(data)
    assert head["ETag"].strip('"') == md5(data)


def test_a_multipart_upload_carries_sha256_checksums_the_server_checks(
    s3_env: S3Server, direct: Any, tmp_path: Path
) -> None:
    """Parts go up with x-amz-checksum-sha256 (checksum_algorithm), and the object's ETag
    is the md5(part md5s)-N runctl computed while reading the parts."""
    src = tmp_path / "big.bin"
    data = os.urandom(12 * MiB + 1)
    src.write_bytes(data)
    url = s3_env.fresh_prefix() + "big.bin"

    assert cli("--part-size", "5MiB", "s3", "upload", str(src), url).code == 0

    head = direct.head_object(Bucket=s3_env.bucket, Key=key_of(url), ChecksumMode="ENABLED")
    assert head["ETag"].strip('"') == multipart_etag(data, 5 * MiB)
    assert head.get("ChecksumSHA256"), head
    assert MD5_KEY not in head["Metadata"]  # a whole-file MD5 would cost a second pass
    assert head["Metadata"][CRC_KEY] == crc32c_of(data)  # a CRC-32C costs a twentieth of one


@pytest.mark.parametrize(
    ("size", "part"), [(100_000, None), (12 * MiB + 1, "5MiB")], ids=["single", "multipart"]
)
def test_a_byte_flipped_in_an_upload_body_is_refused_and_retried(
    s3_env: S3Server, proxy: FaultProxy, direct: Any, tmp_path: Path, size: int, part: str | None
) -> None:
    """The server checks the body's x-amz-checksum-sha256: a damaged PUT (or part) is
    refused (BadDigest), retried, and the object is the file, byte for byte."""
    src = tmp_path / "up.bin"
    data = os.urandom(size)
    src.write_bytes(data)
    url = s3_env.fresh_prefix() + "up.bin"
    fault = proxy.flip_request(at=size // 3 if part is None else 1000, method="PUT")

    res = via(proxy, *(("--part-size", part) if part else ()), "s3", "upload", str(src), url)

    assert res.code == 0, res.err
    assert fault.applied == 1
    got = direct.get_object(Bucket=s3_env.bucket, Key=key_of(url))["Body"].read()
    assert got == data


def test_an_upload_damaged_every_time_fails_and_stores_nothing(
    s3_env: S3Server, proxy: FaultProxy, direct: Any, tmp_path: Path
) -> None:
    src = tmp_path / "up.bin"
    src.write_bytes(os.urandom(100_000))
    url = s3_env.fresh_prefix() + "up.bin"
    proxy.flip_request(times=None, at=5000, method="PUT")

    res = via(proxy, "s3", "upload", str(src), url)

    assert res.code == 5, res.err
    lines = [line for line in res.err.splitlines() if line.startswith("error")]
    assert len(lines) == 1 and "up.bin" in lines[0], res.err
    assert "Traceback" not in res.err
    assert direct.list_objects_v2(Bucket=s3_env.bucket, Prefix=key_of(url)).get("KeyCount", 0) == 0
