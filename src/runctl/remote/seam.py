"""The one seam between runctl and a remote machine: "run this command there".

Everything runctl does on a remote tree (listing, digests, unpacking a tar stream,
deletes, mtime fixes) is a POSIX sh script fed to one started command, so a transport
only has to start a command, carry bytes to its stdin and from its stdout, and say how
it ended. Implementations: asyncssh (in-process, the default), the system OpenSSH
client (the user's exact ~/.ssh/config, ControlMaster reuse), and AWS SSM Run Command
(ssm_remote.py; no stdin: bulk bytes go through an S3 staging object).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Protocol

from ..errors import RemoteToolMissingError, RunctlError

STDERR_KEPT = 64 * 1024
"""How much of a command's stderr a transport keeps for ``wait`` (the end of it)."""


class Writer(Protocol):
    """The command's stdin (asyncio's StreamWriter and asyncssh's writer both fit)."""

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    def write_eof(self) -> None: ...


class Reader(Protocol):
    """The command's stdout; ``read`` returns b"" at end of stream."""

    async def read(self, n: int = -1) -> bytes: ...


class Process(ABC):
    """One started command."""

    stdin: Writer
    stdout: Reader
    truncated: bool = False
    """The transport cut the output (SSM keeps only the first 24,000 characters inline)."""

    @abstractmethod
    async def wait(self) -> tuple[int | None, bytes]:
        """Wait for the end: (exit status or None if unknown, stderr; the last 64 KiB of
        it, also when it was streamed to a sink as well)."""

    @abstractmethod
    def close(self) -> None:
        """Stop it without waiting (a dead shell is never read again)."""


class Remote(ABC):
    """A machine commands can be started on."""

    url: str
    """For messages: ``user@host:path/``."""
    name: str
    """The transport, for ``-v`` and JSON: "asyncssh", "openssh", "ssm"."""
    interactive = True
    """A started command's stdin is read while it runs, so one shell can answer many
    scripts in turn. Run Command's is not (all of stdin is there before the command
    starts): the remote shell then starts one command per script."""
    round_trip_hint: float | None = None
    """Seconds a round trip is known to take, when measuring one would cost a command
    (SSM: several seconds per Run Command); None: measure it."""
    enforces_timeout = False
    """The transport itself stops a command at ConnectOptions.timeout (SSM's
    executionTimeout); otherwise the caller does."""
    io_errors: tuple[type[BaseException], ...] = (ConnectionError,)
    """What its stdin/stdout raise when the transport breaks (caught by the shell; a
    plain OSError while streaming is a local file that could not be read)."""

    @abstractmethod
    async def start(self, command: str, stderr_sink: Callable[[bytes], None] | None = None) -> Process:
        """Start ``command`` in the remote user's login shell; raise a typed error if the
        machine cannot be reached. ``stderr_sink`` receives stderr as it arrives (for
        ``exec``, which shows it live); without one, stderr is only kept for ``wait``."""

    async def failure(self, status: int | None, stderr: bytes) -> RunctlError | None:
        """The transport's own error for a command that ended this way (e.g. ssh's exit
        status 255 with "Permission denied"), or None when the command itself failed."""
        return None

    async def open_sftp(self) -> Any:
        """An SFTP client on the same connection, for remotes without tar; only
        transports that have one in-process (asyncssh) offer it."""
        raise RemoteToolMissingError(
            f"tar is not installed on {self.url}, and the {self.name} transport has no SFTP fallback",
            "Install tar there, or push with --ssh-client asyncssh (files one by one over SFTP).",
        )

    async def close(self) -> None:
        return None
