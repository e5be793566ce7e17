"""`runctl demo`: a whole round trip against the embedded server, verified byte for byte."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from . import local_s3
from .aio import run
from .api import download_async, list_async, upload_async
from .errors import RunctlError
from .events import Reporter, null_reporter
from .results import TransferResult
from .settings import Settings


@dataclass
class DemoResult:
    endpoint: str
    upload: TransferResult
    download: TransferResult
    listed: int
    verified: int

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.upload.ok and self.download.ok,
            "command": "demo",
            "endpoint": self.endpoint,
            "listed": self.listed,
            "verified": self.verified,
            "upload": self.upload.to_dict(),
            "download": self.download.to_dict(),
        }


def make_dataset(root: Path, small: int = 500, small_size: int = 4096, large_size: int = 64 << 20) -> None:
    """Many small files in nested folders, and one file large enough for multipart."""
    for i in range(small):
        path = root / f"shard-{i % 10:02d}" / f"sample {i:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(small_size))
    block = os.urandom(1 << 20)
    with open(root / "model.safetensors", "wb") as fh:
        for _ in range(large_size >> 20):
            fh.write(block)


def _digests(root: Path) -> dict[str, str]:
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            h = hashlib.sha256()
            with open(path, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    h.update(chunk)
            out[path.relative_to(root).as_posix()] = h.hexdigest()
    return out


def run_demo(settings: Settings, reporter: Reporter = null_reporter) -> DemoResult:
    with tempfile.TemporaryDirectory(prefix="runctl-demo-") as tmp:
        work = Path(tmp)
        server = local_s3.start(work / "s3")
        try:
            os.environ.update(server.env())
            settings = replace(settings, endpoint_url=server.endpoint, profile=None)
            make_dataset(work / "dataset")
            url = f"s3://{server.bucket}/demo/dataset"
            up = run(
                upload_async(work / "dataset", url, recursive=True, settings=settings, reporter=reporter)
            )
            listed = run(list_async(url, recursive=True, settings=settings))
            down = run(
                download_async(url, work / "copy", recursive=True, settings=settings, reporter=reporter)
            )
            src, dst = _digests(work / "dataset"), _digests(work / "copy")
            if src != dst:
                missing = sorted(set(src) ^ set(dst)) or [k for k in src if src[k] != dst.get(k)]
                raise RunctlError(f"demo verification failed: {len(missing)} files differ, e.g. {missing[0]}")
            return DemoResult(server.endpoint, up, down, len(listed.objects), len(dst))
        finally:
            local_s3.stop_pid(server.pid)
