"""The system OpenSSH client as a transport (``--ssh-client openssh``).

Each command is one ``ssh HOST sh -s`` process, so the user gets exactly what their
``ssh`` does: Match blocks, ProxyCommand (an SSM proxy included), certificates, FIDO
keys, GSSAPI, and ControlMaster/ControlPersist reuse of a connection already up. Host
keys stay verified by ssh itself: StrictHostKeyChecking is pinned to ``yes`` on the
command line (which beats any config file), or ``accept-new`` with
--accept-new-host-key, never ``no``. ssh reports its own failures with exit status
255 and a message on stderr; ``failure`` maps those to the same typed errors (and so
exit codes) as the asyncssh transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..errors import CredentialsError, HostKeyError, MissingToolError, NetworkError, RunctlError
from .seam import STDERR_KEPT, Process, Remote
from .target import ConnectOptions, Target

SSH_FAILED = 255
"""ssh's exit status for its own errors (a remote command's status is passed through)."""


class _Stdin:
    """ssh's stdin. A write after ssh exited (a refused login ends it at once) raises
    BrokenPipeError, as a broken channel does, instead of the event loop's RuntimeError."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    def write(self, data: bytes) -> None:
        if self._writer.is_closing():
            raise BrokenPipeError("ssh has exited")
        self._writer.write(data)

    async def drain(self) -> None:
        await self._writer.drain()

    def write_eof(self) -> None:
        if self._writer.is_closing():
            raise BrokenPipeError("ssh has exited")
        self._writer.write_eof()


class _Process(Process):
    def __init__(
        self, proc: asyncio.subprocess.Process, log: Path, sink: Callable[[bytes], None] | None = None
    ) -> None:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        self._proc = proc
        self._log = log
        self._sink = sink
        self.stdin = _Stdin(proc.stdin)
        self.stdout = proc.stdout
        self._err = bytearray()
        # Drained all along: a chatty remote must never block on a full stderr pipe.
        self._reading = asyncio.ensure_future(self._drain(proc.stderr))

    async def _drain(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(1 << 16):
            if self._sink is not None:
                self._sink(chunk)
            self._err += chunk
            del self._err[:-STDERR_KEPT]

    async def wait(self) -> tuple[int | None, bytes]:
        status = await self._proc.wait()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._reading, 5)
        own = b""
        with contextlib.suppress(OSError):
            own = self._log.read_bytes()[-STDERR_KEPT:]
            self._log.unlink()
        return status, own + bytes(self._err)

    def close(self) -> None:
        self._reading.cancel()
        with contextlib.suppress(OSError):
            self._log.unlink()
        if self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()


class OpenSSHRemote(Remote):
    name = "openssh"

    def __init__(self, target: Target, opts: ConnectOptions, binary: str | None = None) -> None:
        self.url = target.url
        self.target = target
        self.argv = ssh_argv(target, opts, binary or find_ssh())

    async def start(self, command: str, stderr_sink: Callable[[bytes], None] | None = None) -> Process:
        # ssh's own messages (Permission denied, host key warnings) go to a log file with
        # -E, so that the pipe carries only the remote command's stderr: exec streams that
        # to the user, and ssh's failure is reported once, as runctl's error line.
        fd, name = tempfile.mkstemp(prefix="runctl-ssh-", suffix=".log")
        os.close(fd)
        log = Path(name)
        try:
            proc = await asyncio.create_subprocess_exec(
                self.argv[0],
                "-E",
                name,
                *self.argv[1:],
                command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            log.unlink()
            raise MissingToolError(f"cannot run {self.argv[0]}: {exc}", _NO_SSH_HINT) from exc
        return _Process(proc, log, stderr_sink)

    async def failure(self, status: int | None, stderr: bytes) -> RunctlError | None:
        if status != SSH_FAILED:
            return None
        text = stderr.decode(errors="replace")
        fingerprint = await self._fingerprint() if _HOST_KEY.search(text) else None
        return ssh_error(self.target.host, text, fingerprint)

    async def _fingerprint(self) -> str | None:
        """The key the host presented, for the message: ssh prints it at -v before it
        checks the key, and stops at the check, so no authentication is attempted."""
        with contextlib.suppress(OSError, TimeoutError):
            proc = await asyncio.create_subprocess_exec(
                *self.argv[:1],
                "-v",
                *self.argv[1:],
                "true",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                _, err = await asyncio.wait_for(proc.communicate(), 20)
            finally:
                if proc.returncode is None:
                    proc.kill()  # never leave it behind: the error is reported either way
            found = re.search(r"Server host key: (\S+ \S+)", err.decode(errors="replace"))
            return found.group(1) if found else None
        return None


_NO_SSH_HINT = "Install the OpenSSH client (openssh-client), or use --ssh-client asyncssh."


def find_ssh() -> str:
    found = shutil.which("ssh")
    if found is None:
        raise MissingToolError("ssh is not installed (--ssh-client openssh runs it)", _NO_SSH_HINT)
    return found


def ssh_argv(target: Target, opts: ConnectOptions, binary: str) -> list[str]:
    """``ssh`` with runctl's options, up to (not including) the remote command."""
    checking = "accept-new" if opts.accept_new_host_key else "yes"  # never "no"
    argv = [binary, "-T", "-o", f"StrictHostKeyChecking={checking}"]
    if opts.config is not None:
        argv += ["-F", str(opts.config)]
    if opts.identity is not None:
        argv += ["-i", str(opts.identity)]
    if opts.known_hosts is not None:
        argv += ["-o", f"UserKnownHostsFile={opts.known_hosts}"]
    port = opts.port or target.port
    if port:
        argv += ["-p", str(port)]
    if target.user:
        argv += ["-l", target.user]
    return [*argv, "--", target.host]


_HOST_KEY = re.compile(
    r"host key verification failed|remote host identification has changed|host key is known|"
    r"host key for .* has changed",
    re.IGNORECASE,
)


def ssh_error(host: str, stderr: str, fingerprint: str | None = None) -> RunctlError:
    """ssh's own failure (exit 255) as the typed error the asyncssh path raises."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    last = lines[-1].removeprefix("ssh: ") if lines else "ssh exited with status 255"
    text = stderr.lower()
    if _HOST_KEY.search(stderr):
        changed = "has changed" in text
        state = "does not match known_hosts" if changed else "is unknown"
        presented = f": {fingerprint}" if fingerprint else ""
        return HostKeyError(
            f"host key for {host} {state}{presented} (ssh: {last})",
            "If the server was reinstalled, drop the old key with ssh-keygen -R."
            if changed
            else "Check the fingerprint (ssh-keyscan), then rerun with --accept-new-host-key.",
        )
    if "permission denied" in text or "too many authentication failures" in text:
        return CredentialsError(
            f"authentication failed for {host} (ssh: {last})",
            "Check the key (-i, IdentityFile in ssh config, or ssh-agent) and the remote authorized_keys.",
        )
    if "connection refused" in text:
        return NetworkError(
            f"connection refused by {host} (ssh: {last})", "Is sshd running there, on that port?"
        )
    if "could not resolve" in text or "name or service not known" in text:
        return NetworkError(
            f"cannot resolve host {host!r} (ssh: {last})", "Check the name or your ssh config."
        )
    if "timed out" in text:
        return NetworkError(
            f"timed out connecting to {host} (ssh: {last})", "Check the network and the port."
        )
    return NetworkError(f"ssh to {host} failed: {last}", "Run the same ssh by hand, with -v, to see why.")
