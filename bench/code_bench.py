"""Benchmark `runctl code push` against rsync and a plain tar pipe over the same private sshd.

    python bench/code_bench.py [--reps 3] [--files 3000] [--tree code|text] [--link MBIT,MS]
                               [--rsync-args=-z] [--ssh-client asyncssh|openssh] [--control-master]

Tree `code` (default): N small .py files (default 3,000) + 5 x 20 MB random files. Tree `text`: N
generated Python modules (default 1,500, 2-20 KB of varied, compressible text, deterministic from
--seed) + 3 x 2 MB random files + one 5 MB .png-like random file. Both have .git/ and __pycache__/
directories that runctl excludes by default (rsync gets equivalent --exclude flags, tar --exclude).
Cases: first push, no-change push, 10 files changed, 10 files + one big file changed (a 20 MB file
in `code`, a 2 MB one in `text`). Wall time of whole commands (start-up included), median of
--reps, ratio to rsync. sshd is pinned to core 1 and the clients to core 0, so they do not fight
for a core.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import linkshaper, sshd  # the same private sshd the tests use

from installed import compile_runctl  # bench/ is sys.path[0] when run as a script

EXCLUDES = [".git/", "__pycache__/", "*.pyc"]
PIN_CLIENT = ["taskset", "-c", "0"] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []
MB = 1024 * 1024
SUN_PATH_MAX = 107  # a unix socket path's bytes, NUL excluded; ssh binds "<ControlPath>.<16 chars>" first


@dataclass
class Tree:
    small: list[Path]  # the files the change cases edit
    big: Path  # the binary the last case rewrites
    summary: str = ""  # one line about the tree, printed for --tree text


def add_noise(root: Path, small: list[Path]) -> None:
    """__pycache__/ and .git/ content that every tool is told to skip."""
    for i, path in enumerate(small):
        if i % 100 == 0:
            (path.parent / "__pycache__").mkdir(exist_ok=True)
            (path.parent / "__pycache__" / f"{path.stem}.cpython-311.pyc").write_bytes(os.urandom(4096))
    (root / ".git" / "objects").mkdir(parents=True)
    for i in range(200):
        (root / ".git" / "objects" / f"obj{i}").write_bytes(os.urandom(8192))


def make_code_tree(root: Path, n_files: int) -> Tree:
    small: list[Path] = []
    for i in range(n_files):
        folder = root / f"pkg{i // 100:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"mod{i:04d}.py"
        path.write_text(f"# module {i}\n" + "x = 1  # padding to about 10 KB\n" * 320)
        small.append(path)
    (root / "data").mkdir()
    for i in range(5):
        (root / "data" / f"blob{i}.bin").write_bytes(os.urandom(20 * MB))
    add_noise(root, small)
    return Tree(small, root / "data" / "blob0.bin")


VOCABULARY = """
account action adapter address agent alias allocate apply archive array attempt batch bind block
bucket buffer build bundle cache call cancel channel check checkpoint chunk client clone close
column commit compare config connect context convert copy count cursor data debug decode default
delete depth digest dispatch document download driver dump encode engine entry error event expand
export factor feature fetch field file filter flag flush format frame gather graph group handle hash
header history hook index input item job join key label layer limit line link list load lock log
loop manifest map mark match merge message meta metric mode model module monitor name node
normalize offset option order output owner packet page parse part path pattern peer plan pool port
prefix probe process profile queue range rate reader record reduce region registry remote render
report request reset resolve resource result retry route rule run sample scale schema scope score
search segment select send series server session setting shape shard size slot snapshot source span
split stage state status step store stream task tensor token total trace track train transform tree
type update upload user value version view watch weight window worker writer
"""
WORDS = tuple(VOCABULARY.split())
TYPES = ("int", "str", "float", "bool", "bytes", "Path", "list[str]", "dict[str, Any]", "Sequence[int]")
TYPES += ("str | None", "Iterator[Path]", "tuple[int, int]", "None")
STDLIB = ("os", "re", "json", "time", "itertools", "functools", "collections", "dataclasses", "pathlib")
STDLIB += ("hashlib", "shutil", "subprocess", "asyncio", "contextlib", "threading", "math", "struct")
COMPARE = ("==", "!=", "<", ">=", "is", "is not", "in", "not in")


class PySource:
    """Deterministic Python-looking modules: what a repository's sources look like to a
    compressor (keywords, indentation, docstrings, identifiers that repeat within a file)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def ident(self, lo: int = 1, hi: int = 3) -> str:
        return "_".join(self.rng.choice(WORDS) for _ in range(self.rng.randint(lo, hi)))

    def camel(self) -> str:
        return "".join(w.capitalize() for w in self.ident(2, 3).split("_"))

    def sentence(self, lo: int = 5, hi: int = 14) -> str:
        return " ".join(self.rng.choice(WORDS) for _ in range(self.rng.randint(lo, hi))).capitalize() + "."

    def literal(self) -> str:
        rng = self.rng
        kind = rng.randrange(6)
        if kind == 0:
            return str(rng.choice((0, 1, 2, 8, 10, 16, 64, 100, 256, 1024, 4096, rng.randrange(100000))))
        if kind == 1:
            return f"{rng.random() * 10:.{rng.randint(1, 4)}f}"
        if kind == 2:
            return repr(self.ident(1, 3).replace("_", rng.choice("-_. /")))
        if kind == 3:
            return "(" + ", ".join(repr(self.ident(1, 2)) for _ in range(rng.randint(2, 4))) + ")"
        return rng.choice(("None", "True", "False", "[]", "{}", '""'))

    def expr(self, names: list[str], funcs: list[str]) -> str:
        rng, a = self.rng, self.rng.choice(names)
        r = rng.random()
        if r < 0.3:
            args = rng.sample(names, k=min(len(names), rng.randint(1, 3)))
            return f"{rng.choice(funcs)}({', '.join(args)})"
        if r < 0.45:
            return f"{a} {rng.choice('+-*')} {rng.choice(names)}"
        if r < 0.6:
            v = rng.choice(WORDS)
            return f"[{v}.{self.ident(1, 1)} for {v} in {a} if {v} {rng.choice(COMPARE)} {self.literal()}]"
        if r < 0.72:
            return f'f"{{{a}}}/{self.ident(1, 2)}"'
        if r < 0.85:
            return f"{a}.get({self.literal()}, {self.literal()})"
        return self.literal()

    def body(self, indent: str, names: list[str], funcs: list[str], depth: int = 0) -> list[str]:
        rng, lines, names = self.rng, [], list(names)
        for _ in range(rng.randint(2, 6) if depth == 0 else rng.randint(1, 3)):
            r, var, inner = rng.random(), self.ident(1, 2), indent + "    "
            if r < 0.35:
                lines.append(f"{indent}{var} = {self.expr(names, funcs)}")
                names.append(var)
            elif r < 0.45:
                lines.append(f"{indent}# {self.sentence(4, 12)}")
            elif r < 0.55:
                lines.append(
                    f'{indent}logger.debug("{self.sentence(3, 8)[:-1].lower()}: %s", {rng.choice(names)})'
                )
            elif r < 0.7 and depth < 2:
                lines.append(f"{indent}if {rng.choice(names)} {rng.choice(COMPARE)} {self.literal()}:")
                lines += self.body(inner, names, funcs, depth + 1)
                if rng.random() < 0.4:
                    lines += [f"{indent}else:", *self.body(inner, names, funcs, depth + 1)]
            elif r < 0.85 and depth < 2:
                lines.append(f"{indent}for {var} in {rng.choice(names)}:")
                lines += self.body(inner, [*names, var], funcs, depth + 1)
            elif r < 0.92 and depth < 2:
                error = rng.choice(("KeyError", "ValueError", "OSError", "TimeoutError", "RuntimeError"))
                lines += [f"{indent}try:", *self.body(inner, names, funcs, depth + 1)]
                lines += [f"{indent}except {error} as exc:"]
                lines += [f'{inner}raise {self.camel()}Error(f"{self.sentence(3, 7)[:-1].lower()}: {{exc}}")']
            else:
                lines.append(
                    f"{indent}{rng.choice(funcs)}({', '.join(rng.sample(names, k=min(2, len(names))))})"
                )
        if depth == 0:
            lines.append(f"{indent}return {self.expr(names, funcs)}")
        return lines

    def docstring(self, indent: str, params: list[str]) -> list[str]:
        lines = [f'{indent}"""{self.sentence()}']
        if self.rng.random() < 0.5:
            text = " ".join(self.sentence() for _ in range(self.rng.randint(1, 3)))
            lines += ["", *textwrap.wrap(text, 96, initial_indent=indent, subsequent_indent=indent)]
        if params and self.rng.random() < 0.6:
            lines += ["", f"{indent}Args:", *(f"{indent}    {p}: {self.sentence(3, 9)}" for p in params)]
        if len(lines) == 1:
            return [lines[0] + '"""']
        return [*lines, f'{indent}"""']

    def function(self, indent: str, funcs: list[str], method: bool) -> list[str]:
        rng = self.rng
        name = rng.choice(funcs) if rng.random() < 0.4 else self.ident(1, 3)
        params = list(dict.fromkeys(self.ident(1, 2) for _ in range(rng.randint(0, 4))))
        sig = [
            f"{p}: {rng.choice(TYPES)}" + (f" = {self.literal()}" if rng.random() < 0.3 else "")
            for p in params
        ]
        head = ", ".join((["self"] if method else []) + sig)
        private = "_" if method and rng.random() < 0.3 else ""
        lines = [f"{indent}def {private}{name}({head}) -> {rng.choice(TYPES)}:"]
        inner = indent + "    "
        if rng.random() < 0.8:
            lines += self.docstring(inner, params)
        names = params + ([f"self.{self.ident(1, 2)}" for _ in range(2)] if method else [])
        return lines + self.body(inner, names or [self.ident(1, 2)], funcs)

    def klass(self, funcs: list[str]) -> list[str]:
        rng = self.rng
        base = rng.choice(("", "", "(Exception)", "(Protocol)", f"({self.camel()})"))
        lines = [f"class {self.camel()}{base}:", *self.docstring("    ", [])]
        attrs = list(dict.fromkeys(self.ident(1, 2) for _ in range(rng.randint(1, 4))))
        sig = ", ".join(f"{a}: {rng.choice(TYPES)}" for a in attrs)
        lines += ["", f"    def __init__(self, {sig}) -> None:", *(f"        self.{a} = {a}" for a in attrs)]
        for _ in range(rng.randint(1, 4)):
            lines += ["", *self.function("    ", funcs, method=True)]
        return lines

    def module(self, target: int, siblings: list[str]) -> str:
        rng = self.rng
        text = " ".join(self.sentence() for _ in range(rng.randint(1, 4)))
        lines = ['"""' + self.sentence(), "", *textwrap.wrap(text, 96), '"""', ""]
        lines += ["from __future__ import annotations", "", "import logging"]
        lines += [f"import {m}" for m in sorted(rng.sample(STDLIB, rng.randint(1, 5)))]
        lines += ["from pathlib import Path", "from typing import Any", ""]
        funcs = [self.ident(2, 3) for _ in range(rng.randint(3, 8))]  # the names this module calls
        for sib in rng.sample(siblings, k=min(len(siblings), rng.randint(0, 3))):
            lines.append(f"from .{sib} import {', '.join(rng.sample(funcs, k=rng.randint(1, 2)))}")
        lines += ["", "logger = logging.getLogger(__name__)", ""]
        lines += [f"{self.ident(1, 3).upper()} = {self.literal()}" for _ in range(rng.randint(1, 5))]
        size = sum(map(len, lines)) + len(lines)
        while size < target:
            block = self.klass(funcs) if rng.random() < 0.35 else self.function("", funcs, method=False)
            lines += ["", "", *block]
            size += sum(map(len, block)) + len(block) + 2
        return "\n".join(lines) + "\n"


def make_text_tree(root: Path, n_files: int, seed: int) -> Tree:
    """A source tree as a user has it: generated Python modules in nested packages
    (log-uniform 2-20 KB each), a few random binaries, .git/ and __pycache__/."""
    rng = random.Random(seed)
    gen = PySource(rng)
    project = root / "src" / gen.ident(1, 1)
    folders: dict[Path, list[str]] = {}  # package -> its modules so far
    while len(folders) < max(1, n_files // 25):  # about 25 modules a package, two levels deep
        top = project / gen.ident(1, 1)
        for folder in [top, *(top / gen.ident(1, 1) for _ in range(rng.randint(0, 4)))]:
            folders.setdefault(folder, [])
    packages = list(folders)
    small: list[Path] = []
    for i in range(n_files):
        folder = packages[i] if i < len(packages) else rng.choice(packages)
        siblings = list(folders[folder])
        name = "__init__" if i < len(packages) else gen.ident(1, 2)
        while name in siblings:
            name = gen.ident(1, 3)
        if name != "__init__":
            folders[folder].append(name)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.py"
        path.write_text(gen.module(int(2048 * 10 ** rng.random()), siblings))
        small.append(path)
    rng.shuffle(small)  # the change cases touch files all over the tree
    assets = root / "assets"
    assets.mkdir()
    for i in range(3):
        (assets / f"blob{i}.bin").write_bytes(rng.randbytes(2 * MB))
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + rng.randbytes(5 * MB - 16)  # random after the header
    (assets / "screenshot.png").write_bytes(png)
    add_noise(root, sorted(small))
    text = b"".join(p.read_bytes() for p in small)
    summary = (
        f"tree: text (seed {seed}), {len(small):,} .py files, {len(text) / MB:.1f} MB "
        f"({len(text) / len(zlib.compress(text, 1)):.1f}x with gzip -1) + 3 x 2 MB + 1 x 5 MB .png random"
    )
    return Tree(small, assets / "blob0.bin", summary)


def timed(cmd: list[str] | str) -> float:
    # Flush the previous command's dirty pages first: on these VMs writeback of ~130 MB
    # would otherwise land inside the next tool's timing.
    os.sync()
    started = time.perf_counter()
    subprocess.run(cmd, shell=isinstance(cmd, str), check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def rsync_label(extra: list[str]) -> str:
    """`rsync -a` plus the extra flags, short ones merged the way users type them: `rsync -az`."""
    letters = "".join(a[1:] for a in extra if re.fullmatch(r"-[A-Za-z]+", a))
    return shlex.join(["rsync", f"-a{letters}", *(a for a in extra if not re.fullmatch(r"-[A-Za-z]+", a))])


def tools(
    server: sshd.SSHServer,
    config: Path,
    src: Path,
    remote: Path,
    runctl_args: list[str],
    rsync_args: list[str],
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
        *rsync_args,
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
    parser.add_argument("--files", type=int, help="small files (default 3000) or .py modules (default 1500)")
    parser.add_argument("--tree", choices=["code", "text"], default="code")
    parser.add_argument("--seed", type=int, default=0, help="seed of the text tree (default 0)")
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
    parser.add_argument(
        "--rsync-args",
        default="",
        help="extra rsync flags after -a: --rsync-args=-z (a value starting with - needs =)",
    )
    parser.add_argument("--ssh-client", choices=["asyncssh", "openssh"], default="asyncssh")
    parser.add_argument(
        "--control-master",
        action="store_true",
        help="open one OpenSSH ControlMaster before timing and have every ssh reuse it "
        "(rsync, tar|ssh, and runctl with --ssh-client openssh)",
    )
    args = parser.parse_args()
    runctl_args, rsync_args = shlex.split(args.runctl_args), shlex.split(args.rsync_args)
    if any(a.split("=")[0] == "--ssh-client" for a in runctl_args):
        parser.error("pass --ssh-client to the benchmark, not in --runctl-args (the report names it)")
    runctl_args = ["--ssh-client", args.ssh_client, *runctl_args]
    n_files = args.files or (3000 if args.tree == "code" else 1500)
    compile_runctl()
    work = Path(tempfile.mkdtemp(prefix="runctl-code-bench-", dir=args.workdir))
    print(f"scratch directory: {work}")
    # At VERBOSE sshd logs one "Accepted publickey" line a login: counts the masterless ones.
    server = sshd.start(work / "sshd", log_level="VERBOSE" if args.control_master else "ERROR")
    if PIN_CLIENT:
        pin = ["taskset", "-a", "-p", "-c", "1", str(server.pid)]
        subprocess.run(pin, check=True, stdout=subprocess.DEVNULL)
    stack = contextlib.ExitStack()
    failed = False
    try:
        config = server.config
        mbit = 0.0
        if args.link:
            mbit, delay_ms = (float(v) for v in args.link.split(","))
            port = stack.enter_context(linkshaper.shaped(server.port, mbit, delay_ms))
            config = link_config(server, port)
            print(f"link: {mbit:g} Mbit/s, {2 * delay_ms:g} ms round trip (proxy port {port})")
        if args.control_master:
            config = control_master(config, work, stack)
        src, remote = work / "src", work / "remote"
        tree = (
            make_code_tree(src, n_files) if args.tree == "code" else make_text_tree(src, n_files, args.seed)
        )
        if tree.summary:
            print(tree.summary)
        if args.link:
            link_check(config, server.config, src, mbit)
        labels = {"runctl": "runctl", "rsync": rsync_label(rsync_args), "tar|ssh": "tar|ssh"}
        if args.ssh_client != "asyncssh":
            labels["runctl"] = f"runctl {args.ssh_client}"
        if runctl_args[2:] or args.ssh_client != "asyncssh":
            print(f"runctl flags: {shlex.join(runctl_args)}")
        if args.control_master and args.ssh_client == "asyncssh":
            print("(runctl with asyncssh opens its own connection: only rsync and tar|ssh use the master)")
        logins_before = logins(server)
        run = tools(server, config, src, remote, runctl_args, rsync_args)
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
            for path in tree.small[counter[0] * 10 : counter[0] * 10 + 10]:
                path.write_text(path.read_text() + f"# edit {counter[0]}\n")

        big_size = tree.big.stat().st_size

        def edit_small_and_big() -> None:
            edit_small()
            with open(tree.big, "r+b") as fh:
                fh.write(os.urandom(big_size))

        for rep in range(args.reps):
            record("10 files changed", rep, edit_small)
        for rep in range(args.reps):
            record(f"10 files + {big_size // MB} MB changed", rep, edit_small_and_big)

        w = {name: max(9, len(label)) for name, label in labels.items()}
        print(
            f"{'case':<26} {labels['runctl']:>{w['runctl']}} {labels['rsync']:>{w['rsync']}} "
            f"{labels['tar|ssh']:>{w['tar|ssh']}}   runctl/rsync  tar/rsync"
        )
        for case, by_tool in times.items():
            med = {name: statistics.median(v) for name, v in by_tool.items()}
            cells = " ".join(f"{med[name]:>{w[name] - 1}.3f}s" for name in labels)
            print(
                f"{case:<26} {cells}"
                f"   {med['runctl'] / med['rsync']:>11.2f}  {med['tar|ssh'] / med['rsync']:>9.2f}"
            )
        print("(tar|ssh always resends the whole tree: it has no incremental mode)")
        if args.control_master:
            fresh = logins(server) - logins_before
            expected = 0 if args.ssh_client == "openssh" else len(times) * args.reps
            print(
                f"sshd logins while timing: {fresh} (expected {expected}; every other ssh reused the master)"
            )
            failed = fresh != expected
    finally:
        stack.close()
        sshd.stop(server)
        shutil.rmtree(work, ignore_errors=True)
    if failed:
        sys.exit("some ssh did not reuse the ControlMaster: the timings above are not what they claim")


def link_config(server: sshd.SSHServer, port: int) -> Path:
    """The client ssh config and known_hosts, pointed at the shaping proxy's port."""
    known = server.dir / "known_hosts_link"
    known.write_text(f"[127.0.0.1]:{port} {server.host_pub_line}\n")
    text = server.config.read_text().replace(f"Port {server.port}", f"Port {port}")
    text = text.replace(str(server.known_hosts), str(known))
    config = server.dir / "ssh_config_link"
    config.write_text(text)
    return config


def logins(server: sshd.SSHServer) -> int:
    log = server.dir / "sshd.log"
    return log.read_text().count("Accepted publickey") if log.exists() else 0


def ssh(config: Path, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    cmd = ["ssh", "-F", str(config), *argv]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def control_master(base: Path, work: Path, stack: contextlib.ExitStack) -> Path:
    """Start one ControlMaster to the host and return a client config (base + ControlMaster
    auto/ControlPath/ControlPersist) with which every ssh reuses it. Stopped with the stack."""
    folder = work
    if len(f"{folder}/cm-") + 40 + 17 > SUN_PATH_MAX:  # %C is 40 hex digits
        folder = Path(tempfile.mkdtemp(prefix="cm-", dir="/tmp"))
        stack.callback(shutil.rmtree, folder, True)
    path = f"{folder}/cm-%C"
    config = base.with_name(base.name + "_cm")
    lines = ["  ControlMaster auto", f"  ControlPath {path}", "  ControlPersist 300", ""]
    config.write_text(base.read_text().rstrip("\n") + "\n" + "\n".join(lines))  # inside the Host block
    log = work / "control_master.log"
    options = ["-o", f"ControlPath={path}", "-o", "ControlPersist=300"]
    with open(log, "wb") as err:  # not a pipe: the master keeps its stderr open after -f
        started = subprocess.run(
            [*PIN_CLIENT, "ssh", "-F", str(base), "-M", "-N", "-f", *options, sshd.ALIAS],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            timeout=60,
        )
    if started.returncode != 0:
        raise SystemExit(f"ControlMaster did not start (ssh exit {started.returncode}): {log.read_text()}")
    check = ssh(config, "-O", "check", sshd.ALIAS)
    found = re.search(r"pid=(\d+)", check.stderr)
    if check.returncode != 0 or not found:
        raise SystemExit(f"ssh -O check failed (exit {check.returncode}): {check.stderr.strip()}")
    pid = int(found.group(1))

    def stop() -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            ssh(config, "-O", "exit", sshd.ALIAS, timeout=10)
        deadline = time.monotonic() + 5  # -O exit returns before the master has closed its connection
        with contextlib.suppress(ProcessLookupError):
            while time.monotonic() < deadline:
                os.kill(pid, 0)
                time.sleep(0.02)
            os.kill(pid, signal.SIGTERM)  # ours: started above

    stack.callback(stop)
    # A client with only the config must go through the master ("mux_client_request_session").
    probe = ssh(config, "-v", sshd.ALIAS, "true")
    if probe.returncode != 0 or "mux_client_request_session" not in probe.stderr:
        raise SystemExit(f"ssh with {config} did not reuse the ControlMaster:\n{probe.stderr.strip()}")
    print(f"ControlMaster: pid {pid}, ControlPath {path}; ssh -O check ok, a plain ssh reuses it")
    return config


def link_check(config: Path, direct: Path, src: Path, mbit: float) -> None:
    """One line showing the link, not the proxy's CPU, limits: the tree's tar stream (capped
    at ~4 s of link time) through the proxy to `wc -c`, against the configured rate, with the
    CPU this process (the proxy's thread) used meanwhile; then the same pipe straight to sshd."""
    cap = max(8 * MB, int(mbit * 1e6 / 8 * 4))
    excl = " ".join(f"--exclude={e.rstrip('/')}" for e in EXCLUDES)
    pin = " ".join(PIN_CLIENT)

    def send(cfg: Path) -> tuple[int, float, float, float]:
        setup = timed([*PIN_CLIENT, "ssh", "-F", str(cfg), sshd.ALIAS, "true"])
        cmd = f"{pin} tar cf - {excl} -C {src} . | head -c {cap} | {pin} ssh -F {cfg} {sshd.ALIAS} 'wc -c'"
        os.sync()
        cpu, started = time.process_time(), time.perf_counter()
        out = subprocess.run(cmd, shell=True, check=True, capture_output=True, text=True).stdout
        return int(out.split()[0]), time.perf_counter() - started, setup, time.process_time() - cpu

    size, wall, setup, cpu = send(config)
    rate = size * 8 / 1e6 / max(wall - setup, 1e-6)
    _, d_wall, d_setup, _ = send(direct)
    d_rate = size * 8 / 1e6 / max(d_wall - d_setup, 1e-6)
    print(
        f"link check: {size / MB:.1f} MB tar | ssh 'wc -c' in {wall:.2f} s = {size * 8e-6 / wall:.0f} Mbit/s"
        f" ({rate:.0f} less {setup:.2f} s for ssh true) of {mbit:g} configured; proxy CPU {cpu:.2f} s"
        f" ({100 * cpu / wall:.0f}% of a core); without the proxy {d_rate:.0f} Mbit/s"
    )


if __name__ == "__main__":
    main()
