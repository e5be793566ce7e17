#!/usr/bin/env python3
"""A TCP relay on loopback that adds a one-way delay each way: real S3's latency, here.

The relay is ``bench/delay_relay.c`` (one thread, epoll, no per-byte work), built here
with the system C compiler on first use and cached by the source's hash. A Python relay
(asyncio) cost s5cmd 1.4-1.5x on 2,000 small requests over 256 connections even at 0 ms;
netem would cost nothing in user space, but this machine's kernel has no sch_netem (nor
sch_prio, sch_fq), so ``tc`` cannot delay.

What it models: each chunk read from one side is written to the other ``delay`` later,
in order; a connection's first client chunk waits three delays (the TCP handshake's round
trip plus the one-way trip, which a relay that accepts at once would otherwise skip);
at most 8 MiB waits per direction before the relay stops reading (TCP flow control then
holds the sender back). No bandwidth limit. See the comment at the top of the C file.

    python bench/delay_path.py --upstream 8333 --delay-ms 10     # prints the port
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "delay_relay.c"


def build() -> Path:
    """The relay binary, compiled from SOURCE unless a build of this exact source is cached."""
    source = SOURCE.read_bytes()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "runctl-bench"
    binary = cache / f"delay_relay-{hashlib.sha256(source).hexdigest()[:16]}"
    if binary.exists():
        return binary
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise SystemExit("--delay-ms needs a C compiler (cc or gcc) to build bench/delay_relay.c")
    cache.mkdir(parents=True, exist_ok=True)
    partial = binary.with_name(binary.name + f".{os.getpid()}")
    subprocess.run([cc, "-O2", "-Wall", "-o", str(partial), str(SOURCE)], check=True)
    partial.replace(binary)
    return binary


@dataclass(frozen=True)
class Relay:
    port: int
    pid: int
    delay_ms: float


@contextlib.contextmanager
def running(upstream: int, delay_ms: float, cpu: int | None = None) -> Iterator[Relay]:
    """A relay process to 127.0.0.1:``upstream`` with ``delay_ms`` each way, optionally
    pinned to ``cpu``; yields its port and pid, and kills it on exit."""
    argv = [str(build()), str(upstream), str(round(delay_ms * 1000))]
    if cpu is not None:
        argv = ["taskset", "-c", str(cpu), *argv]  # taskset execs: the pid is the relay's
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.strip().isdigit():
            raise RuntimeError(f"delay relay did not start: {line!r}")
        yield Relay(int(line), proc.pid, delay_ms)
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--upstream", type=int, required=True, help="port on 127.0.0.1 to relay to")
    p.add_argument("--delay-ms", type=float, default=10.0, help="one-way delay each way (default 10)")
    args = p.parse_args()
    os.execv(build(), [str(build()), str(args.upstream), str(round(args.delay_ms * 1000))])


if __name__ == "__main__":
    main()
