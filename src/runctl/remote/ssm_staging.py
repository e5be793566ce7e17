"""The S3 staging location for SSM (``--staging s3://BUCKET/PREFIX``, config
``[ssm] staging``): objects an instance fetches (a script's input, a tar stream) and
the whole outputs of its commands. Everything put here is deleted once used."""

from __future__ import annotations

import contextlib
import uuid
from datetime import timedelta
from typing import IO, Any

from ..errors import NotFoundError, UsageError
from ..stores.s3_config import S3Options

URL_LIFETIME = timedelta(minutes=30)
"""A presigned fetch URL outlives delivery (600 s) plus a slow fetch, not much more."""


def parse_location(url: str, flag: str) -> tuple[str, str]:
    """``s3://bucket[/prefix]`` as (bucket, prefix without slashes at the ends)."""
    if not url.startswith("s3://") or not url[5:].split("/", 1)[0]:
        raise UsageError(f"{flag} must be s3://BUCKET[/PREFIX], not {url!r}")
    bucket, _, prefix = url[5:].partition("/")
    return bucket, prefix.strip("/")


class Staging:
    def __init__(self, url: str, options: S3Options) -> None:
        self.bucket, self.prefix = parse_location(url, "--staging")
        self.url = url
        self._options = options
        self._store: Any = None

    def _obstore(self) -> Any:
        if self._store is None:
            from obstore.store import S3Store

            from ..stores.s3_config import store_kwargs

            self._store = S3Store(self.bucket, **store_kwargs(self._options))
        return self._store

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def output_location(self) -> tuple[str, str]:
        return self.bucket, self._key("ssm-output")

    async def put(self, data: IO[bytes], size: int) -> str:
        """Upload ``data`` under a fresh unique key; return the key."""
        import obstore

        key = self._key(f"runctl-{uuid.uuid4().hex}.bin")
        try:
            await obstore.put_async(self._obstore(), key, data)
        except Exception as exc:
            raise self._error(exc, f"stage {size} bytes at s3://{self.bucket}/{key}") from exc
        return key

    async def presign(self, key: str) -> str:
        import obstore

        try:
            url: str = await obstore.sign_async(self._obstore(), "GET", key, URL_LIFETIME)
        except Exception as exc:
            raise self._error(exc, f"presign s3://{self.bucket}/{key}") from exc
        return url

    async def delete(self, key: str) -> None:
        """Remove a staged object; a failure here never hides the command's own result."""
        import obstore

        # Best effort: left-overs are under the staging prefix, named runctl-*.
        with contextlib.suppress(Exception):
            await obstore.delete_async(self._obstore(), key)

    async def take_output(self, bucket: str, key: str) -> bytes | None:
        """Read one output object SSM wrote here, then delete it (None: there is none)."""
        import obstore

        try:
            result = await obstore.get_async(self._obstore(), key)
            data = bytes(await result.bytes_async())
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise self._error(exc, f"read the command's output at s3://{bucket}/{key}") from exc
        await self.delete(key)
        return data

    def _error(self, exc: BaseException, doing: str) -> Exception:
        from ..stores.s3 import S3Store

        mapped = S3Store(self.bucket, "", self._options).map_error(exc)
        if isinstance(mapped, NotFoundError):
            return NotFoundError(f"cannot {doing}: {mapped.message}", "Check the --staging bucket.")
        return mapped if isinstance(mapped, Exception) else RuntimeError(str(exc))
