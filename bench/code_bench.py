"""Benchmark `runctl code push` against rsync and a plain tar pipe over the same private sshd.

    python bench/code_bench.py [--reps 3] [--files 3000]

Tree: N small .py files + 5 x 20 MB files, plus .git/ and __pycache__/ directories
that runctl excludes by default (rsync gets equivalent --exclude flags, tar --exclude).
Cases: first push, no-change push, 10 files changed, 10 files + one 20 MB file changed.
Wall time of whole commands (start-up included), median of --reps, ratio to rsync.
sshd is pinned to core 1 and the clients to core 0, so they do not fight for a core.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import linkshaper, sshd  # the same private sshd the tests use

from installed import compile_runctl  # bench/ is sys.path[0] when run as a script

EXCLUDES = [".git/", "__pycache__/", "*.pyc"]
PIN_CLIENT = ["taskset", "-c", "0"] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []


def make_tree(root: Path, n_files: int) -> list[Path]:
    """Return the small files (the ones the change cases edit)."""
    small: list[Path] = []
    for i in range(n_files):
        folder = root / f"pkg{i // 100:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"mod{i:04d}.py"
        path.write_text(f"# module {i}\n" + "x = 1  # padding to about 10 KB\n" * 320)
        small.append(path)
        if i % 100 == 0:
            (folder / "__pycache__").mkdir(exist_ok=True)
            (folder / "__pycache__" / f"mod{i:04d}.cpython-311.pyc").write_bytes(os.urandom(4096))
    (root / "data").mkdir()
    for i in range(5):
        (root / "data" / f"blob{i}.bin").write_bytes(os.urandom(20 * 1024 * 1024))
    (root / ".git" / "objects").mkdir(parents=True)
    for i in range(200):
        (root / ".git" / "objects" / f"obj{i}").write_bytes(os.urandom(8192))
    return small


def timed(cmd: list[str] | str) -> float:
    # Flush the previous command's dirty pages first: on these VMs writeback of ~130 MB
    # would otherwise land inside the next tool's timing.
    os.sync()
    started = time.perf_counter()
    subprocess.run(cmd, shell=isinstance(cmd, str), check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def tools(
    server: sshd.SSHServer, config: Path, src: Path, remote: Path, runctl_args: list[str]
) -> dict[str, Callable[[], float]]:
    cfg = str(config)
    runctl = [
        *PIN_CLIENT,
        sys.executable,
        "-m",
        "runctl",
        "-q",
        "--no-progress",
        "code",
        "push",
        str(src),
        server.dest(remote / "runctl"),
        "-F",
        cfg,
        *runctl_args,
    ]
    rsync = [
        *PIN_CLIENT,
        "rsync",
        "-a",
        *[f"--exclude={e}" for e in EXCLUDES],
        "-e",
        f"ssh -F {cfg}",
        f"{src}/",
        server.dest(f"{remote}/rsync/"),
    ]
    excl = " ".join(f"--exclude={e.rstrip('/')}" for e in EXCLUDES)
    target = remote / "tar"
    pin = " ".join(PIN_CLIENT)
    tar = (
        f"{pin} tar cf - {excl} -C {src} . | {pin} ssh -F {cfg} {sshd.ALIAS} "
        f"'mkdir -p {target} && tar xf - -C {target}'"
    )
    return {
        "runctl": lambda: timed(runctl),
        "rsync": lambda: timed(rsync),
        "tar|ssh": lambda: timed(tar),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--files", type=int, default=3000)
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path("/dev/shm") if Path("/dev/shm").is_dir() else None,
        help="parent of the scratch directory (source tree and remote copies); default /dev/shm: "
        "on these VMs creating 3,000 files on ext4 costs 0.8-3 s, varying run to run for every tool",
    )
    parser.add_argument(
        "--link",
        metavar="MBIT,MS",
        help="put a shaped link between clients and sshd: bandwidth in Mbit/s and one-way delay "
        "in ms (e.g. 100,15 for 100 Mbit/s and a 30 ms round trip)",
    )
    parser.add_argument("--runctl-args", default="", help='extra runctl flags, e.g. "--compress always"')
    args = parser.parse_args()
    compile_runctl()
    work = Path(tempfile.mkdtemp(prefix="runctl-code-bench-", dir=args.workdir))
    print(f"scratch directory: {work}")
    server = sshd.start(work / "sshd", log_level="ERROR")
    if PIN_CLIENT:
        pin = ["taskset", "-a", "-p", "-c", "1", str(server.pid)]
        subprocess.run(pin, check=True, stdout=subprocess.DEVNULL)
    stack = contextlib.ExitStack()
    try:
        config = server.config
        if args.link:
            mbit, delay_ms = (float(v) for v in args.link.split(","))
            port = stack.enter_context(linkshaper.shaped(server.port, mbit, delay_ms))
            config = link_config(server, port)
            print(f"link: {mbit:g} Mbit/s, {2 * delay_ms:g} ms round trip (proxy port {port})")
        src, remote = work / "src", work / "remote"
        small = make_tree(src, args.files)
        run = tools(server, config, src, remote, shlex.split(args.runctl_args))
        times: dict[str, dict[str, list[float]]] = {}

        def record(case: str, rep: int, mutate: Callable[[], None] | None = None) -> None:
            if mutate:
                mutate()
            order = list(run)[rep % 3 :] + list(run)[: rep % 3]  # rotate who goes first
            for name in order:
                times.setdefault(case, {}).setdefault(name, []).append(run[name]())

        for rep in range(args.reps):
            shutil.rmtree(remote, ignore_errors=True)
            remote.mkdir()  # rsync creates only the last path component
            record("first push", rep)
        for rep in range(args.reps):
            record("no change", rep)
        counter = [0]

        def edit_small() -> None:
            counter[0] += 1
            for path in small[counter[0] * 10 : counter[0] * 10 + 10]:
                path.write_text(path.read_text() + f"# edit {counter[0]}\n")

        def edit_small_and_big() -> None:
            edit_small()
            with open(src / "data" / "blob0.bin", "r+b") as fh:
                fh.write(os.urandom(20 * 1024 * 1024))

        for rep in range(args.reps):
            record("10 files changed", rep, edit_small)
        for rep in range(args.reps):
            record("10 files + 20 MB changed", rep, edit_small_and_big)

        print(f"{'case':<26} {'runctl':>9} {'rsync':>9} {'tar|ssh':>9}   runctl/rsync  tar/rsync")
        for case, by_tool in times.items():
            med = {name: statistics.median(v) for name, v in by_tool.items()}
            print(
                f"{case:<26} {med['runctl']:>8.3f}s {med['rsync']:>8.3f}s {med['tar|ssh']:>8.3f}s"
                f"   {med['runctl'] / med['rsync']:>11.2f}  {med['tar|ssh'] / med['rsync']:>9.2f}"
            )
        print("(tar|ssh always resends the whole tree: it has no incremental mode)")
    finally:
        stack.close()
        sshd.stop(server)
        shutil.rmtree(work, ignore_errors=True)


def link_config(server: sshd.SSHServer, port: int) -> Path:
    """The client ssh config and known_hosts, pointed at the shaping proxy's port."""
    known = server.dir / "known_hosts_link"
    known.write_text(f"[127.0.0.1]:{port} {server.host_pub_line}\n")
    text = server.config.read_text().replace(f"Port {server.port}", f"Port {port}")
    text = text.replace(str(server.known_hosts), str(known))
    config = server.dir / "ssh_config_link"
    config.write_text(text)
    return config


if __name__ == "__main__":
    main()
