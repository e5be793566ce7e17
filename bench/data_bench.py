#!/usr/bin/env python3
"""Benchmark `runctl data load --on` against the bare fetch tools on the same "instance".

    python bench/data_bench.py [--runs 3] [--cases small,large] [--link MBIT,MS]

The instance is a private OpenSSH sshd on loopback (tests/sshd.py) whose sessions get an
"instance role" from sshd_config SetEnv: S3 credentials and endpoint of a local SeaweedFS,
and a PATH holding only the sh tools, python3, runctl, s5cmd and aws. Cases: `small`
(2,000 x 4 KiB under one prefix) and `large` (1 x 256 MiB). Each run times, end to end from
this side (ssh or runctl start-up included), in an order rotated per run, into a fresh DEST:

    s5cmd       ssh HOST 's5cmd cp "s3://b/p/*" DEST/'          the bare tool, as a user types it
    s5cmd-sync  ssh HOST 's5cmd [--numworkers N] sync "s3://b/p/*" DEST/'   what the script runs
    runctl      ssh HOST 'runctl data load s3://b/p/ DEST --tool runctl [--concurrency N]'  (same)
    load        runctl data load s3://b/p/ DEST --on HOST      the wrapper (auto: runctl on the box)
    load-s5cmd  runctl data load ... --on HOST --tool s5cmd    the wrapper forcing s5cmd

On the box, runctl and s5cmd are shims that run the real tool under GNU time, so every run
also yields each tool call's own wall time, peak RSS and CPU there. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import filecmp
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests/

from tests import linkshaper, sshd
from tests.unit.dataload.tooling import bare_path, real_binary

from code_bench import link_config  # bench/ is sys.path[0] when run as a script
from installed import compile_runctl
from runctl import __version__ as runctl_version
from runctl.dataload.report import TAG, find_report
from s3_bench import (
    BUCKET,
    CLIENT_CPU,
    GNU_TIME,
    KIB,
    LARGE_NAME,
    LARGE_SIZE,
    RESULTS_DIR,
    SERVER_CPU,
    SMALL_SIZE,
    Data,
    Env,
    Measurement,
    clean_environ,
    diff_listing,
    format_table,
    local_listing,
    local_server,
    log_tail,
    make_data,
    prefault,
    rotated,
    run_timed,
    s5cmd_binary,
    seed,
    tool_version,
)

CASES = ("small", "large")
TOOLS = ("s5cmd", "s5cmd-sync", "runctl", "load", "load-s5cmd")
BARE = ("s5cmd", "s5cmd-sync", "runctl")
FETCHER = {
    "s5cmd": "s5cmd",
    "s5cmd-sync": "s5cmd",
    "runctl": "runctl",
    "load": "runctl",
    "load-s5cmd": "s5cmd",
}
OVERHEADS = {"load": "runctl", "load-s5cmd": "s5cmd-sync"}  # each wrapper and the bare call its script makes
SEED_CASE = {"small": "small-download", "large": "large-download"}  # s3_bench's seeding names
SAMPLE_EVERY = 40  # small case: compare the content of every 40th file (50 of 2,000)
CALL_TAG = "data-bench-call"
RATIO_TARGET = 1.0
OVERHEAD_TARGET = 0.3


# -- the instance -------------------------------------------------------------------------


@dataclass(frozen=True)
class Box:
    """The "instance": a private sshd whose sessions have the role and the tools."""

    server: sshd.SSHServer
    home: Path
    tools: Path  # its PATH
    dests: Path  # each run's DEST is a fresh directory under this one
    calls: Path  # one line per runctl / s5cmd call on the box, from GNU time (the shims)

    def dest(self, tag: str) -> Path:
        return self.dests / tag


def role_env(server_env: dict[str, str], home: Path, tools: Path) -> dict[str, str]:
    """What the box's sessions see besides sshd's own variables: PATH, HOME and what an
    instance profile gives (credentials; here also the endpoint, as AWS_ENDPOINT_URL)."""
    return {
        "PATH": str(tools),
        "HOME": str(home),
        **server_env,
        "AWS_EC2_METADATA_DISABLED": "true",  # no instance metadata service on loopback
    }


def box_tools(where: Path, calls: Path) -> Path:
    """The box's PATH directory as tests/integration/test_data_load_remote.py builds it (the
    sh tools, python3, aws), with runctl and s5cmd (its Go binary, see s3_bench.s5cmd_binary)
    as sh shims that exec the real one under GNU time, appending one line per call to
    ``calls``: a few ms per call, paid alike by the bare tools and the wrapper's script."""
    real = {"s5cmd": s5cmd_binary()}
    for name in ("runctl", "aws"):
        found = real_binary(name)
        if found is None:
            sys.exit(f"{name} is not installed here (pip install -e '.[dev,local]')")
        real[name] = found
    path = Path(bare_path(where, "python3", links={"aws": real["aws"]}))
    for name in ("runctl", "s5cmd"):
        timed = [str(GNU_TIME), "-a", "-o", str(calls), "-f", f"{CALL_TAG} %e %M %U %S %C", real[name]]
        (path / name).write_text(f'#!/bin/sh\nexec {shlex.join(timed)} "$@"\n')
        (path / name).chmod(0o755)
    return path


@contextlib.contextmanager
def start_box(work: Path, server_env: dict[str, str]) -> Iterator[Box]:
    home, dests = work / "box-home", work / "box-dest"
    for folder in (home, dests):
        folder.mkdir(parents=True)
    calls = work / "box-calls"
    tools = box_tools(work / "box-bin", calls)
    env = " ".join(f"{k}={v}" for k, v in role_env(server_env, home, tools).items())
    server = sshd.start(work / "sshd", log_level="ERROR", extra=[f"SetEnv {env}"])
    try:
        if (os.cpu_count() or 1) > 1:  # the sessions, and so the tools on the box, inherit it
            pin = ["taskset", "-a", "-p", "-c", CLIENT_CPU, str(server.pid)]
            subprocess.run(pin, check=True, stdout=subprocess.DEVNULL)
        yield Box(server, home, tools, dests, calls)
    finally:
        sshd.stop(server)


@dataclass(frozen=True)
class Call:
    """One runctl or s5cmd process on the box, as GNU time saw it."""

    seconds: float  # 10 ms steps
    rss_mib: float
    cpu_s: float
    argv: str

    @property
    def fetches(self) -> bool:
        """The call that moves the data (not the script's `runctl data load --help` probe
        nor its `s5cmd ls`)."""
        words = self.argv.split()
        return ("load" in words and "--help" not in words) or "cp" in words or "sync" in words


def take_calls(box: Box) -> list[Call]:
    """The calls logged since the last take (the log is then removed)."""
    try:
        text = box.calls.read_text(errors="replace")
    except FileNotFoundError:
        return []
    box.calls.unlink()
    calls = []
    for line in text.splitlines():  # GNU time adds "Command exited with non-zero status N" lines
        if line.startswith(CALL_TAG + " "):
            _, wall, rss_kib, user, system, argv = line.split(" ", 5)
            calls.append(Call(float(wall), int(rss_kib) / KIB, float(user) + float(system), argv))
    return calls


# -- the commands -------------------------------------------------------------------------


@dataclass(frozen=True)
class Bench:
    env: Env  # s3_bench's: server, scratch directory, binaries and this side's environment
    data: Data
    box: Box
    config: Path  # client ssh_config (through the link proxy with --link)
    ssh_client: str
    concurrency: str  # what the generated script carries ("" if nothing)
    prefault: bool
    prefault_mib: int


def source_url(case: str) -> str:
    return f"s3://{BUCKET}/seed/{case}/"


def script_concurrency(env: Env) -> str:
    """The concurrency the generated script passes to the tool (`rl_concurrency=`), so the
    bare runs call the tool exactly as the script does."""
    argv = [*env.runctl, "data", "load", source_url("small"), "/dest", "--print-script", "--tool", "s5cmd"]
    out = subprocess.run(argv, env=env.environ, capture_output=True, text=True, check=True).stdout
    found = re.search(r"^rl_concurrency=(\d*)$", out, re.MULTILINE)
    if found is None:
        sys.exit("no rl_concurrency= line in the generated script: update bench/data_bench.py")
    return found.group(1)


def command(tool: str, case: str, bench: Bench, dest: Path) -> list[str]:
    """argv, on this side, for one tool and case."""
    url = source_url(case)
    n = bench.concurrency
    if tool == "s5cmd":
        remote = ["s5cmd", "--endpoint-url", bench.env.endpoint, "cp", url + "*", f"{dest}/"]
    elif tool == "s5cmd-sync":
        workers = ["--numworkers", n] if n else []
        remote = ["s5cmd", "--endpoint-url", bench.env.endpoint, *workers, "sync", url + "*", f"{dest}/"]
    elif tool == "runctl":
        remote = ["runctl", "data", "load", url, str(dest), "--tool", "runctl"]
        remote += ["--concurrency", n] if n else []
    else:
        argv = [*bench.env.runctl, "-o", "json", "--no-progress", "data", "load", url, str(dest)]
        argv += ["--on", sshd.ALIAS, "-F", str(bench.config), "--ssh-client", bench.ssh_client]
        return [*argv, "--tool", "s5cmd"] if tool == "load-s5cmd" else argv
    return ["ssh", "-F", str(bench.config), sshd.ALIAS, shlex.join(remote)]


# -- one run ------------------------------------------------------------------------------


@dataclass
class LoadMeasurement(Measurement):
    """s3_bench's Measurement (wall time, exit code, this side's peak RSS and CPU, weed's CPU)
    plus the fetching call on the box and the script's other calls."""

    fetch_s: float = 0.0  # the fetching call's own wall time on the box
    fetch_rss_mib: float = 0.0
    fetch_cpu_s: float = 0.0
    other_calls_s: float = 0.0  # the script's other runctl/s5cmd calls (probe, listing)
    calls: list[str] = field(default_factory=list)
    reported: str = ""  # the report line (bare runctl) or the wrapper's tool/files/bytes

    @property
    def outside_s(self) -> float:
        """Wall time outside the fetching call: connect, start-ups, the script, the report."""
        return self.seconds - self.fetch_s


def expected(case: str, data: Data) -> dict[str, int]:
    if case == "small":
        return dict.fromkeys(data.small_names, SMALL_SIZE)
    return {LARGE_NAME: LARGE_SIZE}


def json_document(text: str) -> dict[str, object] | None:
    """The one JSON document `runctl -o json` printed (stderr shares the log)."""
    start = text.find("{")
    if start < 0:
        return None
    with contextlib.suppress(ValueError):
        doc, _ = json.JSONDecoder().raw_decode(text[start:])
        return doc if isinstance(doc, dict) else None
    return None


def check_calls(m: LoadMeasurement, calls: list[Call]) -> str:
    m.calls = [f"{c.seconds:.2f}s {c.rss_mib:.0f}MiB {c.argv}" for c in calls]
    fetching = [c for c in calls if c.fetches]
    if len(fetching) != 1 or Path(fetching[0].argv.split()[0]).name != FETCHER[m.tool]:
        return f"expected one fetching {FETCHER[m.tool]} call on the box, saw {m.calls}"
    [fetch] = fetching
    m.fetch_s, m.fetch_rss_mib, m.fetch_cpu_s = fetch.seconds, fetch.rss_mib, fetch.cpu_s
    m.other_calls_s = sum(c.seconds for c in calls if c is not fetch)
    return ""


def check_output(m: LoadMeasurement, case: str, data: Data, log: Path) -> str:
    """'' if what the command printed matches the case, else what is wrong."""
    want = expected(case, data)
    text = log.read_text(errors="replace")
    if m.tool in ("s5cmd", "s5cmd-sync"):
        return ""
    if m.tool == "runctl":
        line = next((ln for ln in text.splitlines() if ln.startswith(TAG + " ")), "")
        report = find_report(line)
        if report is None:
            return "no report line from runctl data load"
        m.reported = line
        if (report.files, report.bytes, report.tool) != (len(want), sum(want.values()), "runctl"):
            return f"unexpected report: {line}"
        return ""
    doc = json_document(text)
    if doc is None:
        return "no JSON document from runctl -o json"
    got = (doc.get("ok"), doc.get("tool"), doc.get("via"), doc.get("files"), doc.get("bytes"))
    m.reported = f"tool={got[1]} via={got[2]} files={got[3]} bytes={got[4]}"
    if got != (True, FETCHER[m.tool], "ssh", len(want), sum(want.values())):
        return f"unexpected document: {m.reported} ok={got[0]}"
    return ""


def check_dest(case: str, data: Data, dest: Path) -> str:
    """DEST holds exactly the expected names and sizes, and the content matches: every
    SAMPLE_EVERY-th file of the small case, the whole file of the large one."""
    want = expected(case, data)
    problem = diff_listing(local_listing(dest), want)
    if problem:
        return problem
    source = data.small_dir if case == "small" else data.large_file.parent
    sample = sorted(want)[::SAMPLE_EVERY] if case == "small" else list(want)
    for name in sample:
        if not filecmp.cmp(source / name, dest / name, shallow=False):
            return f"content differs: {name}"
    return ""


def measure(case: str, tool: str, run: int, bench: Bench, label: str = "") -> LoadMeasurement:
    tag = f"r{run}-{case}-{tool}{label}"
    dest = bench.box.dest(tag)
    m = LoadMeasurement(case, tool, run, command(tool, case, bench, dest))
    if case == "large" and bench.prefault:
        prefault(bench.prefault_mib)
    log = bench.env.work / "logs" / f"{tag}.log"
    take_calls(bench.box)  # nothing should be there; start clean anyway
    run_timed(m, bench.env, log)
    calls = take_calls(bench.box)
    if m.exit_code != 0:
        m.error = f"exit code {m.exit_code}"
    else:
        m.error = (
            check_calls(m, calls)
            or check_output(m, case, bench.data, log)
            or check_dest(case, bench.data, dest)
        )
    m.ok = not m.error
    if not m.ok:
        print(f"  FAILED {tag}: {m.error}\n  $ {shlex.join(m.argv)}", file=sys.stderr)
        tail = log_tail(log)
        if tail:
            print("  | " + tail.replace("\n", "\n  | "), file=sys.stderr)
    shutil.rmtree(dest, ignore_errors=True)
    return m


# -- the link -----------------------------------------------------------------------------


@dataclass
class LinkCheck:
    """s5cmd's small case over ssh through the proxy at the link's bandwidth and 0 delay,
    against straight to sshd: the proxy itself must not be what limits."""

    proxied_s: float
    direct_s: float
    proxied_outside_s: float  # the same, less the fetch on the box: ssh and its output
    direct_outside_s: float
    proxy_cpu_s: float
    runs: int

    def line(self) -> str:
        return (
            f"link check, bare s5cmd small over ssh (median of {self.runs}): through the proxy at 0 ms "
            f"{self.proxied_s:.3f} s, straight to sshd {self.direct_s:.3f} s; outside the fetch "
            f"{self.proxied_outside_s:.3f} s vs {self.direct_outside_s:.3f} s; "
            f"proxy CPU {self.proxy_cpu_s:.2f} s"
        )


def link_check(bench: Bench, mbit: float, runs: int) -> LinkCheck:
    proxied: list[LoadMeasurement] = []
    direct: list[LoadMeasurement] = []
    cpu: list[float] = []
    with linkshaper.shaped(bench.box.server.port, mbit, 0.0) as port:
        through = dataclasses.replace(bench, config=link_config(bench.box.server, port))
        for run in range(runs):
            for name in rotated(["proxied", "direct"], run):
                if name == "proxied":
                    before = time.process_time()  # the proxy is a thread of this process
                    proxied.append(measure("small", "s5cmd", run, through, "-check-proxied"))
                    cpu.append(time.process_time() - before)
                else:
                    direct.append(measure("small", "s5cmd", run, bench, "-check-direct"))
    if not all(m.ok for m in proxied + direct):
        sys.exit("the link check failed (see above)")
    return LinkCheck(
        statistics.median(m.seconds for m in proxied),
        statistics.median(m.seconds for m in direct),
        statistics.median(m.outside_s for m in proxied),
        statistics.median(m.outside_s for m in direct),
        statistics.median(cpu),
        runs,
    )


# -- the report ---------------------------------------------------------------------------


@dataclass
class Summary:
    case: str
    median_s: dict[str, float] = field(default_factory=dict)  # end to end, from this side
    fetch_s: dict[str, float] = field(default_factory=dict)  # the fetching call on the box
    outside_s: dict[str, float] = field(default_factory=dict)  # end to end less the fetch
    box_rss_mib: dict[str, float] = field(default_factory=dict)  # the fetching call's peak RSS
    box_cpu_s: dict[str, float] = field(default_factory=dict)
    here_rss_mib: dict[str, float] = field(default_factory=dict)  # the wrapper (runctl on this side)
    here_cpu_s: dict[str, float] = field(default_factory=dict)
    server_cpu_s: dict[str, float] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    ratio_box: dict[str, float] = field(default_factory=dict)  # runctl / s5cmd[-sync], fetch on the box
    ratio_e2e: dict[str, float] = field(default_factory=dict)  # the same, end to end
    overhead_s: dict[str, float] = field(default_factory=dict)  # wrapper - its bare call, paired by run
    overhead_outside_s: dict[str, float] = field(default_factory=dict)  # the same, both less their fetch


def paired(
    results: Sequence[LoadMeasurement], case: str, a: str, b: str, value: Callable[[LoadMeasurement], float]
) -> float | None:
    """Median over runs of value(a) - value(b), both from the same run (seconds apart)."""
    by_run: dict[int, dict[str, LoadMeasurement]] = {}
    for m in results:
        if m.case == case and m.ok and m.tool in (a, b):
            by_run.setdefault(m.run, {})[m.tool] = m
    diffs = [value(r[a]) - value(r[b]) for r in by_run.values() if a in r and b in r]
    return statistics.median(diffs) if diffs else None


def summarize(
    results: Sequence[LoadMeasurement], cases: Sequence[str], tools: Sequence[str]
) -> list[Summary]:
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
            s.fetch_s[tool] = statistics.median(m.fetch_s for m in good)
            s.outside_s[tool] = statistics.median(m.outside_s for m in good)
            s.box_rss_mib[tool] = max(m.fetch_rss_mib for m in good)
            s.box_cpu_s[tool] = statistics.median(m.fetch_cpu_s for m in good)
            s.server_cpu_s[tool] = statistics.median(m.server_cpu_s for m in good)
            if tool not in BARE:
                s.here_rss_mib[tool] = max(m.max_rss_mib for m in good)
                s.here_cpu_s[tool] = statistics.median(m.user_s + m.sys_s for m in good)
        for peer in ("s5cmd", "s5cmd-sync"):
            if "runctl" in s.median_s and peer in s.median_s:
                s.ratio_box[peer] = s.fetch_s["runctl"] / s.fetch_s[peer]
                s.ratio_e2e[peer] = s.median_s["runctl"] / s.median_s[peer]
        for wrapper, bare in OVERHEADS.items():
            whole = paired(results, case, wrapper, bare, lambda m: m.seconds)
            outside = paired(results, case, wrapper, bare, lambda m: m.outside_s)
            if whole is not None and outside is not None:
                s.overhead_s[wrapper], s.overhead_outside_s[wrapper] = whole, outside
        summaries.append(s)
    return summaries


def render(summaries: Sequence[Summary], tools: Sequence[str], runs: int) -> str:
    def cell(d: dict[str, float], key: str, fmt: str, fails: dict[str, int] | None = None) -> str:
        if key not in d:
            return "FAIL" if fails and fails.get(key) else "-"
        return format(d[key], fmt) + (f" !{fails[key]}" if fails and fails.get(key) else "")

    wall = [["case (median s)", *tools, *(f"{t} fetch" for t in tools)]]
    derived = [
        [
            "case",
            "runctl/s5cmd fetch",
            "e2e",
            "runctl/s5cmd-sync fetch",
            "e2e",
            "load - runctl s",
            "outside fetch",
            "load-s5cmd - s5cmd-sync s",
            "outside fetch",
        ]
    ]
    usage = [
        [
            "case (peak RSS MiB, cpu s)",
            *(f"{t} on box" for t in tools),
            *(f"{t} here" for t in tools if t not in BARE),
        ]
    ]
    for s in summaries:
        wall.append(
            [
                s.case,
                *(cell(s.median_s, t, ".3f", s.failures) for t in tools),
                *(cell(s.fetch_s, t, ".2f") for t in tools),
            ]
        )
        derived.append(
            [
                s.case,
                cell(s.ratio_box, "s5cmd", ".2f"),
                cell(s.ratio_e2e, "s5cmd", ".2f"),
                cell(s.ratio_box, "s5cmd-sync", ".2f"),
                cell(s.ratio_e2e, "s5cmd-sync", ".2f"),
                cell(s.overhead_s, "load", "+.3f"),
                cell(s.overhead_outside_s, "load", "+.3f"),
                cell(s.overhead_s, "load-s5cmd", "+.3f"),
                cell(s.overhead_outside_s, "load-s5cmd", "+.3f"),
            ]
        )
        usage.append(
            [
                s.case,
                *(
                    f"{s.box_rss_mib[t]:.0f}, {s.box_cpu_s[t]:.2f}" if t in s.box_rss_mib else "-"
                    for t in tools
                ),
                *(
                    f"{s.here_rss_mib[t]:.0f}, {s.here_cpu_s[t]:.2f}" if t in s.here_rss_mib else "-"
                    for t in tools
                    if t not in BARE
                ),
            ]
        )
    notes = "\n".join(
        [
            f"s = median wall seconds of {runs} run(s) from this side, ssh or runctl start-up included;",
            "fetch = the fetching call's own wall time on the box (GNU time, 10 ms steps).",
            "Ratios < 1: runctl is faster. load - X: the wrapper's overhead over the bare call its script",
            "makes, median of same-run differences; outside fetch: the same with each run's fetch time",
            "taken out (connect, start-ups, the script, the report: no fetch noise).",
            "on box: the fetching call; here: the runctl process on this side.",
        ]
    )
    return "\n\n".join([format_table(wall), format_table(derived), format_table(usage)]) + "\n" + notes


def verdicts(summaries: Sequence[Summary]) -> list[str]:
    """The issue's targets: runctl's fetch on the box <= 1.0x s5cmd's; wrapper <= 0.3 s."""
    lines = []
    for s in summaries:
        for peer, ratio in s.ratio_box.items():
            ok = "met" if ratio <= RATIO_TARGET else "MISSED"
            lines.append(
                f"target {s.case}: runctl/{peer} fetch on the box {ratio:.2f} <= {RATIO_TARGET:.1f}: {ok}"
            )
        for wrapper, over in s.overhead_s.items():
            ok = "met" if over <= OVERHEAD_TARGET else "MISSED"
            lines.append(
                f"target {s.case}: {wrapper} - {OVERHEADS[wrapper]} {over:+.3f} s <= {OVERHEAD_TARGET} s: "
                f"{ok} (outside the fetch {s.overhead_outside_s[wrapper]:+.3f} s)"
            )
    return lines


# -- main ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3, help="runs per case and tool (default 3)")
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {','.join(CASES)}")
    p.add_argument("--tools", default=",".join(TOOLS), help=f"comma-separated subset of {','.join(TOOLS)}")
    p.add_argument("--ssh-client", choices=["asyncssh", "openssh"], default="asyncssh", help="for runctl")
    p.add_argument(
        "--link",
        metavar="MBIT,MS",
        help="put tests/linkshaper.py between this side and sshd (bandwidth in Mbit/s, one-way delay in "
        "ms, e.g. 100,15: a 30 ms round trip); the box still reaches S3 directly",
    )
    p.add_argument(
        "--prefault",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="write and free memory in /dev/shm before each large run (default on)",
    )
    p.add_argument("--prefault-mib", type=int, default=1536)
    p.add_argument(
        "--workdir",
        type=Path,
        default=Path("/dev/shm") if Path("/dev/shm").is_dir() else None,
        help="parent of the scratch directory (data, SeaweedFS, every DEST); default /dev/shm: on ext4 on "
        "these VMs creating 2,000 files swings by seconds from run to run for every tool alike",
    )
    p.add_argument("--keep", action="store_true", help="keep the scratch directory (data, logs)")
    p.add_argument("--label", default="", help="free text stored in the JSON results")
    args = p.parse_args(argv)
    args.case_list = [c.strip() for c in args.cases.split(",") if c.strip()]
    args.tool_list = [t.strip() for t in args.tools.split(",") if t.strip()]
    bad = [c for c in args.case_list if c not in CASES] + [t for t in args.tool_list if t not in TOOLS]
    if bad or args.runs < 1:
        p.error(f"unknown case/tool {bad}" if bad else "--runs must be at least 1")
    args.link_values = None
    if args.link:
        try:
            mbit, delay_ms = (float(v) for v in args.link.split(","))
        except ValueError:
            p.error(f"--link takes MBIT,MS, e.g. 100,15, not {args.link!r}")
        args.link_values = (mbit, delay_ms)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    compile_runctl()
    if shutil.which("taskset") is None or not GNU_TIME.exists():
        sys.exit("taskset (util-linux) and GNU time (/usr/bin/time) are required")
    work = Path(tempfile.mkdtemp(prefix="runctl-data-bench-", dir=args.workdir))
    (work / "logs").mkdir()
    print(f"scratch: {work}", file=sys.stderr)
    results: list[LoadMeasurement] = []
    check: LinkCheck | None = None
    started, load_before = datetime.now(), os.getloadavg()
    versions: dict[str, str] = {}
    stack = contextlib.ExitStack()
    try:
        data = make_data(work / "data")
        with local_server(work) as server:
            runctl = real_binary("runctl")
            env = Env(
                server=server,
                work=work,
                runctl=(runctl,) if runctl else (sys.executable, "-m", "runctl"),
                s5cmd=s5cmd_binary(),
                aws=real_binary("aws") or "aws",
                runctl_args=(),
                environ=clean_environ(server, work),  # with the server's keys: for seeding only
            )
            seed(env, data, [SEED_CASE[c] for c in args.case_list])
            # This side is the laptop: it reaches the box, not S3 (the box has its own role).
            laptop = {k: v for k, v in env.environ.items() if k not in server.env()}
            env = dataclasses.replace(env, environ=laptop)
            box = stack.enter_context(start_box(work, server.env()))
            versions = {
                "runctl": runctl_version,
                "s5cmd": tool_version([env.s5cmd, "version"], laptop),
                "ssh": tool_version(["ssh", "-V"], laptop),
            }
            concurrency = script_concurrency(env)
            bench = Bench(
                env,
                data,
                box,
                box.server.config,
                args.ssh_client,
                concurrency,
                args.prefault,
                args.prefault_mib,
            )
            print(
                f"weed {server.endpoint} (cpu {SERVER_CPU}); sshd port {box.server.port} (cpu {CLIENT_CPU}, "
                f"as every client); the script's concurrency: {concurrency or 'none'}; {versions}",
                file=sys.stderr,
            )
            if args.link_values:
                mbit, delay_ms = args.link_values
                check = link_check(bench, mbit, args.runs)
                print(check.line())
                port = stack.enter_context(linkshaper.shaped(box.server.port, mbit, delay_ms))
                bench = dataclasses.replace(bench, config=link_config(box.server, port))
                print(f"link: {mbit:g} Mbit/s, {2 * delay_ms:g} ms round trip (proxy port {port})")
            for run in range(args.runs):
                for case in args.case_list:
                    for tool in rotated(args.tool_list, run):
                        m = measure(case, tool, run, bench)
                        results.append(m)
                        print(
                            f"run {run + 1}/{args.runs} {case:<5} {tool:<10} {m.seconds:7.3f}s "
                            f"(fetch {m.fetch_s:5.2f}s, other calls {m.other_calls_s:4.2f}s) "
                            f"{'ok' if m.ok else 'FAIL'}; load {os.getloadavg()[0]:.2f}",
                            file=sys.stderr,
                        )
    finally:
        stack.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    load_after = os.getloadavg()
    summaries = summarize(results, args.case_list, args.tool_list)
    print(render(summaries, args.tool_list, args.runs))
    for line in verdicts(summaries):
        print(line)
    print(
        f"load average before {' '.join(f'{x:.2f}' for x in load_before)}, after "
        f"{' '.join(f'{x:.2f}' for x in load_after)} ({os.cpu_count()} cpus)"
        + ("; NOISY: other work was running when the bench started" if load_before[0] > 0.5 else "")
    )
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"data_bench-{started:%Y%m%d-%H%M%S}.json"
    document = {
        "started": started.isoformat(timespec="seconds"),
        "label": args.label,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "versions": versions,
        "host": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_before": load_before,
            "load_after": load_after,
        },
        "link_check": asdict(check) if check else None,
        "summary": [asdict(s) for s in summaries],
        "targets": verdicts(summaries),
        "measurements": [asdict(m) for m in results],
    }
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"results: {out}", file=sys.stderr)
    return 1 if any(not m.ok for m in results) else 0


if __name__ == "__main__":
    sys.exit(main())
