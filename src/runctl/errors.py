"""Typed errors. Each carries a stable code, a one-line message and a hint.

The exit status lives on the class so that exactly one place (the CLI's error
boundary) maps errors to process exit codes, and library callers can branch on
the class or on ``code`` without parsing messages.
"""

from __future__ import annotations


class RunctlError(Exception):
    """Base of every error runctl raises on purpose."""

    exit_code = 1
    code = "error"
    default_hint = ""
    fatal = False
    """Fatal errors stop a whole transfer (every other file would fail the same way)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "hint": self.hint}


class UsageError(RunctlError):
    """Bad arguments or invalid input (exit 2)."""

    exit_code = 2
    code = "usage"
    default_hint = "Run with --help to see the accepted arguments."


class MissingToolError(UsageError):
    """An optional external tool the user asked for is not installed (exit 2)."""

    code = "missing_tool"


class CredentialsError(RunctlError):
    """No credentials, wrong credentials, or access denied (exit 3)."""

    exit_code = 3
    code = "credentials"
    fatal = True
    default_hint = (
        "Check your credentials: run `aws configure`, pass --profile, or set "
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."
    )


class AccessDeniedError(CredentialsError):
    code = "access_denied"
    default_hint = "The credentials were accepted but lack permission for this bucket or key."


class HostKeyError(CredentialsError):
    """The remote host key is unknown or does not match (exit 7)."""

    exit_code = 7
    code = "host_key"


class NotFoundError(RunctlError):
    """Bucket, key or local path does not exist (exit 4)."""

    exit_code = 4
    code = "not_found"


class BucketNotFoundError(NotFoundError):
    code = "bucket_not_found"
    fatal = True


class NetworkError(RunctlError):
    """Endpoint unreachable, connection reset, timeout (exit 5)."""

    exit_code = 5
    fatal = True
    code = "network"
    default_hint = "Check the endpoint (--endpoint-url or AWS_ENDPOINT_URL) and your network."


class RemoteError(RunctlError):
    """The remote machine could not do what was asked: exit 6, or a more specific code
    (8 disk full, 9 not writable, 10 a tool such as tar missing)."""

    exit_code = 6
    code = "remote"


class RemoteDiskFullError(RemoteError):
    exit_code = 8
    code = "remote_disk_full"
    fatal = True
    default_hint = "Free space on the remote machine (df -h), or push to another directory."


class RemoteNotWritableError(RemoteError):
    exit_code = 9
    code = "remote_not_writable"
    fatal = True
    default_hint = "Pick a destination directory the remote user can write to."


class RemoteToolMissingError(RemoteError):
    exit_code = 10
    code = "remote_tool_missing"
    fatal = True
    default_hint = "Install it on the remote machine (e.g. apt-get install tar findutils)."


class CommandTimedOut(RemoteError):
    """A remote command ran past its --timeout and was stopped (exit 124, as timeout(1))."""

    exit_code = 124
    code = "timed_out"
    default_hint = "Raise --timeout, or make the command finish sooner."


class LocalIOError(RunctlError):
    """A local file could not be read or written (disk full, permission): exit 1."""

    exit_code = 1
    code = "local_io"
    default_hint = "Check the path, its permissions and the free space (df -h)."


class SourceChangedError(LocalIOError):
    """A source file changed while it was read for upload (GNU tar's "file changed as we
    read it"): what was read is no version of the file, so it is not stored."""

    code = "source_changed"
    default_hint = "Something is still writing it; upload it again once it is complete."


class ObjectChangedError(NetworkError):
    """An object was rewritten while it was being downloaded (a later range's If-Match on
    the first one's ETag failed): what was read is no one version of it. A NetworkError,
    so the engine retries the file once, which then reads the new version whole."""

    code = "source_changed"
    fatal = False
    default_hint = "Something rewrote it while it was read; download it again once it is complete."


class Interrupted(RunctlError):
    """The user pressed Ctrl-C (exit 130)."""

    exit_code = 130
    code = "interrupted"
    fatal = True
    default_hint = "Nothing was left at a final name half-written; run the command again to resume."


class IntegrityError(NetworkError):
    """Bytes moved do not match the digest their source vouches for (exit 5, as network
    errors: the bytes were damaged on the way). A NetworkError, so the engine retries the
    file once; not fatal: the other files of a transfer carry on."""

    code = "integrity"
    fatal = False
    default_hint = "Run it again; if it persists, check what sits between you and the server."
