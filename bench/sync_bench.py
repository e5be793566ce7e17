#!/usr/bin/env python3
"""No-change sync benchmark: `runctl s3 sync DIR s3://bench/...` against `s5cmd sync`.

Not a test: run it by hand (``python bench/sync_bench.py``). Each tool first syncs a tree
of small files into its own prefix (the seed, timed once and reported), then the same
sync is timed again with nothing changed: the cost of listing both sides and deciding
that there is nothing to do. Shares the server, pinning and timing code of s3_bench.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from installed import compile_runctl  # bench/ is sys.path[0] when run as a script
from s3_bench import (
    BUCKET,
    RESULTS_DIR,
    Env,
    Measurement,
    format_table,
    local_server,
    log_tail,
    make_env,
    rotated,
    run_timed,
)

TOOLS = ("runctl", "s5cmd", "aws")
DEFAULT_TOOLS = ("runctl", "s5cmd")
FILES_PER_DIR = 100


def make_tree(root: Path, count: int, size: int) -> None:
    """`count` files of `size` random bytes, FILES_PER_DIR to a directory."""
    for i in range(count):
        d = root / f"d{i // FILES_PER_DIR:03d}"
        if i % FILES_PER_DIR == 0:
            d.mkdir(parents=True)
        (d / f"f{i:05d}.bin").write_bytes(os.urandom(size))


def command(tool: str, env: Env, tree: Path, url: str, down: bool = False) -> list[str]:
    """The tool's sync of ``tree`` up to ``url`` (or, with ``down``, of ``url`` into ``tree``)."""
    src, dst = (url, str(tree)) if down else (str(tree), url)
    if tool == "runctl":
        return [*env.runctl, "--no-progress", "-q", "s3", "sync", src, dst, *env.runctl_args]
    if tool == "s5cmd":
        # s5cmd spells "the contents of" with a wildcard on S3 and a trailing slash locally.
        s5_src, s5_dst = (f"{url}*", f"{tree}/") if down else (f"{tree}/", url)
        return [env.s5cmd, "--endpoint-url", env.endpoint, "sync", s5_src, s5_dst]
    if tool == "aws":
        return [env.aws, "--endpoint-url", env.endpoint, "s3", "sync", "--only-show-errors", src, dst]
    raise ValueError(f"unknown tool {tool}")


def local_state(tree: Path) -> dict[str, tuple[int, int]]:
    """{relative path: (size, mtime_ns)}: equal before and after means nothing was rewritten."""
    return {
        p.relative_to(tree).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in tree.rglob("*")
        if p.is_file()
    }


def run_down(tool: str, run: int, env: Env, label: str, want: tuple[int, int]) -> Measurement:
    """Download direction: sync the tool's own seeded prefix into its own local copy."""
    url = f"s3://{BUCKET}/sync/{tool}/"
    tree = env.work / f"down-{tool}"
    m = Measurement(label, tool, run, command(tool, env, tree, url, down=True))
    before = local_state(tree) if label == "down-no-change" else {}
    log = env.work / "logs" / f"{label}-{tool}-r{run}.log"
    run_timed(m, env, log)
    after = local_state(tree) if tree.exists() else {}
    got = (len(after), sum(v[0] for v in after.values()))
    if m.exit_code != 0:
        m.error = f"exit code {m.exit_code}"
    elif got != want:
        m.error = f"local copy holds {got[0]} files / {got[1]} bytes, expected {want[0]} / {want[1]}"
    elif label == "down-no-change" and after != before:
        m.error = f"not a no-op: {sum(1 for k in after if before.get(k) != after[k])} files rewritten"
    m.ok = not m.error
    if not m.ok:
        print(f"  FAILED {tool} sync ({label}): {m.error}\n  $ {shlex.join(m.argv)}", file=sys.stderr)
    return m


def remote_state(env: Env, prefix: str) -> dict[str, tuple[int, str, str]]:
    """{key: (size, etag, last_modified)} under the prefix: equal before and after a run
    means the run changed nothing, whatever the tool prints."""
    out = subprocess.run(
        [env.s5cmd, "--endpoint-url", env.endpoint, "--json", "ls", f"s3://{BUCKET}/{prefix}/*"],
        env=env.environ,
        capture_output=True,
        text=True,
    )
    state: dict[str, tuple[int, str, str]] = {}
    for line in out.stdout.splitlines() if out.returncode == 0 else []:
        item = json.loads(line)
        state[item["key"]] = (int(item["size"]), item.get("etag", ""), item.get("last_modified", ""))
    return state


def run_one(tool: str, run: int, env: Env, tree: Path, label: str, want: tuple[int, int]) -> Measurement:
    """Time one sync; ok only on exit 0 with the remote holding exactly `want` = (objects, bytes)
    and, for a no-change run, with no object rewritten."""
    prefix = f"sync/{tool}"
    m = Measurement(label, tool, run, command(tool, env, tree, f"s3://{BUCKET}/{prefix}/"))
    before = remote_state(env, prefix) if label == "no-change" else {}
    log = env.work / "logs" / f"{label}-{tool}-r{run}.log"
    run_timed(m, env, log)
    after = remote_state(env, prefix)
    got = (len(after), sum(v[0] for v in after.values()))
    if m.exit_code != 0:
        m.error = f"exit code {m.exit_code}"
    elif got != want:
        m.error = f"remote holds {got[0]} objects / {got[1]} bytes, expected {want[0]} / {want[1]}"
    elif label == "no-change" and after != before:
        changed = sum(1 for k in after if before.get(k) != after[k])
        m.error = f"not a no-op: {changed} objects rewritten"
    m.ok = not m.error
    if not m.ok:
        what = f"{tool} sync ({label})"
        if tool == "runctl" and m.exit_code == 2:
            what += " -- exit 2 is a usage error: does `runctl s3 sync SRC DST` exist yet?"
        print(f"  FAILED {what}: {m.error}\n  $ {shlex.join(m.argv)}", file=sys.stderr)
        tail = log_tail(log)
        if tail:
            print("  | " + tail.replace("\n", "\n  | "), file=sys.stderr)
    return m


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3, help="timed no-change runs per tool (default 3)")
    p.add_argument("--files", type=int, default=10_000)
    p.add_argument("--size", type=int, default=4096, help="bytes per file")
    p.add_argument("--tools", default=",".join(DEFAULT_TOOLS), help=f"subset of {','.join(TOOLS)}")
    p.add_argument("--runctl-args", default="", help='extra runctl arguments, e.g. "--concurrency 64"')
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = p.parse_args(argv)
    compile_runctl()
    tools = [t for t in args.tools.split(",") if t]
    if any(t not in TOOLS for t in tools) or args.runs < 1:
        p.error("unknown tool or --runs < 1")

    work = Path(tempfile.mkdtemp(prefix="runctl-sync-bench-", dir=args.workdir))
    (work / "logs").mkdir()
    started = datetime.now()
    results: list[Measurement] = []
    want = (args.files, args.files * args.size)
    try:
        tree = work / "tree"
        make_tree(tree, args.files, args.size)
        with local_server(work) as server:
            env = make_env(server, work, args.runctl_args)
            seeded = []
            for tool in tools:
                m = run_one(tool, 0, env, tree, "first-sync", want)
                results.append(m)
                print(f"first-sync {tool:<6} {m.seconds:7.3f}s {'ok' if m.ok else 'FAIL'}", file=sys.stderr)
                if m.ok:
                    seeded.append(tool)
            for run in range(args.runs):
                for tool in rotated(seeded, run) if seeded else []:
                    m = run_one(tool, run, env, tree, "no-change", want)
                    results.append(m)
                    print(
                        f"run {run + 1}/{args.runs} no-change {tool:<6} {m.seconds:7.3f}s "
                        f"{'ok' if m.ok else 'FAIL'}",
                        file=sys.stderr,
                    )
            # Download direction: each tool pulls its own prefix, then syncs again.
            pulled = []
            for tool in seeded:
                m = run_down(tool, 0, env, "down-first-sync", want)
                results.append(m)
                print(
                    f"down-first-sync {tool:<6} {m.seconds:7.3f}s {'ok' if m.ok else 'FAIL'}", file=sys.stderr
                )
                if m.ok:
                    pulled.append(tool)
            time.sleep(1)  # the copies' ctimes land clearly after the objects' LastModified
            for run in range(args.runs):
                for tool in rotated(pulled, run) if pulled else []:
                    m = run_down(tool, run, env, "down-no-change", want)
                    results.append(m)
                    print(
                        f"run {run + 1}/{args.runs} down-no-change {tool:<6} {m.seconds:7.3f}s "
                        f"{'ok' if m.ok else 'FAIL'}",
                        file=sys.stderr,
                    )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    rows = [["case", *(f"{t} s" for t in tools), *(f"runctl/{t}" for t in tools if t != "runctl")]]
    summary: dict[str, dict[str, float]] = {}
    for label in ("first-sync", "no-change", "down-first-sync", "down-no-change"):
        med: dict[str, float] = {}
        for tool in tools:
            good = [m.seconds for m in results if m.case == label and m.tool == tool and m.ok]
            if good:
                med[tool] = statistics.median(good)
        summary[label] = med
        ratios = [
            f"{med['runctl'] / med[t]:.2f}" if "runctl" in med and t in med else "-"
            for t in tools
            if t != "runctl"
        ]
        rows.append([label, *(f"{med[t]:.3f}" if t in med else "FAIL" for t in tools), *ratios])
    print(format_table(rows))
    print(
        f"{args.files} files x {args.size} B; first-sync is one run, no-change the median of {args.runs};"
        " down-* pull each tool's own prefix into a fresh local copy, then sync it again"
    )
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"sync_bench-{started:%Y%m%d-%H%M%S}.json"
    document = {
        "started": started.isoformat(timespec="seconds"),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "summary": summary,
        "measurements": [m.__dict__ for m in results],
    }
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"results: {out}", file=sys.stderr)
    failed = [m for m in results if not m.ok]
    if any(m.tool == "runctl" for m in failed):
        print("runctl sync FAILED: see the messages above; its ratio is not meaningful", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
