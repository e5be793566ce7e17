"""Resuming a large download an earlier run left unfinished, against SeaweedFS through
the fault proxy: the ranges that run wrote are kept beside the final name, checked, and
not fetched again; an object changed since, or a damaged range, is fetched anew."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runctl.errors import ObjectChangedError
from runctl.settings import Settings
from runctl.stores.factory import open_store
from runctl.stores.local_partial import PARTIAL_MARK
from runctl.stores.s3 import CRC_KEY
from tests.conftest import CliResult, S3Server, cli, crc32c_of, key_of
from tests.faultproxy import FaultProxy

MiB = 1024 * 1024
RANGE = 5 * MiB
SIZE = 4 * RANGE + 12345  # five ranges, the last one short


def download(proxy: FaultProxy, url: str, target: Path) -> CliResult:
    return cli(
        "-o", "json", "--endpoint-url", proxy.endpoint, "--no-progress", "s3", "download", url, str(target)
    )


def partial_files(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if PARTIAL_MARK in p.name)


@pytest.fixture
def ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNCTL_RANGE_SIZE", "5MiB")


def interrupted(
    proxy: FaultProxy,
    direct: Any,
    s3: S3Server,
    tmp_path: Path,
    recorded: Callable[[bytes], str] | None = None,
) -> tuple[bytes, str, Path]:
    """A download whose fourth range keeps failing: exit 5, the other ranges kept. With
    ``recorded``, the object carries ``recorded(data)`` as the CRC-32C runctl records."""
    data = os.urandom(SIZE)
    url = s3.fresh_prefix() + "big.bin"
    metadata = {CRC_KEY: recorded(data)} if recorded else {}
    direct.put_object(Bucket=s3.bucket, Key=key_of(url), Body=data, Metadata=metadata)
    target = tmp_path / "dst" / "big.bin"
    target.parent.mkdir()
    proxy.fail(
        None, status=500, code="InternalError", path=key_of(url), header=("Range", rf"^bytes={3 * RANGE}-")
    )
    first = download(proxy, url, target)
    assert first.code == 5, first.err
    assert not target.exists()
    assert len(partial_files(target.parent)) == 2, os.listdir(target.parent)  # data and journal
    proxy.clear()
    return data, url, target


@pytest.mark.parametrize("recorded", [False, True], ids=["etag-md5", "recorded-crc32c"])
def test_interrupted_download_resumes_from_the_ranges_written(
    s3_env: S3Server, proxy: FaultProxy, direct: Any, tmp_path: Path, ranges: None, recorded: bool
) -> None:
    """Checked by the ETag (an MD5 of the file, read back in order), or by the CRC-32C
    runctl records, combined from the journal's CRCs of the ranges."""
    data, url, target = interrupted(proxy, direct, s3_env, tmp_path, crc32c_of if recorded else None)
    before = len(proxy.seen("GET"))

    again = download(proxy, url, target)

    assert again.code == 0, again.err
    doc = json.loads(again.out)
    assert (doc["resumed"], doc["resumed_bytes"]) == (True, SIZE - RANGE), doc
    assert target.read_bytes() == data
    assert partial_files(target.parent) == []
    asked = [s.range for s in proxy.seen("GET")[before:]]
    # The first range (whose answer names the ETag) and the one that failed.
    assert asked == [f"bytes=0-{RANGE - 1}", f"bytes={3 * RANGE}-{4 * RANGE - 1}"], asked


def test_a_resumed_file_whose_crc_is_not_the_recorded_one_fails(
    s3_env: S3Server, proxy: FaultProxy, direct: Any, tmp_path: Path, ranges: None
) -> None:
    """The check of a resumed download is real: the ranges kept and those fetched now
    combine to the file's CRC, which is not what the object says it holds."""
    data, url, target = interrupted(proxy, direct, s3_env, tmp_path, lambda d: crc32c_of(d + b"!"))

    again = download(proxy, url, target)

    assert again.code == 5, again.err
    error = json.loads(again.out)["error"]
    assert error["code"] == "integrity" and crc32c_of(data) in error["message"], error
    assert not target.exists()


def test_a_damaged_range_is_fetched_again(
    s3_env: S3Server, proxy: FaultProxy, direct: Any, tmp_path: Path, ranges: None
) -> None:
    data, url, target = interrupted(proxy, direct, s3_env, tmp_path)
    (partial,) = [p for p in target.parent.iterdir() if p.name.endswith(f"{PARTIAL_MARK}data")]
    with partial.open("r+b") as fh:  # the disk lost a byte of the second range
        fh.seek(RANGE + 1000)
        fh.write(bytes([fh.read(1)[0] ^ 0xFF]))

    again = download(proxy, url, target)

    assert again.code == 0, again.err
    doc = json.loads(again.out)
    assert doc["resumed_bytes"] == SIZE - 2 * RANGE, doc  # all but the failed and the damaged
    assert target.read_bytes() == data


def test_an_object_changed_since_is_downloaded_anew(
    s3_env: S3Server, proxy: FaultProxy, direct: Any, tmp_path: Path, ranges: None
) -> None:
    _, url, target = interrupted(proxy, direct, s3_env, tmp_path)
    changed = os.urandom(SIZE)  # same size, new content: a new ETag
    direct.put_object(Bucket=s3_env.bucket, Key=key_of(url), Body=changed)

    again = download(proxy, url, target)

    assert again.code == 0, again.err
    doc = json.loads(again.out)
    assert (doc["resumed"], doc["resumed_bytes"]) == (False, 0), doc
    assert target.read_bytes() == changed
    assert partial_files(target.parent) == []


def test_later_ranges_are_read_only_from_the_same_version(s3_env: S3Server, direct: Any) -> None:
    """A range asked for with the first range's ETag (If-Match) fails once the object is
    rewritten: a download never stitches two versions together."""
    url = s3_env.fresh_prefix() + "v.bin"
    direct.put_object(Bucket=s3_env.bucket, Key=key_of(url), Body=b"one" * 1000)

    async def go() -> None:
        settings = Settings(endpoint_url=s3_env.endpoint)
        store, key = open_store(url, settings, directory=False, scheme="s3")
        async with store:
            first = await store.open(key, 0, 10)
            assert first.version is not None
            same = await store.open(key, 10, 10, version=first.version)
            assert b"".join([c async for c in same.chunks()]) == (b"one" * 1000)[10:20]
            direct.put_object(Bucket=s3_env.bucket, Key=key_of(url), Body=b"two" * 1000)
            with pytest.raises(ObjectChangedError, match="rewritten while it was being downloaded"):
                await store.open(key, 10, 10, version=first.version)

    asyncio.run(go())
