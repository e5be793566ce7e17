"""Exit statuses of a load script, and the typed error each one means.

The script's own statuses sit at 40 and above, clear of runctl's exit codes (1-10, 130),
which its runctl path passes through unchanged: a caller can tell "the instance has no
fetch tool" from "runctl there could not reach S3" without reading stderr.
"""

from __future__ import annotations

from ..errors import (
    BucketNotFoundError,
    CredentialsError,
    HostKeyError,
    Interrupted,
    LocalIOError,
    MissingToolError,
    NetworkError,
    NotFoundError,
    RemoteDiskFullError,
    RemoteError,
    RemoteNotWritableError,
    RemoteToolMissingError,
    RunctlError,
    UsageError,
)

OK = 0
FAILED = 1
"""The fetch failed or was partial: the tool's stderr says why (the report still printed)."""
NO_TOOL = 40
"""auto: none of runctl, s5cmd, aws on PATH."""
TOOL_MISSING = 41
"""The tool given with --tool is not installed."""
NO_PYTHON = 42
"""s5cmd/aws need python3 for this load (--shard, or rules they cannot express) and it is absent."""
DEST_UNWRITABLE = 43
"""DEST could not be created."""
NO_OBJECTS = 44
"""No objects at all under the source prefix (as ``s3 download --recursive``: exit 4)."""
NO_SHARD = 45
"""A shard-by-instance script ran on an instance its table does not name."""

_RUNCTL_CODES: dict[int, type[RunctlError]] = {
    2: UsageError,
    3: CredentialsError,
    4: NotFoundError,
    5: NetworkError,
    6: RemoteError,
    7: HostKeyError,
    8: RemoteDiskFullError,
    9: RemoteNotWritableError,
    10: RemoteToolMissingError,
    130: Interrupted,
}


def error_for(status: int, stderr: str, where: str = "") -> RunctlError:
    """The typed error for a script that exited with ``status``; ``stderr`` (its last
    lines) becomes the message, ``where`` names the machine in it."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    said = lines[-1] if lines else f"exited with status {status}"
    for prefix in ("runctl-load: error: ", "error: "):
        said = said.removeprefix(prefix)
    message = f"{where}: {said}" if where else said
    if status in (NO_TOOL, TOOL_MISSING, NO_PYTHON):
        return MissingToolError(message, "Install runctl (pip install runctl), s5cmd or the AWS CLI there.")
    if status == DEST_UNWRITABLE:
        return LocalIOError(message, "Pick a destination directory the user can write to.")
    if status == NO_OBJECTS:
        return NotFoundError(message, "Check the prefix with `runctl s3 list`.")
    if status == NO_SHARD:
        return UsageError(message, "Give every instance of the fan-out a shard.")
    if status in _RUNCTL_CODES:
        return _RUNCTL_CODES[status](message)
    return _classify(message, "\n".join(lines))


def _classify(message: str, text: str) -> RunctlError:
    """A failed fetch by what the tool said (s5cmd and the AWS CLI share S3's error codes)."""
    low = text.lower()
    if "nosuchbucket" in low or "bucket does not exist" in low:
        return BucketNotFoundError(message, "Check the bucket name.")
    if any(s in low for s in ("signaturedoesnotmatch", "invalidaccesskeyid", "unable to locate credentials")):
        return CredentialsError(message)
    if "accessdenied" in low or "forbidden" in low:
        return CredentialsError(message)
    if any(s in low for s in ("could not connect", "connection refused", "dial tcp", "no such host")):
        return NetworkError(message)
    return RunctlError(message)
