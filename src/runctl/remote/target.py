"""Where a remote command runs: DEST parsing and the connection options every transport takes.

``[user@]host:path`` (scp form, host may be an ~/.ssh/config alias) or
``ssh://[user@]host[:port]/path``. How the host is reached (asyncssh, the system
OpenSSH client) is the transport's business; this module only says which host.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, NamedTuple
from urllib.parse import unquote, urlsplit

from ..errors import UsageError

SSHClient = Literal["asyncssh", "openssh"]


class Target(NamedTuple):
    host: str
    path: str
    """Remote directory; relative paths are relative to the remote home."""
    user: str | None = None
    port: int | None = None

    @property
    def url(self) -> str:
        """For messages: scp form, with the port when one was given."""
        user = f"{self.user}@" if self.user else ""
        port = f" (port {self.port})" if self.port else ""
        return f"{user}{self.host}:{self.path.rstrip('/')}/{port}"


class ConnectOptions(NamedTuple):
    config: Path | None = None
    identity: Path | None = None
    port: int | None = None
    known_hosts: Path | None = None
    accept_new_host_key: bool = False
    client: SSHClient = "asyncssh"
    """asyncssh (in-process, the default) or the system ``ssh`` binary (--ssh-client)."""


def parse_dest(dest: str) -> Target:
    """Parse DEST (see module docstring). ``~/x`` and ``x`` both mean x in the remote home."""
    if dest.startswith("ssh://"):
        parts = urlsplit(dest)
        if not parts.hostname:
            raise UsageError(f"no host in {dest!r}", "Use ssh://[user@]host[:port]/path.")
        try:
            port = parts.port
        except ValueError as exc:
            raise UsageError(f"bad port in {dest!r}") from exc
        path = unquote(parts.path)
        # ssh://host/abs/path is absolute; ssh://host/~/x is relative to the home.
        path = path[1:] if path.startswith("/~") else path
        return Target(parts.hostname, _home_relative(path), unquote(parts.username or "") or None, port)
    host, sep, path = _split_scp(dest)
    if not sep or not host:
        raise UsageError(
            f"not a remote destination: {dest!r}",
            "Use [user@]host:path or ssh://[user@]host[:port]/path (e.g. gpu1:project).",
        )
    user, at, name = host.rpartition("@")
    return Target(name.strip("[]"), _home_relative(path), user if at else None)


def _split_scp(dest: str) -> tuple[str, str, str]:
    if dest.startswith("[") and "]:" in dest:  # [ipv6]:path
        host, _, path = dest[1:].partition("]:")
        return host, ":", path
    head, sep, path = dest.partition(":")
    if "/" in head:  # ./a:b is a local path, as with scp
        return "", "", dest
    return head, sep, path


def _home_relative(path: str) -> str:
    if path in ("", "~", "~/"):
        return "."
    return path[2:] if path.startswith("~/") else path
