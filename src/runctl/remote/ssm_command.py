"""AWS SSM Run Command: send one shell script to one or many instances and wait for it.

What a Run Command client must get right, and botocore's waiter does not:
- its own poller: GetCommandInvocation (one instance) or ListCommandInvocations (many)
  with jittered backoff from 0.5 s to 10 s and no cap but the command's own timeout
  (the waiter gives up after ~100 s);
- ``InvocationDoesNotExist`` right after SendCommand is eventual consistency, not an
  error: pending for a while;
- at most 50 instance ids per SendCommand: more are several commands, polled together;
- inline output is only the first 24,000 characters of stdout and 8,000 of stderr:
  with an S3 output location the whole output is read from there, otherwise a cut
  output is flagged as cut, never presented as whole;
- ``executionTimeout`` (the script's time limit) is not ``TimeoutSeconds`` (how long
  delivery may take);
- a pre-flight DescribeInstanceInformation turns "not managed" and "agent offline"
  into clear errors before anything is sent; Ctrl-C cancels what was sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import Interrupted, NotFoundError, RemoteError, RunctlError, UsageError
from .aws import aws_error, error_code

DOCUMENT = "AWS-RunShellScript"
MAX_IDS_PER_SEND = 50
STDOUT_INLINE = 24_000
STDERR_INLINE = 8_000
CUT_MARKER = b"--output truncated--"
"""What the agent puts at the end of an inline output it cut (within the limit)."""
MAX_INLINE_SCRIPT = 48 * 1024
"""Largest script sent inline: a document's parameters are limited to 64 KB in all."""
MAX_EXECUTION_TIMEOUT = 172_800
MIN_EXECUTION_TIMEOUT = 5
"""The agent replaces an executionTimeout below this with its default (3600)."""
DEFAULT_EXECUTION_TIMEOUT = 3_600
"""AWS's own default for executionTimeout; --timeout overrides it."""
DELIVERY_TIMEOUT = 600
"""Seconds SSM may take to hand the command to an (Online) agent before giving up."""
NOT_YET_VISIBLE = 60.0
"""How long InvocationDoesNotExist is taken for eventual consistency after a send."""
OUTPUT_READS = 10
"""GetCommandInvocation calls in flight when many instances end at once."""
TERMINAL = {"Success", "Failed", "Cancelled", "TimedOut", "Undeliverable", "Terminated"}
MANAGED_HINT = (
    "The instance needs the SSM agent running and an IAM instance profile with the "
    "AmazonSSMManagedInstanceCore policy; check `aws ssm describe-instance-information`."
)

Sleep = Callable[[float], Awaitable[None]]
OutputReader = Callable[[str, str], Awaitable[bytes | None]]
"""(bucket, key) -> the object's bytes, or None when there is no such object."""


@dataclass(frozen=True)
class CommandSpec:
    """One script, as Run Command will run it."""

    script: str
    execution_timeout: int | None = None
    """Seconds before SSM kills the script (None: AWS's default, 3600)."""
    working_directory: str | None = None
    output_s3: tuple[str, str] | None = None
    """(bucket, key prefix) for the full output."""
    comment: str = "runctl"

    def parameters(self) -> dict[str, list[str]]:
        params = {"commands": self.script.split("\n")}
        if self.execution_timeout is not None:
            params["executionTimeout"] = [str(self.execution_timeout)]
        if self.working_directory:
            params["workingDirectory"] = [self.working_directory]
        return params


@dataclass
class Invocation:
    """How the command ended on one instance."""

    instance_id: str
    status: str
    details: str
    exit_status: int | None
    stdout: bytes
    stderr: bytes
    truncated: bool
    seconds: float

    @property
    def ran(self) -> bool:
        """The script ran to its end (exit status is its own, zero or not)."""
        return self.status in ("Success", "Failed") and self.exit_status is not None and self.exit_status >= 0

    def error(self) -> RunctlError | None:
        """A one-line error when the script did not run to its end (timed out, cancelled,
        never delivered), else None: a non-zero exit status is the script's own result."""
        if self.ran:
            return None
        from ..errors import CommandTimedOut

        what = f"{self.instance_id}: {self.status}" + (f" ({self.details})" if self.details else "")
        if self.status == "TimedOut" and "Delivery" not in self.details:
            return CommandTimedOut(f"the command timed out on {what}", "Raise --timeout (at most 172800).")
        if self.status == "Cancelled":
            return Interrupted(f"the command was cancelled on {what}")
        hint = MANAGED_HINT if "Deliver" in self.details or self.status == "Undeliverable" else ""
        return RemoteError(f"the command did not run on {what}", hint)


@dataclass
class Poll:
    """The poller's pace: jittered, growing delays (0.5 s to 10 s by default)."""

    first: float = 0.5
    factor: float = 1.5
    most: float = 10.0
    jitter: float = 0.2

    def delays(self) -> Any:
        delay = self.first
        while True:
            yield delay * random.uniform(1 - self.jitter, 1 + self.jitter)
            delay = min(self.most, delay * self.factor)


class RunCommand:
    """Run Command through a botocore ``ssm`` client (its calls run in threads)."""

    def __init__(
        self,
        ssm: Any,
        read_output: OutputReader | None = None,
        poll: Poll | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.ssm = ssm
        self.read_output = read_output
        self.poll = poll or Poll()
        self.sleep = sleep
        self.pending: set[str] = set()
        """Command ids sent and not yet seen to end (what Ctrl-C cancels)."""

    async def _call(self, operation: str, doing: str, **params: Any) -> Any:
        try:
            return await asyncio.to_thread(getattr(self.ssm, operation), **params)
        except Exception as exc:
            raise aws_error(exc, doing) from exc

    async def check_managed(self, instance_ids: Sequence[str]) -> None:
        """Every instance is managed by SSM and its agent is Online, or a clear error."""
        found: dict[str, str] = {}
        for chunk in _chunks(instance_ids, MAX_IDS_PER_SEND):
            token: str | None = None
            while True:
                params: dict[str, Any] = {"Filters": [{"Key": "InstanceIds", "Values": list(chunk)}]}
                if token:
                    params["NextToken"] = token
                page = await self._call(
                    "describe_instance_information", f"look up {', '.join(chunk)} in SSM", **params
                )
                for info in page.get("InstanceInformationList", []):
                    found[info["InstanceId"]] = info.get("PingStatus", "")
                token = page.get("NextToken")
                if not token:
                    break
        for iid in instance_ids:
            if iid not in found:
                raise NotFoundError(f"{iid} is not managed by SSM (or not in this region)", MANAGED_HINT)
            if found[iid] != "Online":
                raise RemoteError(f"the SSM agent on {iid} is {found[iid] or 'not reporting'}", MANAGED_HINT)

    async def send(self, instance_ids: Sequence[str], spec: CommandSpec) -> list[tuple[str, list[str]]]:
        """Send the script; one SendCommand per 50 instances. Returns (command id, ids)."""
        size = len(spec.script.encode("utf-8", "surrogateescape"))
        if size > MAX_INLINE_SCRIPT:
            raise UsageError(
                f"the script is {size // 1024} KiB, more than SSM takes inline "
                f"({MAX_INLINE_SCRIPT // 1024} KiB)",
                "Pass --staging s3://BUCKET/PREFIX: a larger script travels as a staged object.",
            )
        sent: list[tuple[str, list[str]]] = []
        for chunk in _chunks(instance_ids, MAX_IDS_PER_SEND):
            params: dict[str, Any] = {
                "InstanceIds": list(chunk),
                "DocumentName": DOCUMENT,
                "Parameters": spec.parameters(),
                "TimeoutSeconds": DELIVERY_TIMEOUT,
                "Comment": spec.comment[:100],
                "MaxConcurrency": str(MAX_IDS_PER_SEND),
                "MaxErrors": str(MAX_IDS_PER_SEND),  # one failed node must not cancel the others
            }
            if spec.output_s3:
                params["OutputS3BucketName"], params["OutputS3KeyPrefix"] = spec.output_s3
            reply = await self._call("send_command", f"send the command to {', '.join(chunk)}", **params)
            command_id = reply["Command"]["CommandId"]
            self.pending.add(command_id)
            sent.append((command_id, list(chunk)))
        return sent

    async def cancel(self) -> None:
        """Best effort: ask SSM to cancel every command still running (errors are ignored)."""
        for command_id in sorted(self.pending):
            # Best effort: the user is already leaving.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.to_thread(self.ssm.cancel_command, CommandId=command_id), 10)

    async def run(self, instance_ids: Sequence[str], spec: CommandSpec) -> dict[str, Invocation]:
        """Pre-flight, send, wait for every instance; Ctrl-C cancels and raises Interrupted."""
        await self.check_managed(instance_ids)
        try:
            sent = await self.send(instance_ids, spec)
            results = await asyncio.gather(*(self.wait(cid, ids, spec) for cid, ids in sent))
        except (asyncio.CancelledError, KeyboardInterrupt):
            await asyncio.shield(self.cancel())
            raise Interrupted("interrupted: the command was cancelled on the instances") from None
        merged: dict[str, Invocation] = {}
        for part in results:
            merged.update(part)
        return merged

    async def wait(
        self, command_id: str, instance_ids: Sequence[str], spec: CommandSpec
    ) -> dict[str, Invocation]:
        """Poll until every instance of ``command_id`` is in a terminal state."""
        started = time.monotonic()
        delays = self.poll.delays()
        done: dict[str, Invocation] = {}
        reading = asyncio.Semaphore(OUTPUT_READS)
        while True:
            await self.sleep(next(delays))
            if len(instance_ids) == 1:
                statuses = await self._one_status(command_id, instance_ids[0], started)
            else:
                statuses = await self._listed_statuses(command_id)
            ended = [
                i for i, st in statuses.items() if i in instance_ids and i not in done and st in TERMINAL
            ]
            await asyncio.gather(
                *(self._finish_into(done, reading, command_id, i, spec, started) for i in ended)
            )
            if len(done) == len(instance_ids):
                self.pending.discard(command_id)
                return done

    async def _finish_into(
        self,
        done: dict[str, Invocation],
        reading: asyncio.Semaphore,
        command_id: str,
        instance_id: str,
        spec: CommandSpec,
        started: float,
    ) -> None:
        async with reading:
            done[instance_id] = await self._finished(command_id, instance_id, spec, started)

    async def _one_status(self, command_id: str, instance_id: str, started: float) -> dict[str, str]:
        try:
            reply = await asyncio.to_thread(
                self.ssm.get_command_invocation, CommandId=command_id, InstanceId=instance_id
            )
        except Exception as exc:
            if error_code(exc) == "InvocationDoesNotExist" and time.monotonic() - started < NOT_YET_VISIBLE:
                return {}  # not visible yet: SSM is eventually consistent right after a send
            raise aws_error(exc, f"poll the command on {instance_id}") from exc
        return {instance_id: reply.get("Status", "")}

    async def _listed_statuses(self, command_id: str) -> dict[str, str]:
        statuses: dict[str, str] = {}
        token: str | None = None
        while True:
            params: dict[str, Any] = {"CommandId": command_id, "MaxResults": 50}
            if token:
                params["NextToken"] = token
            page = await self._call("list_command_invocations", f"poll command {command_id}", **params)
            for inv in page.get("CommandInvocations", []):
                statuses[inv["InstanceId"]] = inv.get("Status", "")
            token = page.get("NextToken")
            if not token:
                return statuses  # instances not listed yet are still pending

    async def _finished(
        self, command_id: str, instance_id: str, spec: CommandSpec, started: float
    ) -> Invocation:
        delays = self.poll.delays()
        seen = time.monotonic()
        while True:
            try:
                reply = await asyncio.to_thread(
                    self.ssm.get_command_invocation, CommandId=command_id, InstanceId=instance_id
                )
                break
            except Exception as exc:
                # Listed as done by ListCommandInvocations, yet not visible here yet: the
                # two read paths are each eventually consistent.
                if error_code(exc) != "InvocationDoesNotExist" or time.monotonic() - seen > NOT_YET_VISIBLE:
                    raise aws_error(exc, f"read the command's output on {instance_id}") from exc
            await self.sleep(next(delays))
        stdout, cut_out = _inline(reply.get("StandardOutputContent"), STDOUT_INLINE)
        stderr, cut_err = _inline(reply.get("StandardErrorContent"), STDERR_INLINE)
        truncated = cut_out or cut_err
        if spec.output_s3 and self.read_output is not None:
            bucket, prefix = spec.output_s3
            base = "/".join(p for p in (prefix.strip("/"), command_id, instance_id) if p)
            base += "/awsrunShellScript/0.awsrunShellScript/"
            full_out = await self.read_output(bucket, base + "stdout")
            full_err = await self.read_output(bucket, base + "stderr")
            # The agent uploads a stream only when something was written to it: a missing
            # object with inline output means the upload failed, and the inline part stands.
            if full_out is not None or not stdout:
                stdout = full_out or b""
            if full_err is not None or not stderr:
                stderr = full_err or b""
            truncated = (full_out is None and len(stdout) >= STDOUT_INLINE) or (
                full_err is None and len(stderr) >= STDERR_INLINE
            )
        code = reply.get("ResponseCode")
        return Invocation(
            instance_id=instance_id,
            status=str(reply.get("Status", "")),
            details=str(reply.get("StatusDetails", "")),
            exit_status=int(code) if isinstance(code, int) else None,
            stdout=stdout,
            stderr=stderr,
            truncated=truncated,
            seconds=time.monotonic() - started,
        )


def _inline(content: object, limit: int) -> tuple[bytes, bool]:
    """Inline output, without the agent's cut marker, and whether it was cut (the marker,
    or a length at the limit: the agent cuts by bytes, so count them)."""
    data = str(content or "").encode()
    if data.endswith(CUT_MARKER):
        return data[: -len(CUT_MARKER)], True
    return data, len(data) >= limit


def _chunks(items: Sequence[str], size: int) -> list[Sequence[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
