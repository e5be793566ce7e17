"""S3 (and any S3-compatible server) as a store, on obstore.

obstore signs and moves bytes in Rust, so the per-request Python cost stays small:
that is what decides the many-small-files case (see bench/s3_bench.py).
"""

from __future__ import annotations

import asyncio
import builtins
import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import obstore
from obstore.exceptions import PermissionDeniedError, UnauthenticatedError
from obstore.store import S3Store as _ObS3Store

from ..digests import MD5, S3_ETAG, DigestSpec
from ..errors import (
    AccessDeniedError,
    BucketNotFoundError,
    CredentialsError,
    NetworkError,
    NotFoundError,
    RunctlError,
    UsageError,
)
from .base import Entry, ProgressFn, Reader, Store
from .local import CHUNK
from .s3_config import S3Options, store_kwargs

if TYPE_CHECKING:
    from obstore import GetResult

MAX_PARTS = 10_000
MTIME_KEY = "mtime"
"""User metadata key for the source mtime (x-amz-meta-mtime, the same key rclone uses)."""

_CREDENTIAL_CODES = ("SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidToken", "ExpiredToken")
_STATUS_RE = re.compile(r"Server returned non-2xx status code: (\d{3})")
_BAD_PATH_RE = re.compile(r'Error parsing Path "(.*)": |Path "(.*)" contained empty path segment')


@dataclass(frozen=True)
class S3Url:
    bucket: str
    key: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_s3_url(url: str) -> S3Url:
    """Split ``s3://bucket/key`` into bucket and key; raise UsageError on anything else."""
    if not url.startswith("s3://"):
        raise UsageError(f"not an S3 URL: {url!r}", "S3 locations look like s3://BUCKET/PREFIX")
    rest = url[5:]
    bucket, _, key = rest.partition("/")
    if not re.fullmatch(r"[a-z0-9][a-z0-9.\-_]{1,254}", bucket or ""):
        raise UsageError(f"invalid bucket name in {url!r}", "S3 locations look like s3://BUCKET/PREFIX")
    return S3Url(bucket, key)


def part_size_for(size: int, part_size: int) -> int:
    """The part size to use: the configured one, grown so no upload needs > 10,000 parts."""
    needed = -(-size // MAX_PARTS)
    return max(part_size, needed)


class S3Reader(Reader):
    def __init__(self, result: GetResult) -> None:
        self._result = result
        self.size = int(result.meta["size"])
        raw = result.attributes.get(MTIME_KEY)
        self.mtime = _parse_mtime(raw)

    async def chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self._result.stream(min_chunk_size=CHUNK):
            yield chunk  # obstore.Bytes supports the buffer protocol


def _parse_mtime(raw: str | None) -> float | None:
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


class S3Store(Store):
    """A bucket and a key prefix. ``prefix`` is "" or ends with "/" (or is a single key's dir)."""

    mtime_precision = 1.0  # LastModified has whole seconds
    listing_mtime_is_source = False
    item_field = "key"
    # S3 computes no digest on request; its listing carries the ETag (listed_digest).

    def __init__(
        self,
        bucket: str,
        prefix: str,
        options: S3Options,
        *,
        part_size: int = 8 * 1024 * 1024,
        parts_in_flight: int = 4,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.url = f"s3://{bucket}/{prefix}"
        self.display_prefix = prefix
        self.part_size = part_size
        self.parts_in_flight = parts_in_flight
        self._options = options
        self._kwargs = store_kwargs(options)
        self.endpoint = self._kwargs.get("endpoint", "AWS S3")
        self._store = _ObS3Store(bucket, **self._kwargs)

    # -- errors -----------------------------------------------------------------
    def map_error(self, exc: BaseException, path: str | None = None) -> BaseException:
        """Turn an obstore/network exception into a typed runctl error."""
        if isinstance(exc, RunctlError | asyncio.CancelledError):
            return exc
        text = str(exc)
        first = text.split("\n", 1)[0]
        where = f"s3://{self.bucket}/{self.prefix}{path}" if path is not None else self.url
        if _BAD_PATH_RE.search(text):
            return UsageError(
                f"refusing key {where!r}: it has '..', '.' or empty path segments",
                "Such keys could write outside the destination; rename the object.",
            )
        if "NoSuchBucket" in text:
            return BucketNotFoundError(
                f"bucket not found: s3://{self.bucket} (at {self.endpoint})",
                "Check the bucket name, or create it first.",
            )
        if isinstance(exc, FileNotFoundError):
            return NotFoundError(f"not found: {where}", "Check the key; `runctl s3 list` shows what exists.")
        rejected = [c for c in _CREDENTIAL_CODES if c in text]
        if rejected:
            return CredentialsError(f"credentials rejected by {self.endpoint}: {rejected[0]}")
        if isinstance(exc, PermissionDeniedError | UnauthenticatedError) or "403 Forbidden" in text:
            # A HEAD's 403 has no body: it cannot tell a wrong secret from a missing permission.
            return AccessDeniedError(
                f"access denied: {where}",
                "Check the credentials (AWS_SECRET_ACCESS_KEY, --profile) and their access to this bucket.",
            )
        if "kind: Timeout" in text or "timed out" in text:
            return NetworkError(
                f"S3 endpoint {self.endpoint} did not answer in time",
                "The server accepted the connection but stopped responding; check its health.",
            )
        if any(s in text for s in ("error sending request", "Connection refused", "dns error", "connection")):
            return NetworkError(
                f"cannot reach S3 endpoint {self.endpoint}",
                "Check --endpoint-url / AWS_ENDPOINT_URL and that the server is running.",
            )
        status = _STATUS_RE.search(text)
        if status and status.group(1).startswith("5"):
            return NetworkError(f"S3 server error at {self.endpoint}: HTTP {status.group(1)} on {where}")
        return RunctlError(f"S3 error on {where}: {_clip(first)}")

    # -- listing ----------------------------------------------------------------
    async def list(self) -> AsyncIterator[Entry]:
        """All objects under the prefix, in key order (UTF-8 byte order, which is Python's
        string order), across every page.

        Sorted here, not trusted: SeaweedFS, which ``runctl local-s3`` ships, pages in
        directory-walk order (``a/b`` before ``a-b``), and sync's merge of two listings
        would then copy a file and delete it in the same run. AWS already returns key
        order, which the sort (timsort) checks in one pass. Directory markers (empty
        ``dir/`` objects) are skipped. Keys that cannot be a relative path (``..``, a
        leading ``/``, ``//``) are yielded as-is so the engine can refuse them by name.
        """
        entries = [e async for e in self._list_as_served()]
        entries.sort(key=_path)
        for entry in entries:
            yield entry

    async def _list_as_served(self) -> AsyncIterator[Entry]:
        """The listing in the server's order (markers are recognised by what follows them)."""
        n = len(self.prefix)
        pending: Entry | None = None
        async for key, size, mtime, etag in self._raw_list(self.prefix):
            entry = Entry(key[n:], size, mtime, etag)
            is_marker = (
                pending is not None and pending.size == 0 and entry.path.startswith(pending.path + "/")
            )
            if pending is not None and not is_marker and await self._is_object(pending):
                yield pending
            pending = entry if entry.path and not entry.path.endswith("/") else None
        if pending is not None and await self._is_object(pending):
            yield pending

    async def _is_object(self, entry: Entry) -> bool:
        """obstore lists a bare ``dir/`` marker as ``dir``: an empty entry that a HEAD
        cannot find is such a marker. Only empty entries pay for the check."""
        if entry.size:
            return True
        return await self.stat(entry.path) is not None

    async def _raw_list(self, prefix: str) -> AsyncIterator[tuple[str, int, float, str | None]]:
        try:
            stream = obstore.list(self._store, prefix or None, chunk_size=1000)
            async for batch in stream:
                for meta in batch:
                    yield meta["path"], meta["size"], meta["last_modified"].timestamp(), meta["e_tag"]
        except Exception as exc:
            if _BAD_PATH_RE.search(str(exc)):
                # obstore refuses to list keys that are not clean paths (".." and friends).
                # Such buckets are rare; list them through botocore so the engine can
                # warn about the bad key by name and carry on with the rest.
                async for item in self._botocore_list(prefix):
                    yield item
                return
            raise self.map_error(exc) from exc

    async def _botocore_list(self, prefix: str) -> AsyncIterator[tuple[str, int, float, str | None]]:
        client = _botocore_client(self._options, self._kwargs)
        token: str | None = None
        while True:
            args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
            if token:
                args["ContinuationToken"] = token
            page = await asyncio.to_thread(client.list_objects_v2, **args)
            for obj in page.get("Contents", []):
                yield obj["Key"], obj["Size"], obj["LastModified"].timestamp(), obj.get("ETag")
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    async def list_dir(self) -> tuple[builtins.list[str], builtins.list[Entry]]:
        """One level below the prefix: (common prefixes, objects), like ``aws s3 ls``."""
        try:
            result = await obstore.list_with_delimiter_async(self._store, self.prefix or None)
        except Exception as exc:
            if not _BAD_PATH_RE.search(str(exc)):
                raise self.map_error(exc) from exc
            # Keys obstore cannot parse (".."): list this level through botocore instead.
            return await self._botocore_list_dir()
        n = len(self.prefix)
        dirs = [p[n:] + "/" for p in result["common_prefixes"]]
        objs = [
            Entry(m["path"][n:], m["size"], m["last_modified"].timestamp(), m["e_tag"])
            for m in result["objects"]
        ]
        return dirs, objs

    async def _botocore_list_dir(self) -> tuple[builtins.list[str], builtins.list[Entry]]:
        client = _botocore_client(self._options, self._kwargs)
        n = len(self.prefix)
        dirs: builtins.list[str] = []
        objs: builtins.list[Entry] = []
        args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix, "Delimiter": "/"}
        while True:
            page = await asyncio.to_thread(client.list_objects_v2, **args)
            dirs += [p["Prefix"][n:] for p in page.get("CommonPrefixes", [])]
            objs += [
                Entry(o["Key"][n:], o["Size"], o["LastModified"].timestamp(), o.get("ETag"))
                for o in page.get("Contents", [])
            ]
            if not page.get("IsTruncated") or not page.get("NextContinuationToken"):
                return dirs, objs
            args["ContinuationToken"] = page["NextContinuationToken"]

    def listed_digest(self, entry: Entry) -> tuple[DigestSpec, str] | None:
        """The ETag, as what it is: the MD5 of a single-part object, or ``md5(part
        md5s)-N`` of a multipart one, whose parts we assume runctl's own part size
        rule chose (``part_size_for`` with this store's part size)."""
        etag = (entry.etag or "").strip('"')
        if not etag:
            return None
        if "-" not in etag:
            return DigestSpec(MD5), etag
        return DigestSpec(S3_ETAG, part_size_for(entry.size, self.part_size)), etag

    # -- reading ----------------------------------------------------------------
    async def stat(self, path: str) -> Entry | None:
        try:
            meta = await obstore.head_async(self._store, self.prefix + path)
        except FileNotFoundError as exc:
            if "NoSuchBucket" in str(exc):
                raise self.map_error(exc, path) from exc
            return None
        except Exception as exc:
            raise self.map_error(exc, path) from exc
        return Entry(path, meta["size"], meta["last_modified"].timestamp(), meta["e_tag"])

    async def source_mtime(self, path: str) -> float | None:
        """The mtime recorded at upload (x-amz-meta-mtime), else None. One HEAD request."""
        try:
            result = await obstore.get_async(self._store, self.prefix + path, options={"head": True})
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise self.map_error(exc, path) from exc
        return _parse_mtime(result.attributes.get(MTIME_KEY))

    async def open(self, path: str, offset: int = 0, length: int | None = None) -> Reader:
        options: dict[str, Any] = {}
        if offset or length is not None:
            options["range"] = {"offset": offset} if length is None else (offset, offset + length)
        try:
            result = await obstore.get_async(self._store, self.prefix + path, options=options or None)  # type: ignore[arg-type]
        except Exception as exc:
            raise self.map_error(exc, path) from exc
        return S3Reader(result)

    # -- writing ----------------------------------------------------------------
    async def write(self, path: str, src: Store, entry: Entry, progress: ProgressFn) -> None:
        key = self.prefix + path
        try:
            local = src.local_file(entry.path)
            if local is not None:
                st = local.stat()
                size, mtime = st.st_size, st.st_mtime
            else:
                size, mtime = entry.size, entry.mtime
            attrs: dict[str, str] = {MTIME_KEY: f"{mtime:.6f}"}
            part = part_size_for(size, self.part_size)
            if size <= part:
                # One PUT (atomic by nature), bounded by the part size. A local file is
                # handed over by path: obstore reads it off the event loop.
                body: Path | bytes = local if local is not None else await _collect(src, entry.path)
                await obstore.put_async(self._store, key, body, attributes=attrs, use_multipart=False)
                progress(size)
            else:
                # Multipart: parts in flight in parallel; the object appears only on completion.
                await obstore.put_async(
                    self._store,
                    key,
                    _counted(_source_chunks(src, entry.path, part), progress),
                    attributes=attrs,
                    use_multipart=True,
                    chunk_size=part,
                    max_concurrency=self.parts_in_flight,
                )
        except FileNotFoundError as exc:
            if local is not None and exc.filename is not None:
                raise NotFoundError(f"source file vanished: {local}") from exc
            raise self.map_error(exc, path) from exc
        except Exception as exc:
            raise self.map_error(exc, path) from exc

    async def delete(self, paths: Iterable[str]) -> None:
        keys = [self.prefix + p for p in paths]
        # obstore sends DeleteObjects requests of up to 1,000 keys each.
        for i in range(0, len(keys), 1000):
            try:
                await obstore.delete_async(self._store, keys[i : i + 1000])
            except Exception as exc:
                raise self.map_error(exc) from exc


def _clip(text: str, limit: int = 300) -> str:
    """Shorten an error line at a word boundary."""
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " ..."


async def _collect(src: Store, path: str) -> bytes:
    reader = await src.open(path)
    return b"".join([bytes(c) async for c in reader.chunks()])


async def _source_chunks(src: Store, path: str, size: int) -> AsyncIterator[bytes]:
    """Stream a source file in ``size``-byte pieces (local files are read directly)."""
    local = src.local_file(path)
    if local is not None:
        with open(local, "rb") as fh:
            while data := fh.read(size):
                yield data
        return
    reader = await src.open(path)
    async for chunk in reader.chunks():
        yield chunk


async def _counted(chunks: AsyncIterator[bytes], progress: ProgressFn) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        yield chunk
        progress(len(chunk))


def _botocore_client(options: S3Options, kwargs: dict[str, Any]) -> Any:
    import botocore.session

    session = botocore.session.Session(profile=options.profile)
    return session.create_client(
        "s3",
        endpoint_url=kwargs.get("endpoint"),
        region_name=kwargs["region"],
        aws_access_key_id=kwargs.get("access_key_id"),
        aws_secret_access_key=kwargs.get("secret_access_key"),
        aws_session_token=kwargs.get("token"),
    )


def _path(entry: Entry) -> str:
    return entry.path
