"""The remote seam over AWS SSM Run Command: a started command is one SendCommand.

Run Command has no stdin and no streaming: the script is the command's parameters,
output arrives when it ends. So a process here is sent when its stdin is closed (or
its output first read): whatever was written to stdin is uploaded as one S3 staging
object, and the command becomes "fetch that object | the command". The instance
fetches it through a short-lived presigned URL (curl, wget or python3, whichever it
has), so it needs no S3 permission of its own; the object is deleted when the
command has ended, also when it failed or was interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import Callable
from shlex import quote

from ..errors import RemoteToolMissingError, RunctlError, UsageError
from .seam import Process, Remote
from .ssm_command import MAX_INLINE_SCRIPT, CommandSpec, Invocation, RunCommand
from .ssm_staging import Staging

SPOOL_IN_MEMORY = 1 << 20
"""stdin beyond this goes to a temporary file before it is uploaded."""

FETCH = """\
if command -v curl >/dev/null 2>&1; then r_fetch() {{ curl -fsS --retry 3 "$1"; }}
elif command -v wget >/dev/null 2>&1; then r_fetch() {{ wget -q -O - "$1"; }}
elif command -v python3 >/dev/null 2>&1; then r_fetch() {{ python3 -c '
import shutil, sys, urllib.request
shutil.copyfileobj(urllib.request.urlopen(sys.argv[1], timeout=60), sys.stdout.buffer)' "$1"; }}
else echo "runctl: curl, wget or python3 not found on this instance (needed to fetch the staged input)" >&2
  exit 10
fi
r_fetch {url} | sh -c {command}
"""
"""Feeds the staged object to the command's stdin (only the tool choice is sh here)."""


class _Stdin:
    """Collects stdin until EOF; then the command is sent."""

    def __init__(self, process: _SSMProcess) -> None:
        self._process = process
        # Closed by the process once sent (or abandoned), not by a with-block.
        self.spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
        self.size = 0

    def write(self, data: bytes) -> None:
        if self._process.sent:
            raise BrokenPipeError("the SSM command was already sent")
        self.spool.write(data)
        self.size += len(data)

    async def drain(self) -> None:
        return None

    def write_eof(self) -> None:
        self._process.send()


class _Output:
    """stdout: the whole output, once the command has ended."""

    def __init__(self, process: _SSMProcess) -> None:
        self._process = process
        self._data: bytes | None = None

    async def read(self, n: int = -1) -> bytes:
        if self._data is None:
            self._data = (await self._process.invocation()).stdout
        if n < 0:
            data, self._data = self._data, b""
        else:
            data, self._data = self._data[:n], self._data[n:]
        return data


class _SSMProcess(Process):
    def __init__(self, remote: SSMRemote, command: str, stderr_sink: Callable[[bytes], None] | None) -> None:
        self.remote = remote
        self.command = command
        self._sink = stderr_sink
        self.input = _Stdin(self)
        self.stdin = self.input
        self.stdout = _Output(self)
        self._task: asyncio.Task[Invocation] | None = None
        self.result: Invocation | None = None

    @property
    def sent(self) -> bool:
        return self._task is not None

    def send(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> Invocation:
        spool = self.input.spool
        staged: str | None = None
        try:
            command = self.command
            if not self.input.size and len(command.encode("utf-8", "surrogateescape")) > MAX_INLINE_SCRIPT:
                # Too large to go inline: the script itself becomes the staged input of sh.
                spool.write(command.encode("utf-8", "surrogateescape"))
                self.input.size, command = spool.tell(), "sh -s"
            if self.input.size:
                staging = self.remote.staging
                if staging is None:
                    raise UsageError(
                        f"sending input to {self.remote.instance_id} over SSM needs an S3 staging location",
                        "Pass --staging s3://BUCKET/PREFIX (or set [ssm] staging in the config file).",
                    )
                spool.seek(0)
                staged = await staging.put(spool, self.input.size)
                url = await staging.presign(staged)
                command = FETCH.format(url=quote(url), command=quote(command))
            result = await self.remote.run_one(command)
        finally:
            spool.close()
            if staged is not None:
                await asyncio.shield(self.remote.staging.delete(staged))  # type: ignore[union-attr]
        return result

    async def invocation(self) -> Invocation:
        if self.result is None:
            self.send()
            assert self._task is not None
            self.result = await self._task
            self.truncated = self.result.truncated
            if self._sink is not None and self.result.stderr:
                self._sink(self.result.stderr)
        return self.result

    async def wait(self) -> tuple[int | None, bytes]:
        done = await self.invocation()
        error = done.error()
        if error is not None:
            raise error
        return done.exit_status, done.stderr

    def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        with contextlib.suppress(Exception):
            self.input.spool.close()


class SSMRemote(Remote):
    """Commands on one SSM-managed instance."""

    name = "ssm"
    interactive = False
    enforces_timeout = True
    round_trip_hint = 2.0
    """A Run Command takes seconds end to end: always a slow link for --compress auto."""

    def __init__(
        self,
        instance_id: str,
        run: RunCommand,
        *,
        execution_timeout: int | None = None,
        output_s3: tuple[str, str] | None = None,
        staging: Staging | None = None,
    ) -> None:
        self.instance_id = instance_id
        self.url = f"{instance_id} (via SSM)"
        self.run = run
        self.execution_timeout = execution_timeout
        self.staging = staging
        # Without an explicit output location, outputs go beside the staged objects
        # (and are deleted once read): a listing is far longer than 24,000 characters.
        self.output_s3 = output_s3 or (staging.output_location() if staging else None)
        self._checked = False

    async def check(self) -> None:
        """Pre-flight, once: the instance is managed and its agent Online."""
        if not self._checked:
            await self.run.check_managed([self.instance_id])
            self._checked = True

    async def start(self, command: str, stderr_sink: Callable[[bytes], None] | None = None) -> Process:
        await self.check()
        return _SSMProcess(self, command, stderr_sink)

    async def run_one(self, command: str) -> Invocation:
        spec = CommandSpec(command, execution_timeout=self.execution_timeout, output_s3=self.output_s3)
        [(command_id, ids)] = await self.run.send([self.instance_id], spec)
        try:
            return (await self.run.wait(command_id, ids, spec))[self.instance_id]
        except asyncio.CancelledError:
            await asyncio.shield(self.run.cancel())
            raise

    async def open_sftp(self) -> None:
        raise RemoteToolMissingError(
            f"tar is not installed on {self.instance_id}, and SSM has no SFTP fallback",
            "Install tar on the instance.",
        )

    async def failure(self, status: int | None, stderr: bytes) -> RunctlError | None:
        return None
