"""Planning at scale: no-change `sync --dry-run` over many keys, runctl beside s5cmd.

    python bench/plan_bench.py                      # 100,000 keys
    python bench/plan_bench.py --keys 1000000       # seeding takes minutes: it is a benchmark
    python bench/plan_bench.py --delay-ms 0,10      # through the delay relay (real S3's latency)

Seeds a local tree of one-byte files (1,000 per directory) and the same keys in SeaweedFS
(with s5cmd, the fastest seeder here), downloads them once with runctl (so the download
direction has a tree runctl wrote), then times each side's no-change dry-run sync in both
directions and `list --recursive`, and reports wall time and the peak RSS of each process
(GNU time %M), runctl's beside s5cmd's, median of ``--runs``. s5cmd's download sync
compares LastModified with the local mtime, and plans copies where the two fall in the
same second (LastModified has whole seconds), so both its syncs run with --size-only,
which plans the same nothing. The issue's bar at 1,000,000 keys: runctl
≤ 0.7x s5cmd's time and ≤ 250 MiB.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import delay_path
from installed import compile_runctl  # bench/ is sys.path[0] when run as a script
from runctl import local_s3
from s3_bench import s5cmd_binary

PER_DIR = 1000


def timed(env: dict[str, str], argv: list[str]) -> tuple[float, int, str]:
    """Run ``argv`` under GNU time; return (seconds, peak RSS KiB, stdout)."""
    with tempfile.NamedTemporaryFile(suffix=".rss") as rss_file:
        started = time.perf_counter()
        proc = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", rss_file.name, *argv],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        seconds = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(argv[:6])} ... failed ({proc.returncode}): {proc.stderr[-2000:]}")
        rss = int(Path(rss_file.name).read_text().split()[-1])
    return seconds, rss, proc.stdout


def runctl(*argv: str) -> list[str]:
    return [sys.executable, "-m", "runctl", "-o", "json", *argv]


def seed_tree(root: Path, keys: int) -> None:
    for i in range(keys):
        if i % PER_DIR == 0:
            folder = root / f"shard{i // PER_DIR:04d}"
            folder.mkdir(parents=True)
        (folder / f"sample-{i:07d}.bin").write_bytes(b"x")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--workdir", default=None, help="where the trees and the server live (default: TMPDIR)"
    )
    parser.add_argument(
        "--delay-ms",
        default="",
        help="comma-separated one-way delays: time the cases through bench/delay_path.py's relay "
        "at each (e.g. 0,10); default: straight to the server",
    )
    args = parser.parse_args()
    compile_runctl()
    s5cmd = s5cmd_binary()
    work = Path(tempfile.mkdtemp(prefix="runctl-plan-bench-", dir=args.workdir))
    server = local_s3.start(work / "s3", buckets=("bench",), cpu=1)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RUNCTL_"))}
    env.update(server.env(), AWS_EC2_METADATA_DISABLED="true")
    endpoint = ["--endpoint-url", env["AWS_ENDPOINT_URL"]] if "AWS_ENDPOINT_URL" in env else []
    try:
        src, copy = work / "tree", work / "downloaded"
        started = time.perf_counter()
        seed_tree(src, args.keys)
        print(f"made {args.keys:,} local files in {time.perf_counter() - started:.0f}s", flush=True)
        url = "s3://bench/plan/"
        sec, _, _ = timed(env, [s5cmd, *endpoint, "cp", f"{src}/*", url])
        print(f"seeded {args.keys:,} keys with s5cmd in {sec:.0f}s", flush=True)
        sec, rss, out = timed(env, runctl("s3", "sync", url, str(copy)))
        copied = json.loads(out)["copied"]
        print(f"downloaded {copied:,} keys with runctl in {sec:.0f}s, peak RSS {rss / 1024:.0f} MiB")
        time.sleep(1)
        with contextlib.ExitStack() as paths:
            for label, leg in legs(env, args.delay_ms, paths):
                time_cases(args, leg, s5cmd, src, copy, url, label)
    finally:
        local_s3.stop_pid(server.pid)
        shutil.rmtree(work, ignore_errors=True)


def legs(env: dict[str, str], delays: str, paths: contextlib.ExitStack) -> list[tuple[str, dict[str, str]]]:
    """(label, environment) per way to the server: straight, or through a relay per delay
    (pinned to the server's CPU, as in s3_bench)."""
    if not delays:
        return [("straight to the server", env)]
    port = int(env["AWS_ENDPOINT_URL"].rsplit(":", 1)[1])
    found = []
    for delay in (float(d) for d in delays.split(",")):
        relay = paths.enter_context(delay_path.running(port, delay, cpu=1))
        found.append(
            (
                f"through the relay, {delay:g} ms each way",
                {**env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{relay.port}"},
            )
        )
    return found


def time_cases(
    args: argparse.Namespace, env: dict[str, str], s5cmd: str, src: Path, copy: Path, url: str, label: str
) -> None:
    endpoint = ["--endpoint-url", env["AWS_ENDPOINT_URL"]]
    cases: list[tuple[str, list[str], list[str]]] = [
        (
            "sync up, no change",
            runctl("s3", "sync", str(src), url, "--dry-run"),
            [s5cmd, *endpoint, "--dry-run", "sync", "--size-only", f"{src}/", url],
        ),
        (
            "sync down, no change",
            runctl("s3", "sync", url, str(copy), "--dry-run"),
            [s5cmd, *endpoint, "--dry-run", "sync", "--size-only", f"{url}*", f"{copy}/"],
        ),
        (
            "list --recursive",
            runctl("s3", "list", url, "--recursive"),
            [s5cmd, *endpoint, "ls", f"{url}*"],
        ),
    ]
    print(f"\n{args.keys:,} keys, median of {args.runs}, {label}")
    print(f"{'case':<22} {'runctl s':>9} {'s5cmd s':>8} {'ratio':>6} {'runctl MiB':>11} {'s5cmd MiB':>10}")
    for name, ours, theirs in cases:
        mine: list[tuple[float, int]] = []
        peer: list[tuple[float, int]] = []
        for run in range(args.runs):
            order = [(ours, mine), (theirs, peer)]
            for argv, into in order if run % 2 == 0 else order[::-1]:
                sec, rss, out = timed(env, argv)
                into.append((sec, rss))
                if argv is ours and name.startswith("sync"):
                    doc = json.loads(out)
                    assert doc["plan"] == [] and doc["skipped"] == args.keys, "a no-change plan"
                if argv is theirs and name.startswith("sync"):
                    assert "cp " not in out, f"s5cmd planned copies: {out[:300]}"
        t_mine, t_peer = (statistics.median(s for s, _ in xs) for xs in (mine, peer))
        r_mine, r_peer = (max(r for _, r in xs) / 1024 for xs in (mine, peer))
        ratio = t_mine / t_peer
        print(
            f"{name:<22} {t_mine:>9.2f} {t_peer:>8.2f} {ratio:>6.2f} {r_mine:>11.0f} {r_peer:>10.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
