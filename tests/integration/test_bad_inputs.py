"""The bad-input catalogue (issue 11): one table of things a user can get wrong, across
every command, each run the way a user would meet it.

For every row, in text mode and again with ``-o json``:

* the documented exit code (README's table: 2 usage, 3 credentials, 4 not found,
  5 network, 7 host key, ...);
* text: stderr is exactly one ``error:`` line and one ``hint:`` line, stdout is empty;
  JSON: stdout is exactly one document ``{"ok": false, "error": {"code", "message",
  "hint"}}`` with a non-empty hint, stderr is empty;
* no traceback, no "internal error";
* nothing changed: the whole local test directory (files, bytes, modes, mtimes; the
  SSH "remote" directory is in it too), every bucket of the S3 server with every
  object, and the unfinished multipart uploads are compared before and after.

Rows that inject shell syntax (``;``, ``$()``, quotes, newlines) into remote paths
carry a command that would create a marker file; that it never appears is part of
"nothing changed" (and checked by name as well).

Runs as root: permission bits do not stop root, so the rows about unreadable and
unwritable local paths run runctl as a real process with CAP_DAC_OVERRIDE and
CAP_DAC_READ_SEARCH dropped from its bounding and inheritable sets (``setpriv``):
root then obeys the mode bits like any user. (Also available on this machine, and
not used: ``chattr +i``, and a read-only tmpfs in a private mount namespace.)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

from tests import sshd
from tests.conftest import CliResult, S3Server, cli, key_of, write_tree
from tests.faultproxy import FaultProxy, running

pytestmark = pytest.mark.integration

Runner = Literal["inproc", "process", "nocaps"]
"""inproc: cli() in this process; process: ``python -m runctl``; nocaps: a real process
without the capabilities that let root ignore file modes."""

LONG_KEY = "k" * 1100
BUCKET_64 = "b" * 64
MISSING_BUCKET = f"runctl-missing-{uuid.uuid4().hex[:8]}"
UNREACHABLE = "http://127.0.0.1:1"
NO_SUCH_HOST = "http://runctl-no-such-host.invalid:8333"
SOURCE_FILES = {"a.txt": b"alpha", "sub/b.txt": b"beta", "step_1.pt": b"one", "step_2.pt": b"two"}


@dataclass(frozen=True)
class Bad:
    argv: tuple[str, ...]
    exit: int
    env: dict[str, str | None] = field(default_factory=dict)
    runner: Runner = "inproc"
    ssh: bool = False
    canned: tuple[int, str, str] | None = None
    """The S3 endpoint answers every request with this (status, code, message)."""
    says: tuple[str, ...] = ()
    """Substrings the error message must contain."""
    offline: bool = False
    """Refused before any request: the S3 endpoint (a recording proxy) must see none."""


def row(
    case_id: str,
    exit_code: int,
    *argv: str,
    env: dict[str, str | None] | None = None,
    runner: Runner = "inproc",
    ssh: bool = False,
    canned: tuple[int, str, str] | None = None,
    says: tuple[str, ...] = (),
    offline: bool = False,
) -> Any:
    case = Bad(tuple(argv), exit_code, env or {}, runner, ssh, canned, says, offline)
    if case_id in NOT_YET:
        # Known wrong today, expectation kept; strict: the day it passes, this must go.
        return pytest.param(case, id=case_id, marks=pytest.mark.xfail(strict=True, reason=NOT_YET[case_id]))
    return pytest.param(case, id=case_id)


NOT_YET: dict[str, str] = {}
"""Rows whose correct behaviour is not built yet (owner area in the reason)."""


SSH = {"ssh": True}
PUSH = ("code", "push", "{src}")
F = ("-F", "{ssh_config}")

CASES = [
    # -- S3 URLs and bucket names --------------------------------------------------------
    row(
        "list-s3-one-slash", 2, "s3", "list", "s3:/runctl-test/p/", says=("s3:/runctl-test/p/",), offline=True
    ),
    row("list-s3-empty", 2, "s3", "list", "s3://", offline=True),
    row(
        "upload-bucket-bad-chars",
        2,
        "s3",
        "upload",
        "{file}",
        "s3://Bad_Bucket!/x",
        says=("Bad_Bucket!",),
        offline=True,
    ),
    row(
        "download-bucket-64-chars",
        2,
        "s3",
        "download",
        f"s3://{BUCKET_64}/k",
        "{out}",
        says=("63",),
        offline=True,
    ),
    row("sync-bucket-2-chars", 2, "s3", "sync", "{src}", "s3://ab/p/", offline=True),
    row("review-bucket-ip-address", 2, "s3", "review", "s3://192.168.1.1/p/", offline=True),
    row("watch-bucket-double-dot", 2, "s3", "watch", "s3://a..b/p/", "--max-polls", "1", offline=True),
    row("cleanup-not-s3", 2, "s3", "cleanup", "/tmp/x", "--keep-last-n", "1"),
    row("data-load-s3-one-slash", 2, "data", "load", "s3:/runctl-test/p/", "{out}/d", offline=True),
    # -- missing bucket, missing key -----------------------------------------------------
    row("list-missing-bucket", 4, "s3", "list", f"s3://{MISSING_BUCKET}/p/", says=(MISSING_BUCKET,)),
    row("sync-down-missing-bucket", 4, "s3", "sync", f"s3://{MISSING_BUCKET}/p/", "{out}"),
    row("cleanup-missing-bucket", 4, "s3", "cleanup", f"s3://{MISSING_BUCKET}/p/", "--keep-last-n", "1"),
    row("review-missing-bucket", 4, "s3", "review", f"s3://{MISSING_BUCKET}/p/"),
    row("watch-missing-bucket", 4, "s3", "watch", f"s3://{MISSING_BUCKET}/p/", "--max-polls", "1"),
    row(
        "download-missing-key", 4, "s3", "download", "{prefix}no-such-key.txt", "{out}", says=("no-such-key",)
    ),
    row("download-missing-prefix", 4, "s3", "download", "{prefix}nothing-here/", "{out}", "--recursive"),
    row("data-load-missing-bucket", 4, "data", "load", f"s3://{MISSING_BUCKET}/p/", "{out}/d"),
    # -- credentials ---------------------------------------------------------------------
    row("list-wrong-secret", 3, "s3", "list", "{prefix}", env={"AWS_SECRET_ACCESS_KEY": "wrong-secret"}),
    row(
        "upload-wrong-key-id", 3, "s3", "upload", "{file}", "{prefix}", env={"AWS_ACCESS_KEY_ID": "AKIAWRONG"}
    ),
    row(
        "download-expired-token",
        3,
        "s3",
        "download",
        "{obj}",
        "{out}",
        env={"AWS_SESSION_TOKEN": "an-expired-token"},
        canned=(400, "ExpiredToken", "The provided token has expired."),
        says=("ExpiredToken", "The provided token has expired."),
    ),
    row(
        "sync-empty-access-key-id",
        3,
        "s3",
        "sync",
        "{src}",
        "{prefix}",
        env={"AWS_ACCESS_KEY_ID": ""},
        says=("AWS_ACCESS_KEY_ID",),
    ),
    row(
        "review-wrong-secret-subprocess",
        3,
        "s3",
        "review",
        "{prefix}",
        env={"AWS_SECRET_ACCESS_KEY": "wrong-secret"},
        runner="process",
    ),
    # -- network -------------------------------------------------------------------------
    row(
        "list-unreachable", 5, "--endpoint-url", UNREACHABLE, "s3", "list", "{prefix}", says=("127.0.0.1:1",)
    ),
    row("upload-unreachable", 5, "--endpoint-url", UNREACHABLE, "s3", "upload", "{file}", "{prefix}"),
    row(
        "sync-dns-failure",
        5,
        "s3",
        "sync",
        "{src}",
        "{prefix}",
        env={"AWS_ENDPOINT_URL": NO_SUCH_HOST},
        says=("runctl-no-such-host.invalid",),
    ),
    row(
        "cleanup-dns-failure",
        5,
        "--endpoint-url",
        NO_SUCH_HOST,
        "s3",
        "cleanup",
        "{prefix}",
        "--keep-last-n",
        "1",
    ),
    row("data-load-unreachable", 5, "--endpoint-url", UNREACHABLE, "data", "load", "{prefix}", "{out}/d"),
    # -- local paths ---------------------------------------------------------------------
    row(
        "upload-local-missing", 4, "s3", "upload", "{missing}", "{prefix}", says=("{missing}",), offline=True
    ),
    row("upload-local-under-a-file", 4, "s3", "upload", "{file}/x", "{prefix}", offline=True),
    row("sync-local-not-a-directory", 2, "s3", "sync", "{file}", "{prefix}", says=("{file}",), offline=True),
    row("checkpoint-list-missing", 4, "checkpoint", "list", "{missing}"),
    row("checkpoint-cleanup-not-a-directory", 2, "checkpoint", "cleanup", "{file}", "--keep-last-n", "1"),
    row("upload-not-readable", 1, "s3", "upload", "{unreadable}", "{prefix}", runner="nocaps", offline=True),
    row(
        "upload-dir-not-readable",
        1,
        "s3",
        "upload",
        "{locked}",
        "{prefix}",
        "--recursive",
        runner="nocaps",
        offline=True,
    ),
    row(
        "download-dir-not-writable",
        1,
        "s3",
        "download",
        "{obj}",
        "{readonly}/",
        runner="nocaps",
        offline=True,
    ),
    row(
        "download-prefix-dir-not-writable",
        1,
        "s3",
        "download",
        "{prefix}",
        "{readonly}",
        "--recursive",
        runner="nocaps",
        offline=True,
    ),
    row(
        "download-parent-is-a-file",
        2,
        "s3",
        "download",
        "{obj}",
        "{file}/a.txt",
        says=("{file}",),
        offline=True,
    ),
    row(
        "download-prefix-parent-is-a-file",
        2,
        "s3",
        "download",
        "{prefix}",
        "{file}/sub",
        "--recursive",
        offline=True,
    ),
    row(
        "download-prefix-onto-a-file", 2, "s3", "download", "{prefix}", "{file}", "--recursive", offline=True
    ),
    row("sync-down-onto-a-file", 2, "s3", "sync", "{prefix}", "{file}", offline=True),
    row("data-load-parent-is-a-file", 2, "data", "load", "{prefix}", "{file}/d"),
    # -- sync needs one of each ----------------------------------------------------------
    row("sync-two-local-paths", 2, "s3", "sync", "{src}", "{out}", offline=True),
    row("sync-two-s3-urls", 2, "s3", "sync", "{prefix}", "s3://runctl-test/elsewhere/", offline=True),
    # -- keys ----------------------------------------------------------------------------
    row(
        "upload-key-dot-dot", 2, "s3", "upload", "{file}", "{prefix}../escape.txt", says=("..",), offline=True
    ),
    row("upload-key-absolute", 2, "s3", "upload", "{file}", "s3://runctl-test//etc/passwd", offline=True),
    row("download-key-dot-dot", 2, "s3", "download", "{prefix}x/../a.txt", "{out}", offline=True),
    row("upload-key-nul", 2, "s3", "upload", "{file}", "{prefix}nul\0name.txt", offline=True),
    row("upload-key-control-char", 2, "s3", "upload", "{file}", "{prefix}bell\x07.txt", offline=True),
    row("upload-local-name-control-char", 2, "s3", "upload", "{ctl_file}", "{prefix}", offline=True),
    row(
        "upload-key-too-long",
        2,
        "s3",
        "upload",
        "{file}",
        "{prefix}" + LONG_KEY,
        says=("1,024",),
        offline=True,
    ),
    row(
        "download-key-too-long",
        2,
        "s3",
        "download",
        "{prefix}" + LONG_KEY,
        "{out}",
        says=("1,024",),
        offline=True,
    ),
    row("list-prefix-too-long", 2, "s3", "list", "{prefix}" + LONG_KEY + "/", offline=True),
    row(
        "server-reason-is-carried",
        2,
        "s3",
        "upload",
        "{file}",
        "{prefix}",
        canned=(400, "KeyTooLongError", "Your key is too long."),
        says=("KeyTooLongError", "Your key is too long."),
    ),
    # -- settings ------------------------------------------------------------------------
    row("concurrency-zero", 2, "--concurrency", "0", "s3", "sync", "{src}", "{prefix}", offline=True),
    row("concurrency-negative", 2, "s3", "upload", "{file}", "{prefix}", "--concurrency", "-4", offline=True),
    row(
        "concurrency-zero-from-env",
        2,
        "s3",
        "list",
        "{prefix}",
        env={"RUNCTL_CONCURRENCY": "0"},
        offline=True,
    ),
    row("part-size-below-5mib", 2, "--part-size", "4MiB", "s3", "upload", "{file}", "{prefix}", offline=True),
    row(
        "part-size-above-5gib",
        2,
        "--part-size",
        "6GiB",
        "s3",
        "upload",
        "{file}",
        "{prefix}",
        says=("5GiB",),
        offline=True,
    ),
    row(
        "config-syntax-error",
        2,
        "--config",
        "{bad_config}",
        "s3",
        "list",
        "{prefix}",
        says=("{bad_config}",),
        offline=True,
    ),
    row(
        "default-config-syntax-error",
        2,
        "s3",
        "list",
        "{prefix}",
        env={"XDG_CONFIG_HOME": "{bad_xdg}"},
        offline=True,
    ),
    row("cleanup-keep-zero", 2, "s3", "cleanup", "{prefix}", "--keep-last-n", "0", offline=True),
    row("cleanup-keep-negative", 2, "s3", "cleanup", "{prefix}", "--keep-last-n", "-1", offline=True),
    row("checkpoint-keep-zero", 2, "checkpoint", "cleanup", "{src}", "--keep-last-n", "0"),
    row(
        "watch-interval-zero",
        2,
        "s3",
        "watch",
        "{prefix}",
        "--interval",
        "0",
        "--max-polls",
        "1",
        offline=True,
    ),
    row(
        "data-load-shard-out-of-range",
        2,
        "data",
        "load",
        "{prefix}",
        "{out}/d",
        "--shard",
        "4/4",
        offline=True,
    ),
    row(
        "data-load-shard-zero-total", 2, "data", "load", "{prefix}", "{out}/d", "--shard", "0/0", offline=True
    ),
    row(
        "data-load-shard-garbage", 2, "data", "load", "{prefix}", "{out}/d", "--shard", "first", offline=True
    ),
    # -- code push and exec over SSH -----------------------------------------------------
    row("push-dest-without-host", 2, *PUSH, "{remote}", **SSH),
    row(
        "push-local-missing", 4, "code", "push", "{missing}", "{alias}:{remote}", "-F", "{ssh_config}", **SSH
    ),
    row(
        "push-local-not-a-directory",
        2,
        "code",
        "push",
        "{file}",
        "{alias}:{remote}",
        "-F",
        "{ssh_config}",
        **SSH,
    ),
    row("push-unknown-host-alias", 5, *PUSH, "runctl-no-such-alias.invalid:x", "-F", "{ssh_config}", **SSH),
    row(
        "push-unknown-host-key",
        7,
        *PUSH,
        "{alias}:{remote}",
        "-F",
        "{ssh_config}",
        "--known-hosts",
        "{empty_known_hosts}",
        **SSH,
    ),
    row(
        "push-wrong-identity", 3, *PUSH, "{alias}:{remote}", "-F", "{noid_config}", "-i", "{wrong_key}", **SSH
    ),
    row(
        "push-missing-identity", 4, *PUSH, "{alias}:{remote}", "-F", "{noid_config}", "-i", "{missing}", **SSH
    ),
    row(
        "push-config-syntax-error",
        2,
        *PUSH,
        "{alias}:{remote}",
        "-F",
        "{ssh_config}",
        "--config",
        "{bad_config}",
        **SSH,
    ),
    # A path that reaches a shell unquoted would run the marker command: $() and backticks
    # as the path is expanded, whatever the script does next; a broken quoting (naive '...'
    # wrapping) would let $() out. The paths are under a remote *file*, so the push fails.
    row("push-remote-path-semicolon", 9, *PUSH, "{alias}:{remote_file}/x;touch {marker}", *F, **SSH),
    row(
        "push-remote-path-command-substitution",
        9,
        *PUSH,
        "{alias}:{remote_file}/$(touch {marker})",
        *F,
        **SSH,
    ),
    row("push-remote-path-backticks", 9, *PUSH, "{alias}:{remote_file}/`touch {marker}`", *F, **SSH),
    row(
        "push-remote-path-quotes",
        9,
        *PUSH,
        "{alias}:{remote_file}/it's \"q\" x'$(touch {marker})'",
        *F,
        **SSH,
    ),
    row("push-remote-path-newline", 2, *PUSH, "{alias}:{remote}/x\ntouch {marker}", *F, **SSH),
    row(
        "push-remote-path-command-substitution-openssh",
        9,
        *PUSH,
        "{alias}:{remote_file}/$(touch {marker})",
        *F,
        "--ssh-client",
        "openssh",
        **SSH,
    ),
    row("exec-no-command", 2, "exec", "{alias}", "-F", "{ssh_config}", **SSH),
    row(
        "exec-unknown-host-alias",
        5,
        "exec",
        "runctl-no-such-alias.invalid",
        "-F",
        "{ssh_config}",
        "--",
        "true",
        **SSH,
    ),
    row(
        "exec-unknown-host-key",
        7,
        "exec",
        "{alias}",
        "-F",
        "{ssh_config}",
        "--known-hosts",
        "{empty_known_hosts}",
        "--",
        "touch {marker}",
        **SSH,
    ),
    row(
        "exec-wrong-identity-openssh",
        3,
        "exec",
        "{alias}",
        "-F",
        "{noid_config}",
        "-i",
        "{wrong_key}",
        "--ssh-client",
        "openssh",
        "--",
        "touch {marker}",
        **SSH,
    ),
    row(
        "exec-workdir-command-substitution",
        4,
        "exec",
        "{alias}:{remote}/$(touch {marker})",
        "-F",
        "{ssh_config}",
        "--",
        "true",
        **SSH,
    ),
    row("exec-workdir-semicolon", 4, "exec", "{alias}:{remote}/x;touch {marker}", *F, "--", "true", **SSH),
    row(
        "exec-workdir-quotes",
        4,
        "exec",
        "{alias}:{remote}/it's x'$(touch {marker})'",
        *F,
        "--",
        "true",
        **SSH,
    ),
    row(
        "exec-timeout-zero", 2, "exec", "{alias}", "-F", "{ssh_config}", "--timeout", "0", "--", "true", **SSH
    ),
    row(
        "exec-config-syntax-error",
        2,
        "exec",
        "{alias}",
        "-F",
        "{ssh_config}",
        "--config",
        "{bad_config}",
        "--",
        "touch {marker}",
        **SSH,
    ),
]


# -- the world each row runs in ---------------------------------------------------------------


@dataclass
class World:
    root: Path
    values: dict[str, str]
    marker: Path

    def fill(self, text: str) -> str:
        for name, value in self.values.items():
            text = text.replace("{" + name + "}", value)
        return text


def build_world(tmp_path: Path, s3: S3Server, client: Any, ssh: sshd.SSHServer | None) -> World:
    root = tmp_path / "world"
    src = write_tree(root / "src", SOURCE_FILES)
    (root / "out").mkdir()
    file = root / "file.txt"
    file.write_bytes(b"a regular file")
    unreadable = root / "unreadable.bin"
    unreadable.write_bytes(b"secret")
    unreadable.chmod(0)
    locked = write_tree(root / "locked", {"c.txt": b"c"})
    locked.chmod(0)
    readonly = root / "readonly"
    readonly.mkdir()
    readonly.chmod(0o555)
    ctl = root / "ctl"
    ctl.mkdir()
    (ctl / "bell\x07.txt").write_bytes(b"ding")
    bad_config = root / "bad.toml"
    bad_config.write_text("[runctl\nconcurrency = 4\n")
    bad_xdg = root / "xdg"
    (bad_xdg / "runctl").mkdir(parents=True)
    (bad_xdg / "runctl" / "config.toml").write_text("[runctl]\nconcurrency = = 3\n")
    prefix = s3.fresh_prefix()
    for rel, data in SOURCE_FILES.items():
        client.put_object(Bucket=s3.bucket, Key=key_of(prefix) + rel, Body=data)
    values = {
        "src": str(src),
        "out": str(root / "out"),
        "file": str(file),
        "missing": str(root / "missing"),
        "unreadable": str(unreadable),
        "locked": str(locked),
        "readonly": str(readonly),
        "ctl_file": str(ctl / "bell\x07.txt"),
        "bad_config": str(bad_config),
        "bad_xdg": str(bad_xdg),
        "prefix": prefix,
        "obj": prefix + "a.txt",
    }
    marker = root / "MARKER"
    if ssh is not None:
        remote = write_tree(root / "remote", {"keep.txt": b"remote file"})
        (root / "empty_known_hosts").write_text("")
        wrong = root / "wrong_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong)], check=True)
        noid = root / "noid_ssh_config"
        noid.write_text(
            "\n".join(
                [
                    f"Host {sshd.ALIAS}",
                    "  HostName 127.0.0.1",
                    f"  Port {ssh.port}",
                    f"  User {ssh.user}",
                    "  IdentitiesOnly yes",
                    f"  UserKnownHostsFile {ssh.known_hosts}",
                    "  StrictHostKeyChecking yes",
                    "  BatchMode yes",
                    "",
                ]
            )
        )
        values.update(
            alias=sshd.ALIAS,
            ssh_config=str(ssh.config),
            noid_config=str(noid),
            remote=str(remote),
            remote_file=str(remote / "keep.txt"),
            empty_known_hosts=str(root / "empty_known_hosts"),
            wrong_key=str(wrong),
        )
    values["marker"] = str(marker)
    return World(root, values, marker)


# -- snapshots of both sides ----------------------------------------------------------------------


def local_state(root: Path) -> dict[str, tuple[object, ...]]:
    """Every path below ``root``: kind, mode, mtime and (files) size and content digest."""
    state: dict[str, tuple[object, ...]] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            st = path.lstat()
            rel = path.relative_to(root).as_posix()
            if stat.S_ISLNK(st.st_mode):
                state[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                state[rel] = ("dir", st.st_mode, st.st_mtime_ns)
            else:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                state[rel] = ("file", st.st_mode, st.st_mtime_ns, st.st_size, digest)
    return state


def s3_state(client: Any) -> dict[str, object]:
    """Every bucket, every object in it (size, ETag, LastModified) and every unfinished upload."""
    buckets = sorted(b["Name"] for b in client.list_buckets()["Buckets"])
    state: dict[str, object] = {"buckets": buckets}
    for bucket in buckets:
        objects = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            objects += [(o["Key"], o["Size"], o["ETag"], o["LastModified"]) for o in page.get("Contents", [])]
        uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        state[bucket] = (sorted(objects), sorted((u["Key"], u["UploadId"]) for u in uploads))
    return state


# -- running a row ----------------------------------------------------------------------------------


def run_row(case: Bad, argv: list[str], env: dict[str, str]) -> CliResult:
    if case.runner == "inproc":
        return cli(*argv)
    prefix: list[str] = []
    if case.runner == "nocaps":
        setpriv = shutil.which("setpriv")
        assert setpriv, "setpriv (util-linux) is needed to run as root without CAP_DAC_OVERRIDE"
        prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all"]
    proc = subprocess.run(
        [*prefix, sys.executable, "-m", "runctl", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def check_text(res: CliResult, case: Bad, world: World) -> str:
    assert res.code == case.exit, (res.code, res.out, res.err)
    assert "Traceback" not in res.err, res.err
    assert res.out == "", res.out
    lines = res.err.splitlines()
    assert len(lines) == 2, res.err
    error, hint = lines
    assert error.startswith("error: ") and len(error) > len("error: "), res.err
    assert hint.startswith("hint: ") and len(hint) > len("hint: "), res.err
    assert "internal error" not in error, res.err
    for needle in case.says:
        assert world.fill(needle) in error, (needle, res.err)
    return error[len("error: ") :]


def check_json(res: CliResult, case: Bad) -> dict[str, Any]:
    assert res.code == case.exit, (res.code, res.out, res.err)
    assert "Traceback" not in res.err, res.err
    assert res.err == "", res.err
    assert res.out.endswith("\n") and res.out.count("\n") == 1, res.out
    doc = json.loads(res.out)
    assert doc == {"ok": False, "error": doc["error"]}, doc
    err = doc["error"]
    assert set(err) == {"code", "message", "hint"}, err
    assert all(isinstance(err[k], str) and err[k] for k in ("code", "message", "hint")), err
    assert "internal error" not in err["message"], err
    return dict(err)


@contextlib.contextmanager
def endpoint_for(s3: S3Server, case: Bad) -> Iterator[FaultProxy | None]:
    """A proxy in front of the server when the row needs one: to answer with a canned S3
    error, or to record that no request was made at all."""
    if case.canned is None and not case.offline:
        yield None
        return
    with running(s3.endpoint) as proxy:
        if case.canned is not None:
            status, code, message = case.canned
            proxy.fail(None, status=status, code=code, message=message)
        yield proxy


@pytest.fixture(autouse=True)
def _no_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)  # only the keys a row names may be used


@pytest.mark.parametrize("case", CASES)
def test_bad_input(
    case: Bad,
    s3_env: S3Server,
    s3_client: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    ssh = request.getfixturevalue("ssh_server") if case.ssh else None
    world = build_world(tmp_path, s3_env, s3_client, ssh)
    with endpoint_for(s3_env, case) as proxy:
        if proxy is not None:
            monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        for name, value in case.env.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, world.fill(value))
        argv = [world.fill(a) for a in case.argv]
        env = dict(os.environ)

        before = (local_state(tmp_path), s3_state(s3_client))
        text = run_row(case, argv, env)
        as_json = run_row(case, ["-o", "json", *argv], env)
        after = (local_state(tmp_path), s3_state(s3_client))
        requests = proxy.seen() if proxy is not None and case.offline else []

    assert requests == [], "refused too late: requests reached the S3 endpoint"
    assert not world.marker.exists(), "a remote path or argument was run by a shell"
    assert after[0] == before[0], "the local side changed"
    assert after[1] == before[1], "the S3 side changed"
    message = check_text(text, case, world)
    err = check_json(as_json, case)
    assert err["message"] == message


def test_the_catalogue_is_wide() -> None:
    """At least 40 rows, over every command (and every `s3` subcommand)."""
    assert len(CASES) >= 40
    commands = set()
    for param in CASES:
        argv = param.values[0].argv
        family = next(a for a in argv if a in ("s3", "checkpoint", "code", "exec", "data"))
        after = argv[argv.index(family) + 1]
        commands.add(f"{family} {after}" if family in ("s3", "checkpoint", "code", "data") else family)
    assert commands >= {
        *(f"s3 {c}" for c in ("upload", "download", "list", "sync", "cleanup", "watch", "review")),
        "checkpoint list",
        "checkpoint cleanup",
        "code push",
        "exec",
        "data load",
    }, commands
