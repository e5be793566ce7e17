"""Planning at scale: `runctl s3 sync --dry-run` over 100,000 keys, both directions.

    python bench/plan_bench.py [--keys 100000]

Seeds a local tree and the same keys in SeaweedFS (with runctl itself, 64 in flight),
then times a dry-run sync each way (the whole plan, nothing copied) and reports wall
time and the peak RSS of the runctl process (GNU time %M). The issue's bar: 100,000
keys plan without holding more than a few hundred MB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from installed import compile_runctl  # bench/ is sys.path[0] when run as a script
from runctl import local_s3


def runctl(env: dict[str, str], *argv: str) -> tuple[float, int, dict[str, object]]:
    """Run runctl under GNU time; return (seconds, peak RSS KiB, JSON document)."""
    rss_file = Path(tempfile.mktemp())
    started = time.perf_counter()
    proc = subprocess.run(
        [
            "/usr/bin/time",
            "-f",
            "%M",
            "-o",
            str(rss_file),
            sys.executable,
            "-m",
            "runctl",
            "-o",
            "json",
            *argv,
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"runctl {' '.join(argv)} failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
    rss = int(rss_file.read_text().split()[-1])
    rss_file.unlink()
    return seconds, rss, json.loads(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keys", type=int, default=100_000)
    args = parser.parse_args()
    compile_runctl()
    work = Path(tempfile.mkdtemp(prefix="runctl-plan-bench-"))
    server = local_s3.start(work / "s3", buckets=("bench",))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RUNCTL_"))}
    env.update(server.env(), AWS_EC2_METADATA_DISABLED="true")
    try:
        src = work / "tree"
        for i in range(args.keys):
            folder = src / f"shard{i // 1000:03d}"
            if i % 1000 == 0:
                folder.mkdir(parents=True)
            (folder / f"sample-{i:07d}.bin").write_bytes(b"x")
        url = "s3://bench/plan/"
        seed, _, doc = runctl(env, "--concurrency", "64", "s3", "sync", str(src), url)
        print(f"seeded {doc['copied']} keys in {seed:.1f}s")
        copy = work / "downloaded"
        seed, _, doc = runctl(env, "--concurrency", "64", "s3", "sync", url, str(copy))
        print(f"downloaded {doc['copied']} keys in {seed:.1f}s")
        time.sleep(1)
        cases = [
            ("local -> s3", src, url),
            ("s3 -> local (a tree runctl downloaded)", url, copy),
            ("s3 -> local (a tree made otherwise: one HEAD per key)", url, src),
        ]
        for name, a, b in cases:
            sec, rss, d = runctl(env, "s3", "sync", str(a), str(b), "--dry-run")
            plan = d.get("plan")
            assert isinstance(plan, list) and len(plan) == args.keys, "every key must be in the plan"
            copies = sum(1 for a in plan if isinstance(a, dict) and a.get("action") == "copy")
            rss_mib = rss / 1024
            print(
                f"{name}: planned {len(plan)} keys ({copies} to copy) in {sec:.2f}s,"
                f" peak RSS {rss_mib:.0f} MiB"
            )
    finally:
        local_s3.stop_pid(server.pid)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
