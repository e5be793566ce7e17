"""The remote seam over AWS SSM Run Command: a started command is one SendCommand.

Run Command has no stdin and no streaming: the script is the command's parameters,
output arrives when it ends. So a process here is sent at ``start``, its stdout reads
as the whole output once the command is over, and writing to its stdin is an error
(bulk bytes go through an S3 staging object instead; see the instance-side README).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ..errors import RemoteToolMissingError, RunctlError
from .seam import Process, Remote
from .ssm_command import CommandSpec, Invocation, RunCommand


class _NoStdin:
    def write(self, data: bytes) -> None:
        if data:
            raise RemoteToolMissingError(
                "SSM Run Command has no stdin", "Bytes for the instance travel through an S3 staging object."
            )

    async def drain(self) -> None:
        return None

    def write_eof(self) -> None:
        return None


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
    def __init__(self, task: asyncio.Task[Invocation], stderr_sink: Callable[[bytes], None] | None) -> None:
        self._task = task
        self._sink = stderr_sink
        self.stdin = _NoStdin()
        self.stdout = _Output(self)
        self.result: Invocation | None = None

    async def invocation(self) -> Invocation:
        if self.result is None:
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
        self._task.cancel()


class SSMRemote(Remote):
    """Commands on one SSM-managed instance."""

    name = "ssm"
    enforces_timeout = True

    def __init__(
        self,
        instance_id: str,
        run: RunCommand,
        *,
        execution_timeout: int | None = None,
        output_s3: tuple[str, str] | None = None,
    ) -> None:
        self.instance_id = instance_id
        self.url = f"{instance_id} (via SSM)"
        self.run = run
        self.execution_timeout = execution_timeout
        self.output_s3 = output_s3
        self._checked = False

    async def check(self) -> None:
        """Pre-flight, once: the instance is managed and its agent Online."""
        if not self._checked:
            await self.run.check_managed([self.instance_id])
            self._checked = True

    async def start(self, command: str, stderr_sink: Callable[[bytes], None] | None = None) -> Process:
        await self.check()
        spec = CommandSpec(command, execution_timeout=self.execution_timeout, output_s3=self.output_s3)
        [(command_id, ids)] = await self.run.send([self.instance_id], spec)

        async def finish() -> Invocation:
            try:
                return (await self.run.wait(command_id, ids, spec))[self.instance_id]
            except asyncio.CancelledError:
                await asyncio.shield(self.run.cancel())
                raise

        return _SSMProcess(asyncio.ensure_future(finish()), stderr_sink)

    async def failure(self, status: int | None, stderr: bytes) -> RunctlError | None:
        return None
