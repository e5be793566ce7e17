"""Resuming a multipart upload that an earlier run left unfinished.

A run killed mid-upload (SIGKILL, a lost network, a spot instance reclaimed) leaves its
parts stored under an upload id, billed and invisible, until the upload is completed or
aborted. The next upload of the same file to the same key finds it (ListMultipartUploads,
ListParts), checks every stored part against the file (a part's ETag is its MD5: what is
reused is verified, never trusted blindly), sends only the parts missing or different,
and completes it. Only uploads runctl would have made are resumed (SHA-256 checksums on
every part, s3_config): one the server will not take parts for that way (another tool's,
with another checksum) is aborted and the file sent anew. Parts of another layout, or
that no longer match the file (it changed, or the ETag is no MD5, as under SSE-KMS),
are not reused.

obstore has no call for parts of an existing upload, so this goes through botocore.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..digests import etag_of_parts, parts_for
from ..integrity import off_loop
from .base import ProgressFn

Call = Callable[..., Awaitable[Any]]
"""``call(client_method, **args)``: one botocore call off the loop, errors mapped."""


@dataclass
class Resumable:
    """An unfinished upload of this file: its id and the stored parts that match it."""

    upload_id: str
    matching: dict[int, tuple[str, str]] = field(default_factory=dict)
    """Part number -> (ETag, base64 SHA-256 or ""), for stored parts whose bytes are the file's."""
    skipped: int = 0
    """Bytes not sent again."""


async def find(
    call: Call, client: Any, bucket: str, key: str, path: Path, size: int, part: int
) -> Resumable | None:
    """The newest unfinished upload of ``key`` with at least one part that matches ``path``
    read as ``part``-byte parts, or None."""
    page = await call(client.list_multipart_uploads, Bucket=bucket, Prefix=key)
    uploads = [u for u in page.get("Uploads", []) if u["Key"] == key]
    count = parts_for(size, part)
    for upload in sorted(uploads, key=lambda u: u["Initiated"], reverse=True):
        stored = await _parts(call, client, bucket, key, upload["UploadId"])
        found = Resumable(upload["UploadId"])
        for n, (etag, length) in stored.items():
            if n > count or length != min(part, size - (n - 1) * part):
                continue  # another layout
            data = await off_loop(_read, path, (n - 1) * part, length)
            if hashlib.md5(data, usedforsecurity=False).hexdigest() == etag:
                # The same bytes: their SHA-256 is the stored part's (not every server lists it).
                found.matching[n] = (etag, _sha256(data))
                found.skipped += length
        if found.matching:
            return found
    return None


async def complete(
    call: Call,
    client: Any,
    bucket: str,
    key: str,
    path: Path,
    size: int,
    part: int,
    resumable: Resumable,
    parts_in_flight: int,
    progress: ProgressFn,
) -> tuple[str, str]:
    """Send the parts ``resumable`` lacks and complete it: (the ETag answered, the
    multipart ETag of the file as sent, ``md5(part md5s)-N``)."""
    count = parts_for(size, part)
    md5s = {n: bytes.fromhex(etag) for n, (etag, _) in resumable.matching.items()}
    parts = dict(resumable.matching)
    progress(resumable.skipped)
    gate = asyncio.Semaphore(parts_in_flight)

    async def send(n: int) -> None:
        async with gate:
            length = min(part, size - (n - 1) * part)
            data = await off_loop(_read, path, (n - 1) * part, length)
            digest = hashlib.md5(data, usedforsecurity=False).digest()
            checksum = _sha256(data)
            answer = await call(
                client.upload_part,
                Bucket=bucket,
                Key=key,
                UploadId=resumable.upload_id,
                PartNumber=n,
                Body=data,
                ContentMD5=base64.b64encode(digest).decode(),  # the server checks the body
                # runctl creates its uploads with SHA-256 checksums (s3_config): each part
                # must carry its own, and the completion all of them.
                ChecksumSHA256=checksum,
            )
            md5s[n] = digest
            parts[n] = (str(answer["ETag"]).strip('"'), checksum)
            progress(length)

    await asyncio.gather(*(send(n) for n in range(1, count + 1) if n not in resumable.matching))
    done = await call(
        client.complete_multipart_upload,
        Bucket=bucket,
        Key=key,
        UploadId=resumable.upload_id,
        MultipartUpload={"Parts": [_done(n, *parts[n]) for n in range(1, count + 1)]},
    )
    return str(done.get("ETag", "")), etag_of_parts([md5s[n] for n in range(1, count + 1)])


async def _parts(
    call: Call, client: Any, bucket: str, key: str, upload_id: str
) -> dict[int, tuple[str, int]]:
    """Every stored part of an upload: number -> (ETag, size)."""
    found: dict[int, tuple[str, int]] = {}
    args: dict[str, Any] = {"Bucket": bucket, "Key": key, "UploadId": upload_id}
    while True:
        page = await call(client.list_parts, **args)
        for p in page.get("Parts", []):
            found[int(p["PartNumber"])] = (str(p["ETag"]).strip('"'), int(p["Size"]))
        if not page.get("IsTruncated"):
            return found
        args["PartNumberMarker"] = page["NextPartNumberMarker"]


def _sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _done(n: int, etag: str, checksum: str) -> dict[str, Any]:
    """One part of the completion request."""
    return {"PartNumber": n, "ETag": f'"{etag}"', "ChecksumSHA256": checksum}


def _read(path: Path, offset: int, length: int) -> bytes:
    with open(path, "rb") as fh:
        return os.pread(fh.fileno(), length, offset)
