"""The part of a load script that needs python3: run on the instance, never imported by runctl.

The generated sh script pastes this file's text into a ``python3 -`` here-document when
the fetch tool is s5cmd or the AWS CLI and the load needs what those tools cannot do
alone: a ``--shard`` (the partition is computed on the instance from a fresh listing,
so shards stay stable while the dataset grows), or ``--exclude/--include`` rules their
wildcards cannot express faithfully. It lists the source with the tool, keeps the keys
that pass the rules and the shard, fetches exactly those, applies ``--delete`` and prints
the report line. Nothing but the standard library of any python3 >= 3.6 is used (old
instance images), hence the quoted annotations and the absence of newer syntax.

How each tool gets its key list, and why:
* s5cmd: one command file of ``cp --raw SRC DST`` lines for ``s5cmd run`` (s5cmd splits
  each line as sh would, so every path is sh-quoted; ``--raw`` keeps ``*`` and ``?`` in
  keys literal). Only new keys, keys whose size differs and keys newer than the local
  copy are listed, as ``s5cmd sync`` decides (its ``cp -n/-s/-u`` flags veto rather than
  combine, so the decision is made here).
* AWS CLI: ``aws s3 sync SRC DST --exclude '*' --include KEY...`` in chunks that fit the
  argument limit, each rooted at its keys' common directory so it lists only that part
  of the prefix (``aws s3 cp`` takes no key list, and one process per key costs ~0.4 s
  each). The CLI matches every listed key against every pattern, so a large sharded
  load is quicker with s5cmd or runctl.

Arguments: TOOL DEST SHARD_INDEX ENDPOINT REGION CONFIG_JSON (see dataload/script.py).
The exit statuses below are dataload/exit_codes.py's; a test keeps them equal.
"""

import calendar
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # names for the annotations only: nothing here runs on the instance
    from collections.abc import Callable
    from typing import Any, NoReturn

TAG = "runctl-load"
FAILED = 1
NO_OBJECTS = 44
NO_LISTING = "no object found"
"""What s5cmd says (and exits 1) for a prefix with no objects."""


def fail(status: int, message: str) -> "NoReturn":
    sys.stderr.write("runctl-load: error: " + message + "\n")
    sys.exit(status)


# -- the selection: rules (pathspec's regexes and precedence) and the shard ---------------
def passes(compiled: "list[tuple[bool, re.Pattern[str]]]", path: str, order: str) -> bool:
    """runctl.filters.filter_passes, restated with the standard library."""
    excluded, rank_so_far = False, 0
    for excludes, regex in compiled:
        match = regex.search(path)
        if match is None:
            continue
        rank = 1 if match.groupdict().get("ps_d") else 2
        if order == "file-match-wins":
            if rank >= rank_so_far:
                excluded, rank_so_far = excludes, rank
        elif (excludes and rank == 1) or rank >= rank_so_far:
            excluded, rank_so_far = excludes, rank
    return not excluded


def shard_of(path: str, total: int) -> int:
    """runctl.filters.shard_of (rclone's --hash-filter), restated with the standard library."""
    text = unicodedata.normalize("NFC", path)
    folded = "".join("i" if ch == "\u0130" else ch.lower() for ch in text)
    digest = hashlib.md5(folded.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "little") % total


def safe(rel: str) -> bool:
    """runctl.stores.local.safe_relpath: a key that would land outside DEST is refused."""
    if not rel or rel[0] == "/" or rel[-1] == "/" or "//" in rel or "\\" in rel or "\0" in rel:
        return False
    parts = rel.split("/")
    return "." not in parts and ".." not in parts


# -- running the tools ----------------------------------------------------------------------
def run(argv: "list[str]", env: "dict[str, str]") -> "tuple[int, bytes, bytes]":
    """Run a tool with its output captured (3.6 has no capture_output)."""
    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
    except OSError as exc:
        fail(FAILED, f"cannot run {argv[0]}: {exc}")
    out, err = proc.communicate()
    return proc.returncode, out, err


def run_loud(argv: "list[str]", env: "dict[str, str]") -> int:
    """Run a tool whose output is for people: onto stderr, so stdout keeps only the report."""
    try:
        return subprocess.call(argv, stdin=subprocess.DEVNULL, stdout=sys.stderr.fileno(), env=env)
    except OSError as exc:
        fail(FAILED, f"cannot run {argv[0]}: {exc}")


def s5cmd_base(endpoint: str) -> "list[str]":
    return ["s5cmd", "--endpoint-url", endpoint] if endpoint else ["s5cmd"]


def aws_base(endpoint: str, region: str) -> "list[str]":
    argv = ["aws"]
    if endpoint:
        argv += ["--endpoint-url", endpoint]
    if region:
        argv += ["--region", region]
    return argv


def utc_seconds(stamp: str) -> float:
    """``2024-01-31T12:00:00Z`` (s5cmd's last_modified) as seconds since the epoch."""
    try:
        return float(calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")))
    except ValueError:
        return 0.0


def list_s5cmd(cfg: "dict[str, Any]", endpoint: str, env: "dict[str, str]") -> "list[tuple[str, int, float]]":
    root = "s3://" + str(cfg["bucket"]) + "/" + str(cfg["prefix"])
    status, out, err = run([*s5cmd_base(endpoint), "--json", "ls", root + "*"], env)
    text = err.decode("utf-8", "replace")
    if status != 0:
        if NO_LISTING in text:
            return []
        sys.stderr.write(text)
        fail(FAILED, f"listing {root} with s5cmd failed (status {status})")
    found = []
    for line in out.decode("utf-8", "surrogateescape").splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        key = item.get("key", "")
        if item.get("type", "file") != "file" or not key.startswith(root):
            continue
        found.append(
            (key[len(root) :], int(item.get("size") or 0), utc_seconds(item.get("last_modified", "")))
        )
    return found


def list_aws(
    cfg: "dict[str, Any]", endpoint: str, region: str, env: "dict[str, str]"
) -> "list[tuple[str, int, float]]":
    prefix = str(cfg["prefix"])
    argv = [*aws_base(endpoint, region), "s3api", "list-objects-v2", "--bucket", str(cfg["bucket"])]
    if prefix:
        argv += ["--prefix", prefix]
    status, out, err = run([*argv, "--output", "json"], env)
    if status != 0:
        sys.stderr.write(err.decode("utf-8", "replace"))
        where = "s3://" + str(cfg["bucket"]) + "/" + prefix
        fail(FAILED, f"listing {where} with the AWS CLI failed (status {status})")
    doc = json.loads(out.decode("utf-8", "surrogateescape") or "{}")
    found = []
    for item in doc.get("Contents") or []:
        key = item.get("Key", "")
        if key.startswith(prefix):
            found.append((key[len(prefix) :], int(item.get("Size") or 0), 0.0))
    return found


def fetch_s5cmd(
    chosen: "list[tuple[str, int, float]]",
    cfg: "dict[str, Any]",
    dest: str,
    endpoint: str,
    env: "dict[str, str]",
) -> int:
    root = "s3://" + str(cfg["bucket"]) + "/" + str(cfg["prefix"])
    lines = []
    for rel, size, mtime in chosen:
        local = os.path.join(dest, rel)
        try:
            st = os.stat(local)
            if st.st_size == size and mtime <= st.st_mtime + 1:
                continue  # as s5cmd sync: same size and the local copy is not older
        except OSError:
            pass
        lines.append(f"cp --raw {shlex.quote(root + rel)} {shlex.quote(local)}\n")
    if not lines:
        return 0
    handle, path = tempfile.mkstemp(prefix="runctl-load-", suffix=".s5cmd")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", errors="surrogateescape") as fh:
            fh.writelines(lines)
        workers = ["--numworkers", str(cfg["concurrency"])] if cfg.get("concurrency") else []
        return run_loud([*s5cmd_base(endpoint), *workers, "run", path], env)
    finally:
        os.unlink(path)


def fnmatch_literal(text: str) -> str:
    """A key as an fnmatch pattern that matches only itself (the AWS CLI's --include)."""
    return re.sub(r"([*?\[])", r"[\1]", text)


def arg_budget() -> int:
    try:
        limit = int(os.sysconf("SC_ARG_MAX"))
    except (AttributeError, ValueError, OSError):
        limit = 131072
    used = sum(len(k) + len(v) + 2 for k, v in os.environ.items())
    return max(16384, min(1 << 20, limit // 2 - used))


def fetch_aws(
    chosen: "list[tuple[str, int, float]]",
    cfg: "dict[str, Any]",
    dest: str,
    endpoint: str,
    region: str,
    env: "dict[str, str]",
) -> int:
    budget, worst = arg_budget(), 0
    rels = sorted(rel for rel, _, _ in chosen)
    start = 0
    while start < len(rels):
        end, used = start, 0
        while end < len(rels) and (end == start or used + len(rels[end].encode()) + 24 <= budget):
            used += len(rels[end].encode()) + 24
            end += 1
        group = rels[start:end]
        start = end
        common = os.path.commonprefix(group)  # noqa: RUF071 - characters, then cut at a "/":
        common = common[: common.rfind("/") + 1]  # the keys' deepest common directory
        argv = [*aws_base(endpoint, region), "s3", "sync", "--no-progress"]
        argv += ["s3://" + str(cfg["bucket"]) + "/" + str(cfg["prefix"]) + common, os.path.join(dest, common)]
        argv.append("--exclude=*")  # "--flag=value": a key may start with "-"
        argv += ["--include=" + fnmatch_literal(rel[len(common) :]) for rel in group]
        worst = max(worst, run_loud(argv, env))
    return worst


def delete_others(dest: str, keep: "set[str]", allowed: "Callable[[str], bool]") -> int:
    """--delete: local files not in the selected source set go; files the rules exclude stay."""
    deleted = 0
    for top, _dirs, files in os.walk(dest):
        for name in files:
            path = os.path.join(top, name)
            rel = os.path.relpath(path, dest).replace(os.sep, "/")
            if rel in keep or not allowed(rel):
                continue
            try:
                os.remove(path)
                deleted += 1
            except OSError as exc:
                sys.stderr.write(f"runctl-load: cannot delete {path}: {exc}\n")
    return deleted


def main(argv: "list[str]") -> int:
    tool, dest, shard_arg, endpoint, region, raw = argv[1:7]
    cfg = json.loads(raw)
    started = time.time()
    env = dict(os.environ)
    if region:
        env["AWS_REGION"] = region
    listed = list_s5cmd(cfg, endpoint, env) if tool == "s5cmd" else list_aws(cfg, endpoint, region, env)
    if not listed:
        fail(NO_OBJECTS, "no objects under s3://" + str(cfg["bucket"]) + "/" + str(cfg["prefix"]))
    compiled = [(bool(excludes), re.compile(regex)) for excludes, regex in cfg["rules"]]
    order, total = str(cfg["precedence"]), int(cfg["shard_total"] or 0)
    index = int(shard_arg) if total else 0

    def allowed(rel: str) -> bool:
        return passes(compiled, rel, order)

    chosen = []
    for rel, size, mtime in listed:
        if rel.endswith("/"):
            continue  # a directory marker
        if not safe(rel):
            sys.stderr.write(f"runctl-load: warning: refusing key {rel!r}: it would write outside {dest}\n")
            continue
        if tool == "s5cmd" and ("\n" in rel or "\r" in rel):
            sys.stderr.write(f"runctl-load: warning: skipping key {rel!r}: s5cmd run cannot name it\n")
            continue
        if allowed(rel) and (not total or shard_of(rel, total) == index):
            chosen.append((rel, size, mtime))
    if tool == "s5cmd":
        status = fetch_s5cmd(chosen, cfg, dest, endpoint, env)
    else:
        status = fetch_aws(chosen, cfg, dest, endpoint, region, env)
    if cfg.get("delete"):
        delete_others(dest, {rel for rel, _, _ in chosen}, allowed)
    files = size_sum = 0
    for rel, size, _ in chosen:
        if os.path.isfile(os.path.join(dest, rel)):
            files += 1
            size_sum += size
    shard = f" shard={index}/{total}" if total else ""
    seconds = time.time() - started
    sys.stdout.write(f"{TAG} files={files} bytes={size_sum} seconds={seconds:.3f} tool={tool}{shard}\n")
    sys.stdout.flush()
    if status != 0:
        sys.stderr.write(f"runctl-load: error: {tool} exited with status {status}\n")
        return FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
