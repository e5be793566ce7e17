"""`runctl exec`: one command on one target, over whichever transport reaches it.

The command is what ssh would run: a single argument is a shell command line
(``'cd x && make'``); several are quoted one by one, so ``-- echo 'a b'`` prints
``a b`` exactly (ssh would re-split it). A path in the target (``host:/work``) is the
directory the command runs in. Output streams to the sinks as it arrives over SSH;
over SSM it arrives when the command ends.
"""

from __future__ import annotations

import asyncio
import secrets
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import CommandTimedOut, NotFoundError, RemoteError, UsageError
from .target import ConnectOptions, Target

Sink = Callable[[bytes], None]
CAPTURE_LIMIT = 16 * 1024 * 1024
"""Output kept for JSON per stream; beyond it the result says ``truncated``."""


@dataclass
class ExecResult:
    target: str
    via: str
    exit_status: int
    stdout: bytes
    stderr: bytes
    truncated: bool
    seconds: float

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "command": "exec",
            "target": self.target,
            "via": self.via,
            "exit_status": self.exit_status,
            "stdout": self.stdout.decode(errors="replace"),
            "stderr": self.stderr.decode(errors="replace"),
            "truncated": self.truncated,
            "seconds": round(self.seconds, 3),
        }


def command_line(argv: Sequence[str], cwd: str, no_cwd: str | None = None) -> str:
    """The line the remote shell runs. With ``no_cwd``, a working directory the shell
    cannot enter prints that marker line on stderr (instead of the shell's own message)
    and the command does not run."""
    if not argv:
        raise UsageError("no command given", "Put the command after --, e.g. runctl exec gpu1 -- nvidia-smi")
    line = argv[0] if len(argv) == 1 else shlex.join(argv)
    if cwd in ("", "."):
        return line
    if no_cwd is None:
        return f"cd -- {shlex.quote(cwd)} && {line}"
    return f"{{ cd -- {shlex.quote(cwd)}; }} 2>/dev/null || {{ echo {no_cwd} >&2; exit 1; }}\n{line}"


class _Capture:
    """Keeps a stream for the result (up to CAPTURE_LIMIT) and passes it on. With a
    ``marker``, a line equal to it is taken out of the stream and remembered (``seen``);
    only a trailing piece that could still become the marker is held back."""

    def __init__(self, sink: Sink | None, marker: str | None = None) -> None:
        self.sink = sink
        self.data = bytearray()
        self.cut = False
        self.marker = marker.encode() + b"\n" if marker else b""
        self.held = b""
        self.seen = False

    def __call__(self, chunk: bytes) -> None:
        if self.marker:
            chunk = self._unmark(self.held + chunk)
        self._keep(chunk)

    def flush(self) -> None:
        held, self.held = self.held, b""
        self._keep(held)

    def _unmark(self, data: bytes) -> bytes:
        head, sep, tail = data.rpartition(b"\n")
        lines = (head + sep).splitlines(keepends=True)
        if self.marker in lines:
            self.seen = True
            lines = [line for line in lines if line != self.marker]
        self.held = tail if tail and self.marker.startswith(tail) else b""
        return b"".join(lines) + (b"" if self.held else tail)

    def _keep(self, chunk: bytes) -> None:
        if not chunk:
            return
        if self.sink is not None:
            self.sink(chunk)
        room = CAPTURE_LIMIT - len(self.data)
        if len(chunk) > room:
            self.cut = True
        self.data += chunk[: max(room, 0)]


async def run_command(
    target: Target,
    argv: Sequence[str],
    opts: ConnectOptions,
    stdout: Sink | None = None,
    stderr: Sink | None = None,
) -> ExecResult:
    """Run ``argv`` on ``target``; its exit status is the result's (a failure to reach
    the target, or a timeout, raises a typed error instead)."""
    from . import open_remote

    started = time.monotonic()
    no_cwd = f"runctl-no-workdir-{secrets.token_hex(8)}"
    line = command_line(argv, target.path, no_cwd)
    remote = await open_remote(target, opts)
    out, err = _Capture(stdout), _Capture(stderr, no_cwd)
    try:
        process = await remote.start(line, stderr_sink=err)
        try:
            work = _finish(process, out)
            if opts.timeout and not remote.enforces_timeout:
                status, kept = await asyncio.wait_for(work, opts.timeout)
            else:
                status, kept = await work
        except TimeoutError:
            process.close()
            raise CommandTimedOut(f"the command ran past --timeout {opts.timeout}s on {remote.url}") from None
        if status is None:
            raise (await remote.failure(status, kept)) or RemoteError(
                f"the command on {remote.url} ended without an exit status (killed by a signal?)"
            )
        err.flush()
        problem = await remote.failure(status, kept)
        if problem is not None:
            raise problem
        if err.seen:
            raise NotFoundError(
                f"cannot enter the working directory {target.path!r} on {remote.url}: "
                "missing, or not a directory",
                "Check the path after the ':' (the command did not run).",
            )
    finally:
        await remote.close()
    return ExecResult(
        target=target.url if target.instance_id is None else target.host,
        via="ssm" if remote.name == "ssm" else "ssh",
        exit_status=status,
        stdout=bytes(out.data),
        stderr=bytes(err.data),
        truncated=out.cut or err.cut or process.truncated,
        seconds=time.monotonic() - started,
    )


async def _finish(process: Any, out: _Capture) -> tuple[int | None, bytes]:
    """The exit status and the stderr the transport kept (with its own messages, which
    are not streamed: e.g. ssh's, logged aside)."""
    process.stdin.write_eof()
    while chunk := await process.stdout.read(1 << 16):
        out(chunk)
    status, kept = await process.wait()
    return status, kept
