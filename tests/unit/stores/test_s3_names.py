"""Bucket names and keys refused at the edge (before any request), and the ones that must
still pass: S3's naming rules, the 1,024-byte key limit, control characters, and keys
that cannot name a file (``..``, a leading ``/``, ``//``)."""

from __future__ import annotations

from typing import Any

import pytest

from runctl.errors import UsageError
from runctl.stores.s3 import (
    ServerReply,
    bucket_problem,
    key_problem,
    object_key_problem,
    parse_s3_url,
    require_key_prefix,
    show_key,
)


@pytest.mark.parametrize(
    "bucket",
    [
        "abc",
        "runctl-test",
        "my.bucket.name",
        "a" * 63,
        "0-9",
        "my-access-point-abc123-s3alias",
        "my-bucket--usw2-az1--x-s3",
    ],
)
def test_valid_bucket_names_pass(bucket: str) -> None:
    assert bucket_problem(bucket) is None
    assert parse_s3_url(f"s3://{bucket}/k").bucket == bucket


@pytest.mark.parametrize(
    ("bucket", "why"),
    [
        ("", "no bucket"),
        ("ab", "3 to 63"),
        ("a" * 64, "3 to 63"),
        ("Upper", "other than"),
        ("under_score", "other than"),
        ("sp ace", "other than"),
        ("-lead", "begin and end"),
        ("trail.", "begin and end"),
        ("a..b", "adjacent periods"),
        ("10.0.0.1", "IP address"),
    ],
)
def test_invalid_bucket_names_are_refused(bucket: str, why: str) -> None:
    problem = bucket_problem(bucket)
    assert problem is not None and why in problem
    with pytest.raises(UsageError, match="invalid bucket name") as info:
        parse_s3_url(f"s3://{bucket}/k")
    assert "naming rules" in info.value.hint


def test_key_length_is_counted_in_utf8_bytes() -> None:
    assert key_problem("k" * 1024) is None
    assert "1,025 bytes" in (key_problem("k" * 1025) or "")
    assert key_problem("é" * 512) is None  # 1,024 bytes
    assert "1,026 bytes" in (key_problem("é" * 513) or "")
    with pytest.raises(UsageError, match="1,024"):
        parse_s3_url("s3://bucket/" + "k" * 1025)


@pytest.mark.parametrize("key", ["a\0b", "tab\there", "new\nline", "bell\x07", "del\x7f"])
def test_control_characters_are_refused(key: str) -> None:
    assert "control character" in (key_problem(key) or "")


@pytest.mark.parametrize("key", ["a/../b", "../a", "a/./b", "/abs", "a//b", ".."])
def test_keys_that_cannot_name_a_file(key: str) -> None:
    assert key_problem(key) is None  # fine as a listing prefix
    assert object_key_problem(key) is not None


@pytest.mark.parametrize(
    "key", ["a/b.txt", "sp ace/it's $x.bin", "\u00fc/caf\u00e9.txt", "a..b/c", ".hidden"]
)
def test_ordinary_keys_pass(key: str) -> None:
    assert object_key_problem(key) is None


def test_a_prefix_below_which_no_key_is_valid() -> None:
    require_key_prefix("bucket", "ok/prefix/")
    require_key_prefix("bucket", "")
    for prefix in ("a/../", "/abs/", "a//"):
        with pytest.raises(UsageError, match="invalid prefix"):
            require_key_prefix("bucket", prefix)


def test_messages_show_keys_on_one_short_line() -> None:
    assert show_key("plain/key") == "plain/key"
    assert show_key("a\nb") == "a\\nb"
    long = show_key("k" * 1100)
    assert len(long) < 140 and "1,100 bytes" in long


def test_server_reply_is_read_from_an_obstore_error() -> None:
    text = (
        "Generic S3 error: Error performing PUT http://h/b/k in 1ms - Server returned non-2xx status code: "
        '400 Bad Request: <?xml version="1.0"?><Error><Code>KeyTooLongError</Code>'
        "<Message>Your key is too long &amp; more.</Message></Error>"
    )
    reply = ServerReply.parse(text)
    assert (reply.status, reply.code, reply.method) == (400, "KeyTooLongError", "PUT")
    assert reply.reason == "KeyTooLongError: Your key is too long & more. (HTTP 400)"
    assert ServerReply.parse("Server returned non-2xx status code: 403 Forbidden: ").reason == "HTTP 403"


class _FakeGet:
    """What S3Reader reads of an obstore GetResult: meta, attributes, a chunk stream and
    the whole body at once (which S3Reader asks for when the body is small)."""

    def __init__(self, data: bytes, chunk: int) -> None:
        self.meta = {"size": len(data)}
        self.attributes: dict[str, str] = {}
        self._data, self._chunk = data, chunk

    async def _chunks(self) -> Any:
        for i in range(0, len(self._data), self._chunk):
            yield self._data[i : i + self._chunk]

    def stream(self, min_chunk_size: int = 0) -> Any:
        return self._chunks()

    async def bytes_async(self) -> bytes:
        return self._data


@pytest.mark.parametrize(("skip", "limit"), [(0, None), (0, 5), (3, 4), (7, None), (10, 100), (99, 1)])
@pytest.mark.parametrize("chunk", [1, 3, 64])
def test_a_range_is_cut_out_of_a_whole_body(skip: int, limit: int | None, chunk: int) -> None:
    """A server that ignores Range sends every byte; the reader yields just the range."""
    import asyncio

    from runctl.stores.s3 import S3Reader

    data = bytes(range(100))
    reader = S3Reader(_FakeGet(data, chunk), skip=skip, limit=limit)  # type: ignore[arg-type]

    async def read() -> bytes:
        return b"".join([bytes(c) async for c in reader.chunks()])

    end = None if limit is None else skip + limit
    assert asyncio.run(read()) == data[skip:end]
    assert reader.size == 100
