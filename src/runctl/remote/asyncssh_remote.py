"""The asyncssh transport (the default): one in-process SSH connection, resolved as
OpenSSH would resolve it, host keys always checked.

asyncssh reads the ssh config (HostName, Port, User, IdentityFile, ProxyJump),
known_hosts and the agent. It has no "accept-new" mode, so trust on first use is an
explicit flag that appends the presented key to known_hosts. asyncssh is imported
lazily: it costs ~180 ms, which only commands that reach a remote should pay.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ..errors import CredentialsError, HostKeyError, NetworkError, RemoteToolMissingError, UsageError
from . import asyncssh_auth, quick_ack
from .seam import STDERR_KEPT, Process, Remote
from .target import ConnectOptions, Target

if TYPE_CHECKING:
    import asyncssh

PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
"""AES-GCM runs on AES-NI; chacha20-poly1305 measured ~1.5x slower here."""

_OQS_NAMES = ("oqs", "liboqs")
_LIB_DIRS = (
    "/usr/local/lib",
    "/usr/local/lib64",
    "/usr/lib",
    "/usr/lib64",
    "/lib",
    "/lib64",
    "/opt/homebrew/lib",
    "/opt/local/lib",
)


def import_asyncssh() -> ModuleType:
    """``import asyncssh``, minus its start-up probe for liboqs (sntrup761 key exchange)
    and its X.509 support.

    asyncssh asks ``ctypes.util.find_library`` for "oqs" and "liboqs"; on Linux that
    runs ``ldconfig -p`` and then ``gcc`` twice, 20-45 ms on every run. The same library
    is looked for here by globbing the usual library directories instead.
    """
    if "asyncssh" in sys.modules:
        return sys.modules["asyncssh"]
    import ctypes.util

    real = ctypes.util.find_library
    liboqs: list[str | None] = []  # asked for twice: look once

    def find_library(name: str) -> str | None:
        if name not in _OQS_NAMES:
            return real(name)
        if not liboqs:
            liboqs.append(_find_liboqs())
        return liboqs[0]

    ctypes.util.find_library = find_library
    # X.509 certificates for SSH exist only in PKIX-SSH, never in OpenSSH, and asyncssh's
    # support needs pyOpenSSL, which runctl does not install: the module would load
    # cryptography.x509 (~10 ms) only to fail on that import. Skip it.
    blocked = "asyncssh.crypto.x509" not in sys.modules
    if blocked:
        sys.modules["asyncssh.crypto.x509"] = None  # type: ignore[assignment]
    try:
        with warnings.catch_warnings():
            # cryptography >= 47 deprecates DSA, and asyncssh's modules name DSA types
            # at import: one warning per line, on stderr, on every run. runctl never
            # offers DSA (OpenSSH dropped it), so the warning says nothing to its users.
            warnings.filterwarnings("ignore", message=".*DSA", category=UserWarning)
            import asyncssh
    finally:
        ctypes.util.find_library = real
        if blocked:
            del sys.modules["asyncssh.crypto.x509"]
    asyncssh_auth.install(asyncssh)
    quick_ack.install(asyncssh)
    return asyncssh


def _find_liboqs() -> str | None:
    """The first liboqs shared library in the usual directories. One listing per
    directory, not a glob per pattern: asyncssh asks twice ("oqs", "liboqs") on
    every start, and globbing cost ~3.5 ms a time."""
    paths = os.environ.get("LD_LIBRARY_PATH", "") + ":" + os.environ.get("DYLD_LIBRARY_PATH", "")
    dirs = [d for d in paths.split(":") if d]
    dirs += [f"/usr/lib/{arch}" for arch in _multiarch()] + list(_LIB_DIRS)
    for folder in dirs:
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        found = sorted(n for n in names if n.startswith("liboqs") and (".so" in n or n.endswith(".dylib")))
        if found:
            return os.path.join(folder, found[0])
    return None


def _multiarch() -> list[str]:
    machine = os.uname().machine  # not platform.machine(): importing platform costs ~2 ms
    return [f"{machine}-linux-gnu", f"{machine}-linux-musl"] if machine else []


async def connect(target: Target, opts: ConnectOptions) -> asyncssh.SSHClientConnection:
    """Open one connection to ``target``; map every failure to a typed error."""
    import_asyncssh()
    import asyncssh

    options = _options(target, opts)
    try:
        return await asyncssh.connect(target.host, options=options)
    except asyncssh.HostKeyNotVerifiable:
        await _host_key_problem(target, opts, options)
        # Only reached after --accept-new-host-key recorded the key: check it again.
        try:
            return await asyncssh.connect(target.host, options=_options(target, opts))
        except asyncssh.HostKeyNotVerifiable as exc:
            raise HostKeyError(f"host key for {target.host} still not verifiable: {exc.reason}") from exc
        except (OSError, asyncssh.Error) as exc:
            raise _connect_error(target, options, exc) from exc
    except (OSError, asyncssh.Error) as exc:
        raise _connect_error(target, options, exc) from exc


def _options(target: Target, opts: ConnectOptions) -> Any:
    import asyncssh
    from asyncssh.encryption import get_default_encryption_algs

    ciphers = list(PREFERRED_CIPHERS) + [
        a.decode() for a in get_default_encryption_algs() if a.decode() not in PREFERRED_CIPHERS
    ]
    kwargs: dict[str, Any] = {
        "host": target.host,
        "encryption_algs": ciphers,
        "client_factory": asyncssh_auth.client_factory(asyncssh),
    }
    if opts.config is not None:
        if not opts.config.exists():
            raise UsageError(f"ssh config file not found: {opts.config}")
        # -F /dev/null is the usual "no config at all", as with ssh (not a regular file).
        kwargs["config"] = [str(opts.config)] if opts.config.is_file() else []
    if opts.port or target.port:
        kwargs["port"] = opts.port or target.port
    if target.user:
        kwargs["username"] = target.user
    if opts.identity is not None:
        kwargs["client_keys"] = [str(opts.identity)]
    if opts.known_hosts is not None:
        kwargs["known_hosts"] = str(opts.known_hosts)
    try:
        options = asyncssh.SSHClientConnectionOptions(**kwargs)
    except (OSError, ValueError, asyncssh.Error) as exc:
        raise UsageError(f"bad ssh options for {target.host}: {exc}") from exc
    if options.known_hosts is None:
        # "UserKnownHostsFile none" would turn checking off; never do that silently.
        kwargs["known_hosts"] = str(_default_known_hosts())
        options = asyncssh.SSHClientConnectionOptions(**kwargs)
    return options


def _default_known_hosts() -> Path:
    return Path("~/.ssh/known_hosts").expanduser()


def _known_hosts_files(opts: ConnectOptions, options: Any) -> list[str]:
    if opts.known_hosts is not None:
        return [str(opts.known_hosts)]
    files = options.known_hosts
    if isinstance(files, list | tuple) and files:
        return [str(Path(f).expanduser()) for f in files]
    return [str(_default_known_hosts())]


async def _host_key_problem(target: Target, opts: ConnectOptions, options: Any) -> None:
    """Raise HostKeyError for a changed or unknown key; with --accept-new-host-key,
    record an unknown key (never a changed one) and return."""
    import asyncssh

    host = options.host_key_alias or options.host
    port = options.port
    files = _known_hosts_files(opts, options)
    for file in files:
        if not Path(file).is_file():
            continue
        trusted = asyncssh.match_known_hosts(file, host, "", port if port != 22 else None)
        if trusted[0] or trusted[1]:
            raise HostKeyError(
                f"host key for {host} (port {port}) does not match {file}: it may have been "
                "replaced, or someone may be intercepting the connection",
                f"If the server was reinstalled, drop the old key: ssh-keygen -R '[{host}]:{port}' -f {file}",
            )
    try:
        key = await asyncssh.get_server_host_key(options.host, port, options=options)
    except (OSError, asyncssh.Error) as exc:
        raise _connect_error(target, options, exc) from exc
    if key is None:
        raise HostKeyError(f"{host} presented no host key")
    fingerprint = key.get_fingerprint()
    if not opts.accept_new_host_key:
        raise HostKeyError(
            f"unknown host key for {host} (port {port}): {key.get_algorithm()} {fingerprint}",
            f"Check the fingerprint with the server's admin, then rerun with --accept-new-host-key "
            f"to add it to {files[0]}.",
        )
    pattern = host if port == 22 else f"[{host}]:{port}"
    line = f"{pattern} {key.export_public_key('openssh').decode().strip()}\n"
    known = Path(files[0])
    known.parent.mkdir(parents=True, exist_ok=True)
    with known.open("a") as fh:
        fh.write(line)


def _connect_error(target: Target, options: Any, exc: BaseException) -> Exception:
    import asyncssh

    where = f"{options.username}@{options.host}:{options.port}"
    if isinstance(exc, asyncssh.PermissionDenied):
        return CredentialsError(
            f"authentication failed for {where}",
            "Check the key (-i, IdentityFile in ssh config, or ssh-agent) and that it is in "
            "the remote authorized_keys.",
        )
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return HostKeyError(f"host key for {options.host} not verifiable: {exc.reason}")
    if isinstance(exc, ConnectionRefusedError):
        return NetworkError(f"connection refused by {where}", "Is sshd running there, on that port?")
    if isinstance(exc, socket.gaierror):
        return NetworkError(f"cannot resolve host {options.host!r}", "Check the name or your ssh config.")
    if isinstance(exc, TimeoutError):
        return NetworkError(f"timed out connecting to {where}", "Check the network and the port.")
    detail = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
    return NetworkError(f"cannot connect to {where} ({target.host}): {detail}", "Check the host and network.")


class _Process(Process):
    def __init__(self, proc: Any, sink: Callable[[bytes], None] | None = None) -> None:
        self._proc = proc
        self.stdin = proc.stdin
        self.stdout = proc.stdout
        self._err = bytearray()
        self._relay: asyncio.Future[None] | None = None
        if sink is not None:
            self._relay = asyncio.ensure_future(self._pass_on(sink))

    async def _pass_on(self, sink: Callable[[bytes], None]) -> None:
        while chunk := await self._proc.stderr.read(1 << 16):
            sink(chunk)
            self._err += chunk
            del self._err[:-STDERR_KEPT]

    async def wait(self) -> tuple[int | None, bytes]:
        if self._relay is not None:
            await self._relay
        done = await self._proc.wait(check=False)
        stderr = done.stderr if isinstance(done.stderr, bytes) else b""
        status: int | None = done.exit_status
        return status, bytes(self._err) + stderr

    def close(self) -> None:
        if self._relay is not None:
            self._relay.cancel()
        self._proc.close()


class AsyncSSHRemote(Remote):
    """Commands over one asyncssh connection (exec channels; SFTP for the no-tar fallback)."""

    name = "asyncssh"

    def __init__(self, conn: asyncssh.SSHClientConnection, url: str) -> None:
        import asyncssh

        self.conn = conn
        self.url = url
        self.io_errors = (ConnectionError, asyncssh.Error)

    @classmethod
    async def open(cls, target: Target, opts: ConnectOptions) -> AsyncSSHRemote:
        return cls(await connect(target, opts), target.url)

    async def start(self, command: str, stderr_sink: Callable[[bytes], None] | None = None) -> Process:
        try:
            proc = await self.conn.create_process(command, encoding=None)
        except (OSError, *self.io_errors) as exc:  # type: ignore[misc]
            raise NetworkError(f"cannot start a remote shell on {self.url}: {exc}") from exc
        return _Process(proc, stderr_sink)

    async def open_sftp(self) -> Any:
        try:
            return await self.conn.start_sftp_client()
        except (OSError, *self.io_errors) as exc:  # type: ignore[misc]
            hint = "Install tar (or enable SFTP) on the remote machine."
            raise RemoteToolMissingError(f"{self.url} has no SFTP server ({exc})", hint) from exc

    async def close(self) -> None:
        self.conn.close()
        await self.conn.wait_closed()
