"""Where a remote command runs: DEST parsing and the connection options every transport takes.

``[user@]host:path`` (scp form, host may be an ~/.ssh/config alias) or
``ssh://[user@]host[:port]/path``. How the host is reached (asyncssh, the system
OpenSSH client) is the transport's business; this module only says which host.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, NamedTuple
from urllib.parse import unquote, urlsplit

from ..errors import UsageError
from .aws import AWSOptions

SSHClient = Literal["asyncssh", "openssh"]
Via = Literal["ssh", "ssm", "auto"]
INSTANCE_ID = re.compile(r"i-[0-9a-f]{8}(?:[0-9a-f]{9})?")
"""An EC2 instance id (8 or 17 hex digits): resolved through EC2, reached over SSH or SSM."""


class Target(NamedTuple):
    host: str
    path: str
    """Remote directory; relative paths are relative to the remote home."""
    user: str | None = None
    port: int | None = None

    @property
    def instance_id(self) -> str | None:
        """The EC2 instance id this target names, if it names one."""
        return self.host if self.port is None and INSTANCE_ID.fullmatch(self.host) else None

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
    via: Via = "auto"
    """For EC2 instance ids: SSH, SSM, or SSH when the instance has an address and a key."""
    user: str | None = None
    """Login user for an instance (else from its AMI's name)."""
    private_ip: bool = False
    """Reach an instance at its private address (from inside its VPC)."""
    aws: AWSOptions = AWSOptions()
    timeout: int | None = None
    """Seconds a command may run (SSM's executionTimeout; exec's --timeout over SSH)."""
    ssm_output_s3: str | None = None
    """s3://bucket/prefix where SSM writes whole outputs (inline output is cut)."""
    staging: str | None = None
    """s3://bucket/prefix for what an SSM instance fetches (stdin, tar streams)."""


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


def parse_target(text: str) -> Target:
    """A machine to run on: DEST forms without a path (``[user@]host``, an ssh config
    alias, ``i-0abc...``), or with one (the directory the command runs in)."""
    if text.startswith("ssh://") or _split_scp(text)[1]:
        return parse_dest(text)
    if not text or text.startswith("-") or "/" in text:
        raise UsageError(
            f"not a remote target: {text!r}",
            "Use [user@]host, an ssh config alias, an EC2 instance id (i-0abc...), or host:path.",
        )
    user, at, name = text.rpartition("@")
    return Target(name, ".", user if at else None)


def _split_scp(dest: str) -> tuple[str, str, str]:
    if dest.startswith("[") and "]:" in dest:  # [ipv6]:path
        host, _, path = dest[1:].partition("]:")
        return host, ":", path
    head, sep, path = dest.partition(":")
    if "/" in head:  # ./a:b is a local path, as with scp
        return "", "", dest
    return head, sep, path


_CONTROL_NAMES = {"\n": "newline", "\r": "carriage return", "\0": "NUL character"}


def _home_relative(path: str) -> str:
    bad = next((c for c in path if c in "\n\r\0"), None)
    if bad is not None:
        # The remote side reads paths one per line: such a name cannot be said safely.
        raise UsageError(
            f"the remote path {path!r} holds a {_CONTROL_NAMES[bad]}",
            "Give a path without control characters.",
        )
    if path in ("", "~", "~/"):
        return "."
    return path[2:] if path.startswith("~/") else path
