"""`runctl exec`: one command on one target, over whichever transport reaches it.

The command is what ssh would run: a single argument is a shell command line
(``'cd x && make'``); several are quoted one by one, so ``-- echo 'a b'`` prints
``a b`` exactly (ssh would re-split it). A path in the target (``host:/work``) is the
directory the command runs in. Output streams to the sinks as it arrives over SSH;
over SSM it arrives when the command ends.
"""

from __future__ import annotations

import asyncio
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import CommandTimedOut, RemoteError, UsageError
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


def command_line(argv: Sequence[str], cwd: str) -> str:
    if not argv:
        raise UsageError("no command given", "Put the command after --, e.g. runctl exec gpu1 -- nvidia-smi")
    line = argv[0] if len(argv) == 1 else shlex.join(argv)
    return line if cwd in ("", ".") else f"cd -- {shlex.quote(cwd)} && {line}"


class _Capture:
    """Keeps a stream for the result (up to CAPTURE_LIMIT) and passes it on."""

    def __init__(self, sink: Sink | None) -> None:
        self.sink = sink
        self.data = bytearray()
        self.cut = False

    def __call__(self, chunk: bytes) -> None:
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
    line = command_line(argv, target.path)
    remote = await open_remote(target, opts)
    out, err = _Capture(stdout), _Capture(stderr)
    try:
        process = await remote.start(line, stderr_sink=err)
        try:
            work = _finish(process, out)
            if opts.timeout and not remote.enforces_timeout:
                status = await asyncio.wait_for(work, opts.timeout)
            else:
                status = await work
        except TimeoutError:
            process.close()
            raise CommandTimedOut(f"the command ran past --timeout {opts.timeout}s on {remote.url}") from None
        if status is None:
            raise (await remote.failure(status, bytes(err.data))) or RemoteError(
                f"the command on {remote.url} ended without an exit status (killed by a signal?)"
            )
        problem = await remote.failure(status, bytes(err.data))
        if problem is not None:
            raise problem
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


async def _finish(process: Any, out: _Capture) -> int | None:
    process.stdin.write_eof()
    while chunk := await process.stdout.read(1 << 16):
        out(chunk)
    status, _ = await process.wait()
    result: int | None = status
    return result
