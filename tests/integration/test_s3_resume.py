"""Resuming a multipart upload an earlier run left unfinished, against SeaweedFS: the
stored parts that match the file are verified and reused, only the rest is sent."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from runctl.stores.s3 import CRC_KEY, MTIME_KEY
from tests.conftest import CliResult, S3Server, cli, crc32c_of, key_of
from tests.faultproxy import FaultProxy

MiB = 1024 * 1024
PART = 5 * MiB


def leave_unfinished(
    direct: Any, bucket: str, key: str, parts: dict[int, bytes], metadata: dict[str, str] | None = None
) -> str:
    """What a killed run leaves: an upload with some parts stored, never completed."""
    upload = direct.create_multipart_upload(Bucket=bucket, Key=key, Metadata=metadata or {})["UploadId"]
    for n, body in parts.items():
        direct.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=n, Body=body)
    return str(upload)


def checkpoint(s3: S3Server, tmp_path: Path, size: int) -> tuple[bytes, Path, str, str]:
    """A file of random bytes and the key it uploads to: (data, path, URL, key)."""
    data = os.urandom(size)
    src = tmp_path / "ckpt.bin"
    src.write_bytes(data)
    url = s3.fresh_prefix() + "ckpt.bin"
    return data, src, url, key_of(url)


def upload(proxy: FaultProxy, src: Path, url: str) -> CliResult:
    return cli(
        "-o", "json", "--endpoint-url", proxy.endpoint, "--part-size", "5MiB", "s3", "upload", str(src), url
    )


def part_puts(proxy: FaultProxy) -> list[str]:
    return [s.target for s in proxy.seen(method="PUT") if "partNumber=" in s.target]


def pending(direct: Any, bucket: str, key: str) -> list[str]:
    page = direct.list_multipart_uploads(Bucket=bucket, Prefix=key)
    return [u["UploadId"] for u in page.get("Uploads", []) if u["Key"] == key]


def test_an_unfinished_upload_is_completed_with_only_the_missing_part(
    s3_env: S3Server, proxy: FaultProxy, direct: Any, tmp_path: Path
) -> None:
    data, src, url, key = checkpoint(s3_env, tmp_path, 2 * PART + 12345)
    leave_unfinished(direct, s3_env.bucket, key, {1: data[:PART], 2: data[PART : 2 * PART]})

    res = cli(
        "-o", "json", "--endpoint-url", proxy.endpoint, "--part-size", "5MiB", "s3", "upload", str(src), url
    )

    assert res.code == 0, res.err
    doc = res.json()
    assert isinstance(doc, dict) and (doc["resumed"], doc["resumed_bytes"]) == (True, 2 * PART), doc
    assert len(part_puts(proxy)) == 1 and "partNumber=3" in part_puts(proxy)[0]
    got = direct.get_object(Bucket=s3_env.bucket, Key=key)["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    assert pending(direct, s3_env.bucket, key) == []


def test_a_resumed_upload_carries_this_runs_metadata_not_the_first_runs(
    s3_env: S3Server, proxy: FaultProxy, direct: Any, tmp_path: Path
) -> None:
    """The first run recorded the CRC and mtime of the file as it was then (its last part
    has changed since, and was never sent): the object completed from it must describe
    the file it holds, or every later download would fail its check."""
    data, src, url, key = checkpoint(s3_env, tmp_path, 2 * PART + 12345)
    stale = {MTIME_KEY: "1000000000.000000", CRC_KEY: crc32c_of(data[: 2 * PART] + os.urandom(12345))}
    leave_unfinished(direct, s3_env.bucket, key, {1: data[:PART], 2: data[PART : 2 * PART]}, stale)

    res = upload(proxy, src, url)

    assert res.code == 0, res.err
    doc = res.json()
    assert isinstance(doc, dict) and doc["resumed"] is True, doc
    head = direct.head_object(Bucket=s3_env.bucket, Key=key)
    assert head["Metadata"][CRC_KEY] == crc32c_of(data)
    assert head["Metadata"][MTIME_KEY] == f"{src.stat().st_mtime:.6f}"
    down = tmp_path / "down.bin"
    assert cli("s3", "download", url, str(down)).code == 0
    assert down.read_bytes() == data


def test_a_stored_part_that_differs_from_the_file_is_sent_again(
    s3_env: S3Server, proxy: FaultProxy, direct: Any, tmp_path: Path
) -> None:
    data, src, url, key = checkpoint(s3_env, tmp_path, 2 * PART + 1)
    # Part 2 holds other bytes (the file changed since): verified, not trusted.
    leave_unfinished(direct, s3_env.bucket, key, {1: data[:PART], 2: os.urandom(PART)})

    res = upload(proxy, src, url)

    assert res.code == 0, res.err
    assert sorted(t.split("partNumber=")[1].split("&")[0] for t in part_puts(proxy)) == ["2", "3"]
    assert direct.get_object(Bucket=s3_env.bucket, Key=key)["Body"].read() == data


def test_parts_of_another_layout_are_not_reused(
    s3_env: S3Server, proxy: FaultProxy, direct: Any, tmp_path: Path
) -> None:
    data, src, url, key = checkpoint(s3_env, tmp_path, 2 * PART + 1)
    leave_unfinished(direct, s3_env.bucket, key, {1: data[: 6 * MiB]})  # 6 MiB parts

    res = upload(proxy, src, url)

    assert res.code == 0, res.err
    assert len(part_puts(proxy)) == 3  # sent whole, anew
    assert direct.get_object(Bucket=s3_env.bucket, Key=key)["Body"].read() == data
