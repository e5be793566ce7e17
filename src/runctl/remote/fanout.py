"""One script on many machines at once (``data load --targets``).

Targets reached over SSM go out as ONE Run Command fan-out: SSM is the engine that runs
a command on many machines, so runctl does not schedule them itself; the script is the
same for all of them and picks its part from ``$AWS_SSM_INSTANCE_ID``. Targets reached
over SSH run concurrent sessions, each with its own script. A failure on one target is
that target's result, never the others'.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ..errors import Interrupted, RunctlError, UsageError
from .seam import Remote
from .target import ConnectOptions, Target

SSH_SESSIONS = 16
"""SSH targets connected and running at once."""


@dataclass
class Ran:
    """How the script went on one target."""

    target: str
    index: int
    via: str
    exit_status: int | None = None
    stdout: bytes = b""
    stderr: bytes = b""
    error: RunctlError | None = None
    truncated: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and self.exit_status == 0


async def run_script(remote: Remote, script: str) -> tuple[int | None, bytes, bytes, bool]:
    """(exit status, stdout, stderr, output cut) of ``script`` run by sh on ``remote``.
    Over SSH it goes to ``sh -s`` on stdin: the login shell may be fish or csh, which
    would parse it differently; SSM runs it with sh itself."""
    if remote.interactive:
        process = await remote.start("sh -s")
        process.stdin.write(script.encode("utf-8", "surrogateescape"))
        await process.stdin.drain()
    else:
        process = await remote.start(script)
    process.stdin.write_eof()
    out = bytearray()
    while chunk := await process.stdout.read(1 << 16):
        out += chunk
    status, err = await process.wait()
    failure = await remote.failure(status, err)
    if failure is not None:
        raise failure
    return status, bytes(out), err, process.truncated


async def run_everywhere(
    targets: Sequence[Target],
    opts: ConnectOptions,
    script_for: Callable[[int], str],
    fan_out_script: Callable[[Mapping[str, int]], str],
) -> list[Ran]:
    """Run on every target; ``script_for(k)`` is the k-th target's script over SSH,
    ``fan_out_script({instance id: k})`` the one script of the SSM fan-out."""
    from .instances import SSMRoute, choose_route

    if opts.via == "ssm" and (names := [t.host for t in targets if t.instance_id is None]):
        raise UsageError(
            f"--via ssm needs EC2 instance ids, not {', '.join(names)}", "e.g. i-0abc12345678def90"
        )

    async def routed(target: Target) -> tuple[Target, ConnectOptions] | SSMRoute | RunctlError:
        if target.instance_id is None:
            return target, opts
        try:
            return await choose_route(target, opts)
        except RunctlError as exc:
            return exc

    routes = await asyncio.gather(*(routed(t) for t in targets))
    results: list[Ran] = [
        Ran(t.url if t.instance_id is None else t.host, k, "ssh") for k, t in enumerate(targets)
    ]
    over_ssm: dict[str, int] = {}
    ssh_jobs = []
    sessions = asyncio.Semaphore(SSH_SESSIONS)
    for k, route in enumerate(routes):
        if isinstance(route, RunctlError):
            results[k].error = route
        elif isinstance(route, SSMRoute):
            over_ssm[route.instance_id] = k
            results[k].via = "ssm"
        else:
            ssh_jobs.append(_over_ssh(results[k], route[0], route[1], script_for(k), sessions))
    jobs = [*ssh_jobs]
    if over_ssm:
        jobs.append(_over_ssm(results, over_ssm, opts, fan_out_script(over_ssm)))
    await asyncio.gather(*jobs)
    return results


async def _over_ssh(
    ran: Ran, target: Target, opts: ConnectOptions, script: str, sessions: asyncio.Semaphore
) -> None:
    from . import open_remote

    async with sessions:
        started = time.monotonic()
        try:
            remote = await open_remote(target, opts)
            try:
                ran.exit_status, ran.stdout, ran.stderr, ran.truncated = await run_script(remote, script)
            finally:
                await remote.close()
        except RunctlError as exc:
            ran.error = exc
        ran.seconds = time.monotonic() - started


async def _over_ssm(
    results: list[Ran], index_of: Mapping[str, int], opts: ConnectOptions, script: str
) -> None:
    from .instances import ssm_remote
    from .ssm_command import CommandSpec

    ids = list(index_of)
    remote = ssm_remote(ids[0], opts)  # for its Run Command client and output location
    spec = CommandSpec(script, execution_timeout=opts.timeout, output_s3=remote.output_s3)
    try:
        done = await remote.run.run(ids, spec)
    except Interrupted:
        raise
    except RunctlError as exc:
        for k in index_of.values():
            results[k].error = exc
        return
    for iid, invocation in done.items():
        ran = results[index_of[iid]]
        ran.exit_status = invocation.exit_status
        ran.stdout, ran.stderr = invocation.stdout, invocation.stderr
        ran.truncated, ran.seconds = invocation.truncated, invocation.seconds
        ran.error = invocation.error()
