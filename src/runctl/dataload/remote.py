"""Loads that run on other machines: ``--on TARGET`` (one machine) and ``--targets
T1,...,TN`` (shard k of N on the k-th, all at once). The bytes go from S3 to the machine;
only the script and its one report line cross this one."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import RunctlError, UsageError
from ..filters import Shard
from ..remote.target import ConnectOptions, Target, parse_target
from .options import InstanceShards, LoadOptions, parse_source
from .result import LoadResult, script_result
from .script import load_script


def _absolute_for_ssm(dest: str) -> None:
    if not dest.startswith("/"):
        raise UsageError(
            f"over SSM, DEST must be an absolute path, not {dest!r}",
            "The agent runs scripts as root, in its own directory and without HOME.",
        )


async def load_on(
    target_text: str,
    source: str,
    dest: str,
    options: LoadOptions,
    opts: ConnectOptions,
    shard: Shard | None = None,
) -> LoadResult:
    """Run the load script on one machine and report what it loaded."""
    from ..remote import open_remote
    from ..remote.fanout import run_script

    target = parse_target(target_text)
    if target.path != ".":
        raise UsageError(f"give the target without a path ({target_text!r}); DEST is the directory")
    script = load_script(source, dest, options, shard)
    started = time.monotonic()
    remote = await open_remote(target, opts)
    try:
        if not remote.interactive:
            _absolute_for_ssm(dest)
        status, out, err, _ = await run_script(remote, script)
    finally:
        await remote.close()
    where = target.host if target.instance_id else target.url.rstrip("/:")
    result = script_result(source, dest, status, out, err, time.monotonic() - started, where)
    result.target, result.via = where, "ssm" if remote.name == "ssm" else "ssh"
    return result


@dataclass
class TargetLoad:
    target: str
    shard: str
    via: str
    ok: bool
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    error: RunctlError | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "shard": self.shard,
            "via": self.via,
            "status": "ok" if self.ok else "failed",
            "files": self.files,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "error": self.error.to_dict() if self.error else None,
        }


@dataclass
class FanOutResult:
    source: str
    destination: str
    seconds: float = 0.0
    targets: list[TargetLoad] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.targets)

    @property
    def failed(self) -> list[TargetLoad]:
        return [t for t in self.targets if not t.ok]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "command": "data load",
            "source": self.source,
            "destination": self.destination,
            "files": sum(t.files for t in self.targets),
            "bytes": sum(t.bytes for t in self.targets),
            "seconds": round(self.seconds, 3),
            "targets": [t.to_dict() for t in self.targets],
        }


def parse_targets(text: str) -> list[Target]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise UsageError("--targets needs at least one machine", "e.g. --targets gpu1,gpu2")
    if len(set(names)) != len(names):
        raise UsageError(f"a machine appears twice in --targets {text!r}: each one loads its own shard")
    targets = [parse_target(n) for n in names]
    for name, target in zip(names, targets, strict=True):
        if target.path != ".":
            raise UsageError(f"give targets without a path ({name!r}); DEST is the directory")
    return targets


async def load_on_targets(
    targets_text: str, source: str, dest: str, options: LoadOptions, opts: ConnectOptions
) -> FanOutResult:
    """Shard k of N on the k-th of N targets, all at once: SSM targets as one Run Command
    fan-out, SSH targets as concurrent sessions."""
    from ..remote.fanout import run_everywhere

    targets = parse_targets(targets_text)
    total = len(targets)

    def script_for(k: int) -> str:
        return load_script(source, dest, options, shard=Shard(k, total))

    def fan_out_script(index_of: Mapping[str, int]) -> str:
        _absolute_for_ssm(dest)
        return load_script(source, dest, options, shard_by_instance=InstanceShards(total, dict(index_of)))

    started = time.monotonic()
    script_for(0)  # a bad source or rule fails here, before any machine is reached
    ran = await run_everywhere(targets, opts, script_for, fan_out_script)
    result = FanOutResult(parse_source(source).url, dest)
    for one in ran:
        load = TargetLoad(one.target, f"{one.index}/{total}", one.via, ok=False, seconds=one.seconds)
        if one.error is None:
            try:
                loaded = script_result(
                    source, dest, one.exit_status, one.stdout, one.stderr, one.seconds, one.target
                )
                load.ok, load.files, load.bytes = loaded.ok, loaded.files, loaded.bytes
                if not loaded.ok:
                    load.error = RunctlError(f"{one.target}: {loaded.failed[0].error}")
            except RunctlError as exc:
                load.error = exc
        else:
            load.error = one.error
        result.targets.append(load)
    result.seconds = time.monotonic() - started
    return result


def failed_names(result: FanOutResult) -> Sequence[str]:
    return [t.target for t in result.failed]
