"""S3 (and any S3-compatible server) as a store, on obstore.

obstore signs and moves bytes in Rust, so the per-request Python cost stays small:
that is what decides the many-small-files case (see bench/s3_bench.py).
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import os
import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast
from urllib.parse import urlsplit

import obstore
from obstore.exceptions import PermissionDeniedError, PreconditionError, UnauthenticatedError
from obstore.store import S3Store as _ObS3Store

from ..crcs import KNOWN as CRCS
from ..crcs import crc32c_combine, crc32c_update
from ..digests import (
    CRC32C,
    MD5,
    S3_ETAG,
    DigestSpec,
    StreamHasher,
    etag_digest,
    etag_parts,
    md5_hex,
    parts_for,
    recorded_crc32c,
)
from ..errors import (
    AccessDeniedError,
    BucketNotFoundError,
    CredentialsError,
    IntegrityError,
    NetworkError,
    NotFoundError,
    ObjectChangedError,
    RunctlError,
    SourceChangedError,
    UsageError,
)
from ..integrity import Expected, Tally, etag_vouches, mismatch, off_loop
from . import s3_listing, s3_resume
from .base import Entry, ProgressFn, Reader, Store
from .local import CHUNK
from .ordering import SPILL_AT, in_key_order
from .s3_config import S3Options, store_kwargs

if TYPE_CHECKING:
    from obstore import GetResult

MAX_PARTS = 10_000
COPY_LIMIT = 5 * 1024**3
"""The largest object one CopyObject request copies."""
MTIME_KEY = "mtime"
"""User metadata key for the source mtime (x-amz-meta-mtime, the same key rclone uses)."""
MD5_KEY = "runctl-md5"
"""User metadata key for the MD5 of an object uploaded in one PUT (x-amz-meta-runctl-md5):
a digest downloads can check that, unlike the ETag, survives copies and SSE-KMS."""
CRC_KEY = "runctl-crc32c"
"""User metadata key for the CRC-32C of a multipart upload's whole file (x-amz-meta-
runctl-crc32c), taken in a pass over the file before the upload starts (metadata goes
with the request that creates the upload) and checked against the bytes sent. Downloads
check it for a twentieth of an MD5's CPU: the CRCs of ranges combine (runctl.crcs)."""
DIGEST_CODES = frozenset({"BadDigest", "XAmzContentSHA256Mismatch"})
"""S3 error codes for a body that arrived other than it was sent (its checksum differs)."""

_STATUS_RE = re.compile(r"Server returned non-2xx status code: (\d{3})")
_BAD_PATH_RE = re.compile(r'Error parsing Path "(.*)": |Path "(.*)" contained empty path segment')
_CODE_RE = re.compile(r"<Code>([^<]{1,100})</Code>")
_MESSAGE_RE = re.compile(r"<Message>([^<]{0,500})</Message>")
_METHOD_RE = re.compile(r"Error performing (GET|PUT|HEAD|POST|DELETE)\b")
_RANGE_IGNORED = "non-partial response when range requested"
"""obstore's words when a server answers a ranged GET with 200 and the whole body."""

MAX_KEY_BYTES = 1024
"""S3's limit on a key, in bytes of UTF-8."""

# S3 error codes (the <Code> of an error answer) by what they mean to the user.
CREDENTIAL_CODES = frozenset(
    {
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
        "InvalidToken",
        "ExpiredToken",
        "TokenRefreshRequired",
        "InvalidSecurity",
        "MissingSecurityHeader",
        "RequestTimeTooSkewed",
    }
)
DENIED_CODES = frozenset({"AccessDenied", "AllAccessDisabled", "AccountProblem", "InvalidPayer"})
INPUT_CODES = frozenset(
    {
        "KeyTooLongError",
        "InvalidBucketName",
        "InvalidObjectName",
        "EntityTooLarge",
        "EntityTooSmall",
        "MetadataTooLarge",
        "InvalidStorageClass",
        "AuthorizationHeaderMalformed",
        "PermanentRedirect",
        "IllegalLocationConstraintException",
    }
)
NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchUpload", "NoSuchVersion"})
TRANSIENT_CODES = frozenset({"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout"})

_CREDENTIAL_HINTS = {
    "ExpiredToken": "The session token has expired: get fresh temporary credentials (aws sso login, "
    "aws sts ..., or your credential process) and run again.",
    "TokenRefreshRequired": "The session token has expired: get fresh temporary credentials and run again.",
    "InvalidToken": "AWS_SESSION_TOKEN does not belong to these keys: unset it for long-term keys, "
    "or set all three from the same temporary credentials.",
    "RequestTimeTooSkewed": "This machine's clock is off: sync it (S3 refuses requests more than "
    "15 minutes out).",
}
BUCKET_HINT = (
    "Bucket names are 3 to 63 characters of a-z, 0-9, '.' and '-', begin and end with a letter "
    "or digit, have no '..' and are not an IP address (S3's naming rules)."
)


@dataclass(frozen=True)
class S3Url:
    bucket: str
    key: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class ServerReply:
    """What an S3 server said when it refused a request, as far as the error tells."""

    status: int | None = None
    code: str | None = None
    message: str | None = None
    method: str | None = None

    @classmethod
    def parse(cls, text: str) -> ServerReply:
        import html  # error replies only: not paid by every command's start-up

        status = _STATUS_RE.search(text)
        code = _CODE_RE.search(text)
        message = _MESSAGE_RE.search(text)
        method = _METHOD_RE.search(text)
        return cls(
            int(status.group(1)) if status else None,
            html.unescape(code.group(1)).strip() if code else None,
            html.unescape(message.group(1)).strip() if message else None,
            method.group(1) if method else None,
        )

    @property
    def reason(self) -> str:
        """``Code: Message (HTTP status)``, or what there is of it."""
        said = ": ".join(p for p in (self.code, self.message) if p)
        status = f"HTTP {self.status}" if self.status else ""
        if said and status:
            return f"{said} ({status})"
        return said or status


def show_key(text: str, limit: int = 120) -> str:
    """A key (or URL) for a one-line message: control characters escaped, long ones cut in
    the middle (a 1,100-byte key would otherwise fill the screen)."""
    shown = (
        text.encode("unicode_escape", "backslashreplace").decode("ascii") if not text.isprintable() else text
    )
    if len(shown) <= limit:
        return shown
    return f"{shown[: limit - 30]}...{shown[-20:]} ({len(text.encode('utf-8', 'surrogatepass')):,} bytes)"


def bucket_problem(bucket: str) -> str | None:
    """Why ``bucket`` cannot be an S3 bucket name, or None (S3's general purpose naming rules;
    access point aliases and directory buckets follow them too)."""
    if not bucket:
        return "no bucket name"
    if not 3 <= len(bucket) <= 63:
        return f"{show_key(bucket)!r} has {len(bucket)} characters, and bucket names have 3 to 63"
    if not re.fullmatch(r"[a-z0-9.\-]+", bucket):
        return f"{show_key(bucket)!r} has characters other than a-z, 0-9, '.' and '-'"
    if not (bucket[0].isalnum() and bucket[-1].isalnum()):
        return f"{bucket!r} does not begin and end with a letter or digit"
    if ".." in bucket:
        return f"{bucket!r} has two adjacent periods"
    if re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", bucket):
        return f"{bucket!r} is formatted as an IP address"
    return None


def key_problem(key: str) -> str | None:
    """Why ``key`` cannot be sent to S3 at all (as a key or a prefix), or None."""
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        return "it is not valid UTF-8"
    if size > MAX_KEY_BYTES:
        return f"it is {size:,} bytes long and S3 keys are at most 1,024 bytes (UTF-8)"
    bad = next((c for c in key if ord(c) < 0x20 or ord(c) == 0x7F), None)
    if bad is not None:
        return f"it contains the control character {bad!r}"
    return None


def object_key_problem(key: str) -> str | None:
    """Why ``key`` cannot name an object runctl reads or writes, or None: besides
    ``key_problem``, a key must map to a relative path (no leading '/', no '.', '..' or
    empty segments), as it does on the way down."""
    problem = key_problem(key)
    if problem is not None:
        return problem
    if key.startswith("/"):
        return "it starts with '/' (an absolute path)"
    segments = key.split("/")
    if any(s in (".", "..") for s in segments):
        return "it has '.' or '..' segments"
    if "" in segments[:-1]:
        return "it has an empty segment ('//')"
    return None


def require_object_key(bucket: str, key: str) -> None:
    """Refuse, before any request, a key no object can (safely) have."""
    problem = object_key_problem(key)
    if problem is not None:
        raise UsageError(f"invalid key s3://{bucket}/{show_key(key)}: {problem}", _key_hint(problem))


def require_key_prefix(bucket: str, prefix: str) -> None:
    """Refuse a prefix that files would be written below, when no key below it can be
    valid (``..`` or empty segments, a leading '/')."""
    if prefix:
        problem = object_key_problem(prefix + "x")
        if problem is not None:
            raise UsageError(
                f"invalid prefix s3://{bucket}/{show_key(prefix)}: {problem}", _key_hint(problem)
            )


def _key_hint(problem: str) -> str:
    if "1,024" in problem:
        return "Shorten the key (or the prefix it goes under): S3 refuses keys over 1,024 bytes."
    if "control character" in problem or "UTF-8" in problem:
        return "Rename it: control characters in keys break listings, logs and local file names."
    return "Use a key made of plain path segments, e.g. s3://bucket/dir/name."


def parse_s3_url(url: str) -> S3Url:
    """Split ``s3://bucket/key`` into bucket and key; raise UsageError on anything else
    (bad bucket names, keys S3 cannot take), before any request is made."""
    if not url.startswith("s3://"):
        raise UsageError(f"not an S3 URL: {show_key(url)!r}", "S3 locations look like s3://BUCKET/PREFIX")
    rest = url[5:]
    bucket, _, key = rest.partition("/")
    problem = bucket_problem(bucket)
    if problem is not None:
        raise UsageError(f"invalid bucket name in {show_key(url)!r}: {problem}", BUCKET_HINT)
    problem = key_problem(key)
    if problem is not None:
        raise UsageError(f"invalid key s3://{bucket}/{show_key(key)}: {problem}", _key_hint(problem))
    return S3Url(bucket, key)


def part_size_for(size: int, part_size: int) -> int:
    """The part size to use: the configured one, grown so no upload needs > 10,000 parts."""
    needed = -(-size // MAX_PARTS)
    return max(part_size, needed)


class S3Reader(Reader):
    """One GET's body. ``skip``/``limit`` cut a requested range out of a whole body, for
    servers that answer a ranged GET with all of it."""

    def __init__(
        self,
        result: GetResult,
        *,
        skip: int = 0,
        limit: int | None = None,
        whole: bool = False,
        expected: Expected | None = None,
        errors: Callable[[BaseException], BaseException] | None = None,
    ) -> None:
        self._result = result
        self._errors = errors
        """Maps a failure mid-body (the server gone, a reset) to a typed error."""
        self.size = int(result.meta["size"])
        raw = result.attributes.get(MTIME_KEY)
        self.mtime = _parse_mtime(raw)
        self.whole = whole
        self.version = result.meta.get("e_tag")
        self.expected = expected
        self._skip = skip
        self._limit = limit

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._body():
                yield chunk
        except Exception as exc:
            if self._errors is None:
                raise
            raise self._errors(exc) from exc

    async def _body(self) -> AsyncIterator[bytes]:
        if not self._skip and self._limit is None:
            if self.size <= CHUNK:
                # One completion from obstore instead of two (a chunk, then the end): on a
                # download of many small files each is a wake-up of the loop and a GIL hand-off.
                yield cast(bytes, await self._result.bytes_async())  # a buffer, as below
                return
            async for chunk in self._result.stream(min_chunk_size=CHUNK):
                yield chunk  # obstore.Bytes supports the buffer protocol
            return
        skip, left = self._skip, self._limit
        async for chunk in self._result.stream(min_chunk_size=CHUNK):
            view = memoryview(chunk)
            if skip:
                if len(view) <= skip:
                    skip -= len(view)
                    continue
                view, skip = view[skip:], 0
            if left is not None and len(view) >= left:
                yield bytes(view[:left])
                return
            if left is not None:
                left -= len(view)
            yield bytes(view)


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
    files_in_flight = 256
    tally: Tally
    """As s5cmd's default workers: a small object is one request, bound by latency."""
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
        self._ranges_ignored = False
        self.tally = Tally()
        """Uploads verified against the server's ETag, or not (runctl.integrity)."""
        """Set once the server has answered a ranged GET with the whole body."""
        self._boto: Any = None
        self._client_lock = asyncio.Lock()

    # -- errors -----------------------------------------------------------------
    def map_error(self, exc: BaseException, path: str | None = None) -> BaseException:
        """Turn an obstore/network exception into a typed runctl error that carries the
        server's own reason (its error code and message) when it gave one."""
        if isinstance(exc, RunctlError | asyncio.CancelledError):
            return exc
        text = str(exc)
        first = text.split("\n", 1)[0]
        where = show_key(f"s3://{self.bucket}/{self.prefix}{path}" if path is not None else self.url)
        if _BAD_PATH_RE.search(text):
            return UsageError(
                f"refusing key {where!r}: it has '..', '.' or empty path segments",
                "Such keys could write outside the destination; rename the object.",
            )
        reply = ServerReply.parse(text)
        code = reply.code
        said = f": {reply.reason}" if code else ""
        if code == "NoSuchBucket" or (code is None and "NoSuchBucket" in text):
            return BucketNotFoundError(
                f"bucket not found: s3://{self.bucket} (at {self.endpoint})",
                "Check the bucket name, or create it first.",
            )
        if (
            code in NOT_FOUND_CODES
            or reply.status == 404
            or (code is None and isinstance(exc, FileNotFoundError))
        ):
            return NotFoundError(
                f"not found: {where}{said}", "Check the key; `runctl s3 list` shows what exists."
            )
        if isinstance(exc, PreconditionError) or code == "PreconditionFailed" or reply.status == 412:
            # Only reads are conditional (a range's If-Match on the first range's ETag).
            return ObjectChangedError(f"{where} was rewritten while it was being downloaded")
        if code in CREDENTIAL_CODES:
            return CredentialsError(
                f"credentials rejected by {self.endpoint}: {reply.reason}", _CREDENTIAL_HINTS.get(code)
            )
        if (
            code in DENIED_CODES
            or reply.status == 403
            or (code is None and isinstance(exc, PermissionDeniedError | UnauthenticatedError))
        ):
            # A HEAD's 403 has no body: it cannot tell a wrong secret from a missing permission.
            return AccessDeniedError(
                f"access denied: {where}{said}",
                "Check the credentials (AWS_SECRET_ACCESS_KEY, --profile) and their access to this bucket.",
            )
        if code in INPUT_CODES:
            region = code in ("AuthorizationHeaderMalformed", "PermanentRedirect")
            return UsageError(
                f"S3 refused {reply.method or 'the request'} {where}: {reply.reason}",
                "The bucket is in another region: pass --region (or set AWS_REGION)."
                if region
                else "That is the server's own reason; change the name or size it refers to.",
            )
        if code in TRANSIENT_CODES or (reply.status or 0) >= 500:
            # The code says it all; 5xx messages are boilerplate ("Please try again").
            status = " ".join(p for p in (f"HTTP {reply.status}" if reply.status else "", code or "") if p)
            return NetworkError(
                f"S3 server error at {self.endpoint}: {status or 'no answer'} on {where}",
                "The server kept failing after retries; try again later, or check its health.",
            )
        if "kind: Timeout" in text or "timed out" in text:
            return NetworkError(
                f"S3 endpoint {self.endpoint} did not answer in time",
                "The server accepted the connection but stopped responding; check its health.",
            )
        if reply.status is None and any(
            s in text for s in ("error sending request", "Connection refused", "dns error", "connection")
        ):
            return NetworkError(
                f"cannot reach S3 endpoint {self.endpoint}",
                "Check --endpoint-url / AWS_ENDPOINT_URL and that the server is running.",
            )
        if reply.status is not None:
            return RunctlError(
                f"S3 refused {reply.method or 'the request'} {where}: {reply.reason}",
                "That is the server's own reason; rerun with -v for its whole answer.",
            )
        return RunctlError(f"S3 error on {where}: {_clip(first)}", "Rerun with -v for the whole error.")

    async def _explain(self, exc: BaseException, path: str) -> BaseException:
        """The typed error for a failed HEAD. A HEAD answer has no body, so an error there
        carries no S3 error code (an expired token, a wrong secret and a missing permission
        all look alike): ask once more with a one-byte GET, whose error answer says why."""
        mapped = self.map_error(exc, path)
        if ServerReply.parse(str(exc)).code is not None or type(mapped) not in (
            AccessDeniedError,
            RunctlError,
        ):
            return mapped
        try:
            await obstore.get_async(self._store, self.prefix + path, options={"range": (0, 1)})
        except Exception as again:
            if ServerReply.parse(str(again)).code is not None:
                return self.map_error(again, path)
        return mapped

    # -- listing ----------------------------------------------------------------
    async def list(self) -> AsyncIterator[Entry]:
        """All objects under the prefix, in key order (UTF-8 byte order, which is Python's
        string order), across every page.

        A listing longer than one page is listed in parallel (stores.s3_listing cuts the
        prefix where its tree branches). AWS documents key order, so its pages stream as
        served; other servers are sorted here (stores.ordering, in bounded memory):
        SeaweedFS, which ``runctl local-s3`` ships, pages in directory-walk order (``a/b``
        before ``a-b``), and sync's merge would then copy a file and delete it in the
        same run. Either way the order is checked as it goes: a key out of order is an
        error, never a wrong merge. Directory markers (empty ``dir/`` objects) are
        skipped. Keys that cannot be a relative path (``..``, a leading ``/``, ``//``)
        are yielded as-is so the engine can refuse them by name.
        """
        raw = self._raw_list(self.prefix)
        first: builtins.list[_Listed] = []
        async for item in raw:
            first.append(item)
            if len(first) >= _ONE_PAGE:
                break
        n = len(self.prefix)
        # Under one page (``raw`` is then spent), or a full page of objects side by side:
        # the root level would be such a flat run too, which is not cut (see _level). So
        # the listing goes on page by page from here, without the delimited look
        # (botocore's import, client and XML: ~0.3 s of a 2,000-file download).
        if len(first) < _ONE_PAGE or not any("/" in key[n:] for key, _, _, _ in first):
            listing = self._in_order(self._list_as_served(_chain(first, raw)), in_key_order)
        else:
            await raw.aclose()  # before the next page is asked for
            listing = self._list_in_parallel()
        last = ""
        async for entry in listing:
            if entry.path < last:
                raise RunctlError(
                    f"{self.endpoint} listed {self.url}{entry.path} after {self.url}{last}: "
                    "not in key order, so a sync cannot be planned safely",
                    "Report it; a custom --endpoint-url is listed in any order and sorted by runctl.",
                )
            last = entry.path
            yield entry

    @property
    def lists_in_key_order(self) -> bool:
        """AWS S3 itself (no custom endpoint, or an amazonaws.com one)."""
        host = urlsplit(str(self._kwargs.get("endpoint") or "https://s3.amazonaws.com")).hostname or ""
        return host == "amazonaws.com" or host.endswith(".amazonaws.com")

    def _in_order(
        self, served: AsyncIterator[Entry], sort: Callable[[AsyncIterator[Entry]], AsyncIterator[Entry]]
    ) -> AsyncIterator[Entry]:
        return served if self.lists_in_key_order else sort(served)

    def _list_in_parallel(self) -> AsyncIterator[Entry]:
        """The listing as ranges listed side by side and read back in order."""
        return s3_listing.listing(self._level, self._list_range)

    def _list_range(self, key: str) -> AsyncIterator[Entry]:
        """Every object under ``key`` (a prefix below the store's, ending in "/")."""
        prefix = self.prefix + key
        raw = self._raw_list(prefix) if _obstore_lists(key) else self._botocore_list(prefix)
        # Ranges sort in memory side by side: each spills to disk sooner.
        return self._in_order(
            _below(key, self._list_as_served(raw)),
            functools.partial(in_key_order, spill_at=SPILL_AT // s3_listing.WINDOW),
        )

    async def _level(self, key: str, limit: int | None) -> s3_listing.Level | None:
        """One delimited level below ``key``: (sub-prefixes, objects), relative to the
        store; None when it holds more than ``limit`` entries, or its first page is a
        flat run of objects with more to come (a level not worth cutting)."""
        client = await self._client()
        n = len(self.prefix)
        dirs: builtins.list[str] = []
        objs: builtins.list[Entry] = []
        args: dict[str, Any] = {
            "Bucket": self.bucket,
            "Prefix": self.prefix + key,
            "Delimiter": "/",
            "MaxKeys": s3_listing.LEVEL_PAGE,
        }
        while True:
            page = await self._botocore(client.list_objects_v2, **args)
            dirs += [p["Prefix"][n:] for p in page.get("CommonPrefixes", [])]
            objs += [
                Entry(o["Key"][n:], o["Size"], o["LastModified"].timestamp(), o.get("ETag"))
                for o in page.get("Contents", [])
            ]
            if not page.get("IsTruncated") or not page.get("NextContinuationToken"):
                if self.lists_in_key_order:  # AWS: raw keys, a marker is "dir/" itself
                    return dirs, objs
                # SeaweedFS lists a directory's marker as an empty object named like the
                # directory (no slash): the same reading as _list_as_served's.
                subdirs = set(dirs)
                return dirs, [o for o in objs if o.size or o.path + "/" not in subdirs]
            if limit is not None and (not dirs or len(dirs) + len(objs) >= limit):
                return None
            args["ContinuationToken"] = page["NextContinuationToken"]

    async def _client(self) -> Any:
        """One botocore client per store (creating one costs ~50 ms; they are thread-safe)."""
        async with self._client_lock:
            if self._boto is None:
                self._boto = await off_loop(_botocore_client, self._options, self._kwargs)
        return self._boto

    async def _list_as_served(self, raw: AsyncIterator[_Listed]) -> AsyncIterator[Entry]:
        """A listing in the server's order (markers are recognised by what follows them)."""
        n = len(self.prefix)
        pending: Entry | None = None
        async for key, size, mtime, etag in raw:
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

    async def _raw_list(self, prefix: str) -> AsyncGenerator[_Listed]:
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

    async def _botocore_list(self, prefix: str) -> AsyncIterator[_Listed]:
        client = await self._client()
        token: str | None = None
        while True:
            args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
            if token:
                args["ContinuationToken"] = token
            page = await self._botocore(client.list_objects_v2, **args)
            for obj in page.get("Contents", []):
                yield obj["Key"], obj["Size"], obj["LastModified"].timestamp(), obj.get("ETag")
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    # -- unfinished multipart uploads (obstore has no call for them: botocore) -------
    async def unfinished_uploads(self) -> builtins.list[Upload]:
        """Multipart uploads started under the prefix and neither completed nor aborted
        (their parts are stored, and billed, until one or the other), oldest first."""
        client = _botocore_client(self._options, self._kwargs)
        args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix}
        found: builtins.list[Upload] = []
        n = len(self.prefix)
        while True:
            page = await self._botocore(client.list_multipart_uploads, **args)
            found += [
                Upload(u["Key"][n:], u["UploadId"], u["Initiated"].timestamp())
                for u in page.get("Uploads", [])
            ]
            if not page.get("IsTruncated"):
                break
            args.update(KeyMarker=page.get("NextKeyMarker"), UploadIdMarker=page.get("NextUploadIdMarker"))
        return sorted(found, key=lambda u: (u.initiated, u.path))

    async def abort_upload(self, upload: Upload) -> None:
        client = _botocore_client(self._options, self._kwargs)
        await self._botocore(
            client.abort_multipart_upload,
            Bucket=self.bucket,
            Key=self.prefix + upload.path,
            UploadId=upload.upload_id,
        )

    async def _botocore(self, call: Any, **args: Any) -> Any:
        """A botocore call off the event loop, its errors mapped as obstore's are."""
        import botocore.exceptions

        try:
            # off_loop: inline at interpreter exit, when a background upload may still run.
            return await off_loop(functools.partial(call, **args))
        except botocore.exceptions.ClientError as exc:
            import html

            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            # Said the way obstore says it, so that one mapping serves both clients.
            text = (
                f"Server returned non-2xx status code: {status}: "
                f"<Code>{html.escape(str(error.get('Code', '')))}</Code>"
                f"<Message>{html.escape(str(error.get('Message', '')))}</Message>"
            )
            key = args.get("Key")
            raise self.map_error(RuntimeError(text), key[len(self.prefix) :] if key else None) from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise self.map_error(RuntimeError(f"connection error: {exc}")) from exc

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
        level = await self._level("", None)
        assert level is not None  # no limit: the whole level
        return level

    def listed_digest(self, entry: Entry) -> tuple[DigestSpec, str] | None:
        """The ETag, as what it is: the MD5 of a single-part object, or ``md5(part
        md5s)-N`` of a multipart one, whose parts we assume runctl's own part size
        rule chose (``part_size_for`` with this store's part size)."""
        return etag_digest(entry.etag, part_size_for(entry.size, self.part_size))

    # -- reading ----------------------------------------------------------------
    async def stat(self, path: str) -> Entry | None:
        try:
            meta = await obstore.head_async(self._store, self.prefix + path)
        except FileNotFoundError as exc:
            if "NoSuchBucket" in str(exc):
                raise self.map_error(exc, path) from exc
            return None
        except Exception as exc:
            raise await self._explain(exc, path) from exc
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

    async def open(
        self, path: str, offset: int = 0, length: int | None = None, version: str | None = None
    ) -> Reader:
        ranged = bool(offset or length is not None)
        if ranged and self._ranges_ignored:
            return await self._open_whole(path, offset, length, version)
        options: dict[str, Any] = {}
        if version is not None:
            options["if_match"] = version
        if ranged:
            options["range"] = {"offset": offset} if length is None else (offset, offset + length)
        try:
            result = await obstore.get_async(self._store, self.prefix + path, options=options or None)  # type: ignore[arg-type]
        except Exception as exc:
            if ranged and _RANGE_IGNORED in str(exc):
                self._ranges_ignored = True
                return await self._open_whole(path, offset, length, version)
            raise self.map_error(exc, path) from exc
        return S3Reader(
            result,
            expected=self._expected(path, result) if offset == 0 else None,
            errors=functools.partial(self.map_error, path=path),
        )

    async def _open_whole(self, path: str, offset: int, length: int | None, version: str | None) -> Reader:
        """For a server that ignores Range (it answers 200 with the whole body, as ``rclone
        serve s3`` does): one plain GET. From offset 0 the reader holds the whole object and
        says so (``whole``): a large download then streams that one body instead of asking
        for each range. From elsewhere the bytes before ``offset`` are read and dropped."""
        try:
            options: Any = {"if_match": version} if version is not None else None
            result = await obstore.get_async(self._store, self.prefix + path, options=options)
        except Exception as exc:
            raise self.map_error(exc, path) from exc
        if offset == 0:
            return S3Reader(
                result,
                whole=True,
                expected=self._expected(path, result),
                errors=functools.partial(self.map_error, path=path),
            )
        return S3Reader(
            result, skip=offset, limit=length, errors=functools.partial(self.map_error, path=path)
        )

    def _expected(self, path: str, result: GetResult) -> Expected | None:
        """The digest a GET's answer vouches for: the CRC-32C or MD5 runctl recorded at upload, else
        the ETag when it is a plain MD5 or a multipart ETag whose part count fits runctl's
        part size rule (then each part is ``part_size_for`` bytes, assumed until a
        mismatch makes ``_etag_vouches`` ask). None: nothing usable, nothing checked."""
        crc = recorded_crc32c(result.attributes.get(CRC_KEY))
        if crc is not None:
            return Expected(DigestSpec(CRC32C), crc, "recorded CRC-32C")
        recorded = etag_digest(result.attributes.get(MD5_KEY), 0)
        if recorded is not None and recorded[0].kind == MD5:
            return Expected(recorded[0], recorded[1], "recorded MD5")
        size = int(result.meta["size"])
        part = part_size_for(size, self.part_size)
        found = etag_digest(result.meta["e_tag"], part)
        if found is None:
            return None
        spec, value = found
        if spec.kind == S3_ETAG and etag_parts(value) != parts_for(size, part):
            return None  # uploaded with another part size: its parts are unknown

        async def recheck() -> bool:
            return await self._etag_vouches(path, part if spec.kind == S3_ETAG else None)

        return Expected(spec, value, "ETag", recheck)

    async def _etag_vouches(self, path: str, part_size: int | None) -> bool:
        """Whether the object's ETag is a digest of its content (one HEAD, asked only after
        a mismatch): not under SSE-KMS or SSE-C; for a multipart ETag, only when the
        server says its first part is ``part_size`` bytes (HEAD with partNumber=1)."""
        client = await off_loop(_botocore_client, self._options, self._kwargs)
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self.prefix + path}
        if part_size is not None:
            args["PartNumber"] = 1
        head = await self._botocore(client.head_object, **args)
        return etag_vouches(head, aws=self.lists_in_key_order, part_size=part_size)

    # -- writing ----------------------------------------------------------------
    async def write(self, path: str, src: Store, entry: Entry, progress: ProgressFn) -> None:
        key = self.prefix + path
        require_object_key(self.bucket, key)  # before any request (a key S3 would refuse, or worse)
        local = None
        changed: _Watch | None = None
        torn = False
        try:
            local = src.local_file(entry.path)
            if local is not None:
                st = local.stat()
                size, mtime = st.st_size, st.st_mtime
                planned = _version(st)
            else:
                size, mtime = entry.size, entry.mtime
            attrs: dict[str, str] = {MTIME_KEY: f"{mtime:.6f}"}
            part = part_size_for(size, self.part_size)
            if size <= part:
                # One PUT (atomic by nature), bounded by the part size. Read and hashed in
                # a thread: the MD5 goes in the metadata, and is what the ETag must be.
                if local is not None:
                    body, md5 = await off_loop(_read_hashed, local, planned)
                else:
                    body = await _collect(src, entry.path)
                    md5 = await off_loop(md5_hex, body)
                attrs[MD5_KEY] = md5
                put = await obstore.put_async(self._store, key, body, attributes=attrs, use_multipart=False)
                progress(size)
                sent, spec = md5, DigestSpec(MD5)
            else:
                # Multipart: parts in flight in parallel; the object appears only on completion.
                # Each part's MD5 is taken as it is read: the ETag must be md5(those)-N.
                spec = DigestSpec(S3_ETAG, part)
                if local is not None:
                    attrs[CRC_KEY] = CRCS[CRC32C].hex(await _file_crc(local, planned))
                resumed = await self._resumable(key, local, size, part)
                if resumed is not None and local is not None:
                    try:
                        etag, sent = await s3_resume.complete(
                            self._botocore, await self._client(), self.bucket, key, local, size,
                            part, resumed, self.parts_in_flight, progress,
                        )  # fmt: skip
                    except (NetworkError, CredentialsError):
                        raise  # the parts stored so far stay, for the next run
                    except RunctlError:  # the server refused those parts (InvalidRequest)
                        await self.abort_upload(Upload(path, resumed.upload_id, 0.0))
                        raise NetworkError(
                            f"could not resume the unfinished upload of {local}; it was aborted",
                            "Run it again: the file is then sent anew.",
                        ) from None
                    await self._check_upload(path, str(local), spec, sent, etag)
                    await self._restamp(key, attrs, size)
                    self.tally.resumed += 1
                    self.tally.resumed_bytes += resumed.skipped
                    if await off_loop(_changed_since, local, planned):
                        raise SourceChangedError(f"{local} changed while it was being uploaded")
                    return
                hasher, crc = StreamHasher(spec), StreamHasher(DigestSpec(CRC32C))
                changed = _Watch(local, planned if local is not None else None)
                put = await obstore.put_async(
                    self._store,
                    key,
                    _counted(_source_chunks(src, entry.path, part, (hasher, crc), changed), progress),
                    attributes=attrs,
                    use_multipart=True,
                    chunk_size=part,
                    max_concurrency=self.parts_in_flight,
                )
                sent = hasher.hexdigest()
                torn = CRC_KEY in attrs and crc.hexdigest() != attrs[CRC_KEY]
        except FileNotFoundError as exc:
            if local is not None and exc.filename is not None:
                raise NotFoundError(f"source file vanished: {local}") from exc
            raise self.map_error(exc, path) from exc
        except Exception as exc:
            if changed is not None and changed.error is not None:
                # Raised in the part stream: obstore aborted the upload; nothing is stored.
                raise changed.error from exc
            reply = ServerReply.parse(str(exc))
            if reply.code in DIGEST_CODES:
                # The server's checksum of the body differs from ours: damaged on the way.
                raise IntegrityError(
                    f"upload of {local or src.url + entry.path} to s3://{self.bucket}/{show_key(key)}: "
                    f"{reply.reason}; nothing was stored"
                ) from exc
            raise self.map_error(exc, path) from exc
        if torn:  # read twice, two versions: the CRC recorded is not the content's
            await self.delete([path])
            raise SourceChangedError(f"{local} changed while it was uploaded; it was not stored")
        await self._check_upload(path, str(local or src.url + entry.path), spec, sent, put.get("e_tag"))
        if local is not None and await off_loop(_changed_since, local, planned):
            # What was read is whole and stored, but it is no longer the file: say so, as
            # tar does, rather than report a copy of a file that is not there any more.
            raise SourceChangedError(
                f"{local} changed while it was being uploaded; "
                f"s3://{self.bucket}/{show_key(key)} holds the version read before the change"
            )

    async def _restamp(self, key: str, attrs: dict[str, str], size: int) -> None:
        """A resumed upload's object carries the metadata of the run that created it; when
        that is not this run's (the file's mtime changed, or bytes in parts that run never
        sent), it is replaced by a copy onto itself: a stale CRC would fail every download."""
        client = await self._client()
        head = await self._botocore(client.head_object, Bucket=self.bucket, Key=key)
        if head.get("Metadata", {}) == attrs:
            return
        if size <= COPY_LIMIT:
            source = {"Bucket": self.bucket, "Key": key}
            args = {"CopySource": source, "MetadataDirective": "REPLACE", "Metadata": attrs}
            await self._botocore(client.copy_object, Bucket=self.bucket, Key=key, **args)
            return
        await self.delete([key[len(self.prefix) :]])
        raise SourceChangedError(
            f"s3://{self.bucket}/{show_key(key)}: the unfinished upload resumed was started for "
            "another version of the file; the object was removed",
            "Run it again: the file is then sent anew.",
        )

    async def _resumable(
        self, key: str, local: Path | None, size: int, part: int
    ) -> s3_resume.Resumable | None:
        """An unfinished upload of this local file to ``key`` that an earlier run left,
        with parts that match it (s3_resume); None when there is none to reuse."""
        if local is None:
            return None
        try:
            return await s3_resume.find(
                self._botocore, await self._client(), self.bucket, key, local, size, part
            )
        except RunctlError:
            # No permission to list uploads (s3:ListBucketMultipartUploads), a server that
            # lacks the call: nothing to resume; the upload itself says what is wrong, if anything.
            return None

    async def _check_upload(
        self, path: str, source: str, spec: DigestSpec, sent: str, etag: str | None
    ) -> None:
        """The ETag the server answered against the digest of the bytes sent: a mismatch
        is an IntegrityError (retried), unless a HEAD shows the ETag is no digest."""
        found = etag_digest(etag, spec.part_size)
        if found is None or found[0].kind != spec.kind:
            self.tally.unverified += 1  # no ETag, or one of another form (not a digest)
            return
        if found[1] == sent:
            self.tally.verified += 1
            return
        if not await self._etag_vouches(path, spec.part_size if spec.kind == S3_ETAG else None):
            self.tally.disowned += 1
            return
        what = f"upload of {source} to s3://{self.bucket}/{show_key(self.prefix + path)}"
        raise mismatch(what, spec, sent, Expected(spec, found[1], "ETag"), upload=True)

    async def delete(self, paths: Iterable[str]) -> None:
        keys = [self.prefix + p for p in paths]
        # obstore sends DeleteObjects requests of up to 1,000 keys each.
        for i in range(0, len(keys), 1000):
            try:
                await obstore.delete_async(self._store, keys[i : i + 1000])
            except Exception as exc:
                raise self.map_error(exc) from exc


@dataclass(frozen=True)
class Upload:
    """An unfinished multipart upload: its key below the store's prefix, its id, and
    when it was started (seconds since the epoch)."""

    path: str
    upload_id: str
    initiated: float


def _clip(text: str, limit: int = 300) -> str:
    """Shorten an error line at a word boundary."""
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " ..."


async def _collect(src: Store, path: str) -> bytes:
    reader = await src.open(path)
    return b"".join([bytes(c) async for c in reader.chunks()])


async def _source_chunks(
    src: Store, path: str, size: int, hashers: tuple[StreamHasher, ...], watch: _Watch
) -> AsyncIterator[bytes]:
    """Stream a source file in ``size``-byte pieces (local files are read directly), each
    fed to ``hashers`` as it is read, off the event loop. A local file that changes while
    it is read (``watch``) ends the stream with an error: obstore then aborts the upload."""
    local = src.local_file(path)
    if local is not None:
        read = 0
        with open(local, "rb") as fh:
            while data := await off_loop(_read_into, fh, size, hashers):
                read += len(data)
                watch.check(fh.fileno(), read, done=False)
                yield data
            watch.check(fh.fileno(), read, done=True)
        return
    reader = await src.open(path)
    async for chunk in reader.chunks():
        await off_loop(_feed, chunk, hashers)
        yield chunk


def _read_into(fh: BinaryIO, size: int, hashers: tuple[StreamHasher, ...]) -> bytes:
    data = fh.read(size)
    _feed(data, hashers)
    return data


def _feed(data: bytes, hashers: tuple[StreamHasher, ...]) -> None:
    for hasher in hashers:
        hasher.update(data)


CRC_SPAN = 64 << 20
"""The file's CRC-32C is taken in pieces this large, side by side (crc32c releases the
GIL), and combined: about 0.25 ms per MiB on one core, from the page cache."""


async def _file_crc(path: Path, planned: tuple[int, int, int]) -> int:
    """The CRC-32C of a file, refused if it is not the version planned."""
    size = planned[0]
    gate = asyncio.Semaphore(max(1, min(8, os.cpu_count() or 1)))
    with open(path, "rb", buffering=0) as fh:

        async def span(start: int) -> tuple[int, int]:
            async with gate:
                return await off_loop(_span_crc, fh.fileno(), start, min(CRC_SPAN, size - start))

        spans = await asyncio.gather(*(span(start) for start in range(0, size, CRC_SPAN)))
        crc = 0
        for length, piece in spans:
            crc = crc32c_combine(crc, piece, length)
        _Watch(path, planned).check(fh.fileno(), sum(length for length, _ in spans), done=True)
    return crc


def _span_crc(fd: int, start: int, length: int) -> tuple[int, int]:
    """(bytes read, their CRC-32C) of ``length`` bytes of ``fd`` from ``start``."""
    crc, read = 0, 0
    buffer = bytearray(min(CHUNK, length) or 1)
    view = memoryview(buffer)
    while read < length:
        n = os.preadv(fd, [view[: min(len(buffer), length - read)]], start + read)
        if not n:
            break  # shorter than planned: the check below says so
        crc = crc32c_update(view[:n], crc)
        read += n
    return read, crc


def _read_hashed(path: Path, planned: tuple[int, int, int]) -> tuple[bytes, str]:
    """The whole file and its MD5, refused if it is not the version planned (a file
    rewritten in place while it is read would be stored as a mix of two versions)."""
    with open(path, "rb") as fh:
        data = fh.read()
        _Watch(path, planned).check(fh.fileno(), len(data), done=True)
    return data, md5_hex(data)


def _changed_since(path: Path, planned: tuple[int, int, int]) -> bool:
    try:
        return _version(path.stat())[:2] != planned[:2]
    except FileNotFoundError:
        return False  # gone: what was read is its last version


def _version(st: os.stat_result) -> tuple[int, int, int]:
    """What changes when a file is written: its size, mtime (ns) and inode."""
    return st.st_size, st.st_mtime_ns, st.st_ino


class _Watch:
    """Checks, as a source file is read, that it is still the version that was planned."""

    def __init__(self, path: Path | None, planned: tuple[int, int, int] | None) -> None:
        self._path = path
        self._planned = planned
        self.error: SourceChangedError | None = None

    def check(self, fd: int, read: int, *, done: bool) -> None:
        if self._planned is None:
            return
        now = _version(os.fstat(fd))
        size = self._planned[0]
        if now[:2] != self._planned[:2] or read > size or (done and read != size):
            self.error = SourceChangedError(
                f"{self._path} changed while it was read for upload "
                f"({size:,} bytes planned, {now[0]:,} now); it was not stored"
            )
            raise self.error


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


_Listed = tuple[str, int, float, str | None]
"""A raw listing row: (key, size, mtime, ETag)."""
_ONE_PAGE = 1000
"""A listing that ends within its first page is not worth cutting into ranges."""
_OBSTORE_ESCAPES = re.compile(r'[\x00-\x1f\x7f\\{}^%`\[\]"<>~#|]|//|(^|/)\.\.?(/|$)')
"""What obstore's paths would percent-encode or refuse in a prefix."""


def _obstore_lists(key: str) -> bool:
    """Whether obstore lists under ``key`` exactly (else botocore, which sends it as is)."""
    return _OBSTORE_ESCAPES.search(key) is None


async def _chain(rows: builtins.list[_Listed], rest: AsyncIterator[_Listed]) -> AsyncIterator[_Listed]:
    for row in rows:
        yield row
    async for row in rest:
        yield row


async def _below(key: str, raw: AsyncIterator[Entry]) -> AsyncIterator[Entry]:
    """Only what is strictly under ``key``: obstore lists the range's own marker
    ``dir/`` as ``dir``, which SeaweedFS may serve after the keys below it (so it is
    not recognised as a marker by what follows) and answers a HEAD for."""
    async for entry in raw:
        if entry.path.startswith(key):
            yield entry
