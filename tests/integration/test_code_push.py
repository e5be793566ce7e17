"""`runctl code push` against a real OpenSSH sshd on loopback (see tests/sshd.py)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runctl.stores.gzip_stream import MEASURE_ABOVE
from tests import sshd
from tests.conftest import cli

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _no_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)  # only the test key may be used


@pytest.fixture(autouse=True, params=["asyncssh", "openssh"])
def client(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs over both transports of the remote seam: asyncssh in-process
    and the system OpenSSH client (chosen as a user would, through RUNCTL_SSH_CLIENT)."""
    name: str = request.param
    monkeypatch.setenv("RUNCTL_SSH_CLIENT", name)
    return name


def push(server: sshd.SSHServer, src: Path, dest: str, *extra: str) -> dict[str, Any]:
    result = run_push(server, src, dest, *extra)
    assert result.code == 0, result.out + result.err
    doc: dict[str, Any] = result.json()  # type: ignore[assignment]
    return doc


def run_push(server: sshd.SSHServer, src: Path, dest: str, *extra: str, text: bool = False) -> Any:
    """`runctl -o json code push` (or text output) with the server's ssh config; the CLI result as is."""
    output = () if text else ("-o", "json")
    return cli(*output, "code", "push", str(src), dest, "-F", str(server.config), *extra)


def tree(root: Path) -> dict[str, tuple[str, object]]:
    """{path: (kind, content or link target or exec bit)} for a whole directory."""
    out: dict[str, tuple[str, object]] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(folder, name)
            rel = p.relative_to(root).as_posix()
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", None)
            else:
                out[rel] = ("file", (p.read_bytes(), bool(st.st_mode & 0o100)))
    return out


def make_src(root: Path) -> Path:
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "a.py").write_text("print('a')\n")
    (root / "pkg" / "sub" / "b.py").write_text("print('b')\n")
    run = root / "run.sh"
    run.write_text("#!/bin/sh\necho hi\n")
    run.chmod(0o755)
    (root / "link.py").symlink_to("pkg/a.py")
    (root / "empty" / "deeper").mkdir(parents=True)
    (root / "big.bin").write_bytes(os.urandom(600_000))
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (root / ".git").mkdir()  # not a real repository: must still never be sent
    (root / ".git" / "HEAD").write_text("ref: x\n")
    return root


def selected_tree(root: Path) -> dict[str, tuple[str, object]]:
    return {k: v for k, v in tree(root).items() if not k.startswith((".git", "__pycache__"))}


def test_first_push_then_noop_then_touch(ssh_server: sshd.SSHServer, tmp_path: Path, client: str) -> None:
    src = make_src(tmp_path / "src")
    remote = tmp_path / "remote"
    first = push(ssh_server, src, ssh_server.dest(remote))
    assert first["ok"] and first["mode"] == "incremental" and first["command"] == "code push"
    assert first["transport"] == client
    assert first["remote"]["lister"] == "" and "tar" in first["remote"]["tools"]  # nothing to list yet
    verbose = run_push(ssh_server, src, ssh_server.dest(remote), "-v", text=True)
    assert f"remote: via {client}, listed by gnu, tools: " in verbose.err + verbose.out
    assert sorted(first["sent"]) == ["big.bin", "link.py", "pkg/a.py", "pkg/sub/b.py", "run.sh"]
    assert tree(remote) == selected_tree(src)  # content, exec bit, symlink, empty dirs
    assert (remote / "big.bin").stat().st_mtime == pytest.approx((src / "big.bin").stat().st_mtime, abs=1e-3)

    again = push(ssh_server, src, ssh_server.dest(remote))
    assert again["sent"] == [] and again["bytes"] == 0 and again["unchanged"] == 5

    os.utime(src / "big.bin")  # touched, same content: hashed on both sides, not resent
    (src / "pkg" / "a.py").write_text("print('A')\n")
    third = push(ssh_server, src, ssh_server.dest(remote))
    assert third["sent"] == ["pkg/a.py"]
    assert push(ssh_server, src, ssh_server.dest(remote))["sent"] == []  # remote mtime was fixed up
    assert tree(remote) == selected_tree(src)


def test_kept_listing_records_never_hide_a_remote_change(
    ssh_server: sshd.SSHServer, tmp_path: Path, private_cache: Path
) -> None:
    """Pushes take the entries of listing records seen before from a kept file: a remote
    file changed behind runctl's back lists as a new record and is repaired; a damaged
    kept file is ignored."""
    src = make_src(tmp_path / "src")
    remote = tmp_path / "remote"
    push(ssh_server, src, ssh_server.dest(remote))
    assert push(ssh_server, src, ssh_server.dest(remote))["sent"] == []
    (kept,) = (private_cache / "listings").iterdir()
    assert kept.stat().st_size > 0

    (remote / "pkg" / "a.py").write_text("print('Z')\n")  # same size, another content
    (remote / "run.sh").chmod(0o644)
    (remote / "pkg" / "sub" / "b.py").unlink()
    (remote / "link.py").unlink()
    (remote / "link.py").symlink_to("pkg/b.py")  # a target of the same length
    done = push(ssh_server, src, ssh_server.dest(remote))
    assert sorted(done["sent"]) == ["link.py", "pkg/a.py", "pkg/sub/b.py", "run.sh"]
    assert tree(remote) == selected_tree(src)

    kept.write_bytes(kept.read_bytes()[:-10])
    assert push(ssh_server, src, ssh_server.dest(remote))["sent"] == []
    assert tree(remote) == selected_tree(src)


def test_remembered_plans_never_hide_a_change(
    ssh_server: sshd.SSHServer, tmp_path: Path, private_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A no-change push is remembered (codesync.plan_memo): the next push with the same
    selection and the same listing is answered without planning. Any change on either
    side, or another set of flags, plans again."""
    from runctl.codesync.push import CodePush

    planned: list[int] = []
    real_plan = CodePush._plan

    async def counting(self: CodePush, *args: Any) -> Any:
        planned.append(1)
        return await real_plan(self, *args)

    monkeypatch.setattr(CodePush, "_plan", counting)
    src = make_src(tmp_path / "src")
    for path in src.rglob("*"):  # not racy: an empty plan (no hashing) is what is remembered
        os.utime(path, (time.time() - 10, time.time() - 10), follow_symlinks=False)
    remote = tmp_path / "remote"
    dest = ssh_server.dest(remote)
    push(ssh_server, src, dest)
    assert push(ssh_server, src, dest)["sent"] == []  # planned, and remembered
    assert len(list((private_cache / "plans").iterdir())) == 1
    planned.clear()
    again = push(ssh_server, src, dest)
    assert again["sent"] == [] and again["unchanged"] == 5 and planned == []  # answered by the memo

    (remote / "pkg" / "a.py").write_text("print('Z')\n")  # behind runctl's back: the listing differs
    assert push(ssh_server, src, dest)["sent"] == ["pkg/a.py"] and planned == [1]
    assert not list((private_cache / "plans").iterdir())  # forgotten: the next push reads records early
    assert push(ssh_server, src, dest)["sent"] == []  # remembered again
    planned.clear()
    (src / "pkg" / "sub" / "b.py").write_text("print('B')\n")  # a local edit
    os.utime(src / "pkg" / "sub" / "b.py", (time.time() - 5, time.time() - 5))
    assert push(ssh_server, src, dest)["sent"] == ["pkg/sub/b.py"] and planned == [1]
    assert push(ssh_server, src, dest)["sent"] == []
    planned.clear()
    assert push(ssh_server, src, dest, "--exclude", "run.sh")["sent"] == [] and planned == [1]  # other flags
    assert push(ssh_server, src, dest, "--delete")["sent"] == [] and planned == [1, 1]  # never remembered
    assert tree(remote) == selected_tree(src)


def test_same_size_rewrites_are_resent(ssh_server: sshd.SSHServer, tmp_path: Path) -> None:
    """A large file whose size is unchanged but whose content is: rewritten (its ends
    differ: no whole-file hash needed) or edited in the middle (ends equal, digest not)."""
    src = make_src(tmp_path / "src")
    (src / "mid.bin").write_bytes(os.urandom(600_000))
    remote = tmp_path / "remote"
    push(ssh_server, src, ssh_server.dest(remote))
    (src / "big.bin").write_bytes(os.urandom(600_000))
    data = bytearray((src / "mid.bin").read_bytes())
    data[300_000] ^= 0xFF
    (src / "mid.bin").write_bytes(bytes(data))
    os.utime(src / "run.sh")  # touched, and small: resent (cheaper than asking)
    done = push(ssh_server, src, ssh_server.dest(remote))
    assert sorted(done["sent"]) == ["big.bin", "mid.bin", "run.sh"]
    assert tree(remote) == selected_tree(src)
    assert push(ssh_server, src, ssh_server.dest(remote))["sent"] == []


def test_compressed_stream_both_modes(ssh_server: sshd.SSHServer, tmp_path: Path) -> None:
    """--compress always gzips the stream (auto never does over loopback); the remote
    tree is the same either way, in both modes."""
    src = make_src(tmp_path / "src")
    (src / "notes.txt").write_text("all work and no play\n" * 60_000)  # shrinks; big.bin is dense
    plain = push(ssh_server, src, ssh_server.dest(tmp_path / "plain"))
    assert "compression" not in plain and plain["bytes"] > MEASURE_ABOVE  # auto measured loopback
    for mode in ("incremental", "full"):
        remote = tmp_path / mode
        doc = push(ssh_server, src, ssh_server.dest(remote), "--mode", mode, "--compress", "always")
        assert doc["compression"] == "gzip" and len(doc["sent"]) == 6
        assert tree(remote) == selected_tree(src)
    (src / "pkg" / "a.py").write_text("print('changed')\n")
    again = push(ssh_server, src, ssh_server.dest(tmp_path / "incremental"), "--compress", "always")
    assert again["sent"] == ["pkg/a.py"] and again["compression"] == "gzip"
    assert tree(tmp_path / "incremental") == selected_tree(src)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: a remote disk that fills up (tests and CI run as root)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs (needs root): {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_leaves_no_half_written_file(
    ssh_server: sshd.SSHServer, tmp_path: Path, small_disk: Path
) -> None:
    """Files are unpacked aside and renamed into place: when the remote disk fills up,
    the tree keeps its old files whole, and no partial file or staging dir is left."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.py").write_text("old\n")
    push(ssh_server, src, ssh_server.dest(small_disk / "proj"))
    (src / "a.py").write_text("new\n")
    (src / "huge.bin").write_bytes(os.urandom(3_000_000))
    for dest in ("proj", "fresh"):  # an update, and a first push
        result = run_push(ssh_server, src, ssh_server.dest(small_disk / dest))
        assert result.code == 8, result.out
        assert result.json()["error"]["code"] == "remote_disk_full"  # type: ignore[index]
    assert sorted(p.name for p in small_disk.iterdir()) == ["proj"]
    assert sorted(p.name for p in (small_disk / "proj").iterdir()) == ["a.py"]
    assert (small_disk / "proj" / "a.py").read_text() == "old\n"


def test_remote_without_tar_gets_files_over_sftp(
    no_tar_server: sshd.SSHServer, tmp_path: Path, client: str
) -> None:
    """A remote whose PATH has no tar: incremental pushes go over SFTP (many files in
    flight, each to a temporary name then renamed); full mode is refused with exit 10.
    The OpenSSH transport has no SFTP channel of its own: exit 10, naming the way out."""
    src = make_src(tmp_path / "src")
    remote = tmp_path / "remote"
    if client == "openssh":
        refused = run_push(no_tar_server, src, no_tar_server.dest(remote))
        assert refused.code == 10, refused.out + refused.err
        error = refused.json()["error"]  # type: ignore[index]
        assert "tar" in error["message"] and "--ssh-client asyncssh" in error["hint"]
        assert not remote.exists()
        return
    first = push(no_tar_server, src, no_tar_server.dest(remote))
    assert sorted(first["sent"]) == ["big.bin", "link.py", "pkg/a.py", "pkg/sub/b.py", "run.sh"]
    assert tree(remote) == selected_tree(src)  # content, exec bit, symlink, empty dirs
    assert push(no_tar_server, src, no_tar_server.dest(remote))["sent"] == []  # whole-second mtimes
    (src / "pkg" / "a.py").write_text("print('changed over sftp')\n")
    assert push(no_tar_server, src, no_tar_server.dest(remote))["sent"] == ["pkg/a.py"]
    assert tree(remote) == selected_tree(src)
    full = run_push(no_tar_server, src, no_tar_server.dest(tmp_path / "full"), "--mode", "full")
    assert full.code == 10
    assert full.json()["error"]["code"] == "remote_tool_missing"  # type: ignore[index]


def test_leftovers_of_interrupted_pushes(ssh_server: sshd.SSHServer, tmp_path: Path) -> None:
    """A staging dir or temporary file an interrupted push left is never listed as
    part of the tree; an hour later the next push that sends something removes it."""
    src = make_src(tmp_path / "src")
    remote = tmp_path / "remote"
    push(ssh_server, src, ssh_server.dest(remote))
    stale_dir = remote / ".runctl-tmp-0badc0de"
    (stale_dir / "pkg").mkdir(parents=True)
    (stale_dir / "pkg" / "a.py").write_text("half")
    stale_file = remote / "pkg" / ".a.py.runctl-tmp-12345678"
    stale_file.write_text("half")
    fresh_dir = remote / ".runctl-tmp-feedf00d"  # maybe a push running right now
    fresh_dir.mkdir()
    old = time.time() - 7200
    for path in (stale_dir, stale_file):
        os.utime(path, (old, old))
    assert push(ssh_server, src, ssh_server.dest(remote), "--delete")["deleted"] == []
    (src / "pkg" / "a.py").write_text("print('again')\n")
    assert push(ssh_server, src, ssh_server.dest(remote))["sent"] == ["pkg/a.py"]
    assert not stale_dir.exists() and not stale_file.exists() and fresh_dir.exists()


def test_delete_keeps_excluded_remote_files(ssh_server: sshd.SSHServer, tmp_path: Path) -> None:
    src = make_src(tmp_path / "src")
    (src / ".gitignore").write_text("outputs/\n*.log\n")
    remote = tmp_path / "remote"
    push(ssh_server, src, ssh_server.dest(remote))
    (remote / "outputs").mkdir()
    (remote / "outputs" / "model.ckpt").write_text("weights")
    (remote / "pkg" / "__pycache__").mkdir()
    (remote / "pkg" / "__pycache__" / "a.pyc").write_text("c")
    (remote / "train.log").write_text("log")
    (remote / "stale.py").write_text("old")
    (src / "pkg" / "sub" / "b.py").unlink()

    (src / "pkg" / "a.py").write_text("print('edited')\n")
    dry = push(ssh_server, src, ssh_server.dest(remote), "--delete", "--dry-run")
    assert sorted(dry["deleted"]) == ["pkg/sub/b.py", "stale.py"] and dry["dry_run"]
    assert dry["sent"] == ["pkg/a.py"] and dry["bytes"] == len("print('edited')\n")  # what it would send
    assert (remote / "stale.py").exists()  # a dry run changes nothing

    done = push(ssh_server, src, ssh_server.dest(remote), "--delete")
    assert sorted(done["deleted"]) == ["pkg/sub/b.py", "stale.py"]
    assert not (remote / "stale.py").exists() and not (remote / "pkg" / "sub" / "b.py").exists()
    for kept in ("outputs/model.ckpt", "pkg/__pycache__/a.pyc", "train.log"):
        assert (remote / kept).exists(), kept


def test_nested_gitignore_negation_and_include(ssh_server: sshd.SSHServer, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "logs").mkdir(parents=True)
    (src / "data").mkdir()
    (src / ".gitignore").write_text("*.log\n/top.txt\ndata/\n")
    (src / "logs" / ".gitignore").write_text("!keep.log\n")
    (src / "logs" / "keep.log").write_text("k")
    (src / "logs" / "drop.log").write_text("d")
    (src / "logs" / "top.txt").write_text("anchored pattern does not match here")
    (src / "top.txt").write_text("ignored")
    (src / "data" / "small.csv").write_text("1,2")
    (src / "notes.md").write_text("secret")
    (src / ".runctlignore").write_text("notes.md\n")
    remote = tmp_path / "remote"
    doc = push(ssh_server, src, ssh_server.dest(remote), "--include", "data/")
    assert sorted(doc["sent"]) == [
        ".gitignore",
        ".runctlignore",
        "data/small.csv",
        "logs/.gitignore",
        "logs/keep.log",
        "logs/top.txt",
    ]


def test_git_work_tree_selection(ssh_server: sshd.SSHServer, tmp_path: Path) -> None:
    src = tmp_path / "repo"
    src.mkdir()
    subprocess.run(["git", "init", "-q", str(src)], check=True)
    (src / ".gitignore").write_text("wandb/\n")
    (src / "wandb").mkdir()
    (src / "wandb" / "run.bin").write_text("x")
    (src / "tracked.py").write_text("t")
    (src / "untracked.py").write_text("u")
    subprocess.run(["git", "-C", str(src), "add", "tracked.py", ".gitignore"], check=True)
    doc = push(ssh_server, src, ssh_server.dest(tmp_path / "remote"), "--exclude", "untracked.py")
    assert sorted(doc["sent"]) == [".gitignore", "tracked.py"]


def test_remote_path_with_spaces_quotes_and_dollar(ssh_server: sshd.SSHServer, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "we ird $HOME 'q'").mkdir(parents=True)
    (src / "we ird $HOME 'q'" / "f $x.py").write_text("ok")
    remote = tmp_path / "dest $USER 'it''s' dir"
    push(ssh_server, src, ssh_server.dest(remote))
    assert (remote / "we ird $HOME 'q'" / "f $x.py").read_text() == "ok"
    assert push(ssh_server, src, f"ssh://{sshd.ALIAS}{remote}")["sent"] == []


def test_full_mode_swaps_tree_and_keeps_excluded(ssh_server: sshd.SSHServer, tmp_path: Path) -> None:
    src = make_src(tmp_path / "src")
    remote = tmp_path / "remote"
    doc = push(ssh_server, src, ssh_server.dest(remote), "--mode", "full")
    assert doc["mode"] == "full" and len(doc["sent"]) == 5
    assert tree(remote) == selected_tree(src)
    (remote / "checkpoints").mkdir()
    (remote / "checkpoints" / "c.pt").write_text("w")
    (remote / "pkg" / "__pycache__").mkdir()
    (remote / "pkg" / "__pycache__" / "a.pyc").write_text("c")
    (remote / "stale.py").write_text("old")
    (src / ".runctlignore").write_text("checkpoints/\n")
    doc = push(ssh_server, src, ssh_server.dest(remote), "--mode", "full", "--delete")
    assert doc["deleted"] == ["stale.py"]
    assert (remote / "checkpoints" / "c.pt").read_text() == "w"
    assert (remote / "pkg" / "__pycache__" / "a.pyc").read_text() == "c"
    assert not (remote / "stale.py").exists()
    assert not [p for p in remote.parent.iterdir() if "runctl" in p.name]  # no staging leftovers


def test_unknown_host_key_refused_then_accepted(ssh_server: sshd.SSHServer, tmp_path: Path) -> None:
    src = make_src(tmp_path / "src")
    known = tmp_path / "known_hosts"
    known.write_text("")
    args = ["code", "push", str(src), ssh_server.dest(tmp_path / "r"), "-F", str(ssh_server.config)]
    refused = cli("-o", "json", *args, "--known-hosts", str(known))
    assert refused.code == 7
    error = refused.json()["error"]  # type: ignore[index]
    assert error["code"] == "host_key" and "SHA256:" in error["message"]
    assert "--accept-new-host-key" in error["hint"]
    assert not (tmp_path / "r").exists()
    accepted = cli(*args, "--known-hosts", str(known), "--accept-new-host-key")
    assert accepted.code == 0, accepted.err
    assert ssh_server.host_pub in known.read_text()
    assert cli(*args, "--known-hosts", str(known)).code == 0  # now known: no flag needed


def test_changed_host_key_refused_even_with_accept_new(ssh_server: sshd.SSHServer, tmp_path: Path) -> None:
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    known = tmp_path / "known_hosts"
    fake_key = " ".join(Path(f"{other}.pub").read_text().split()[:2])
    known.write_text(f"[127.0.0.1]:{ssh_server.port} {fake_key}\n")
    src, dest = make_src(tmp_path / "src"), ssh_server.dest(tmp_path / "r")
    result = run_push(ssh_server, src, dest, "--known-hosts", str(known), "--accept-new-host-key", text=True)
    assert result.code == 7 and "does not match" in result.err and "Traceback" not in result.err


def test_wrong_client_key_refused(ssh_server: sshd.SSHServer, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong)], check=True)
    src = make_src(tmp_path / "src")
    # A config without the right key: ssh's -i adds a key to IdentityFile's, asyncssh's replaces them.
    config = tmp_path / "ssh_config"
    config.write_text(
        "".join(x for x in ssh_server.config.read_text().splitlines(True) if "IdentityFile" not in x)
    )
    dest, args = ssh_server.dest(tmp_path / "r"), ("-i", str(wrong))
    result = cli("-o", "json", "code", "push", str(src), dest, "-F", str(config), *args)
    assert result.code == 3
    assert result.json()["error"]["code"] == "credentials"  # type: ignore[index]


def test_connection_refused(ssh_server: sshd.SSHServer, tmp_path: Path) -> None:
    src, dest = make_src(tmp_path / "src"), ssh_server.dest(tmp_path / "r")
    result = run_push(ssh_server, src, dest, "--port", str(sshd.free_port()), text=True)
    assert result.code == 5 and "refused" in result.err and "hint:" in result.err


def test_remote_not_writable(ssh_server: sshd.SSHServer, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where a directory should be")
    result = run_push(ssh_server, make_src(tmp_path / "src"), ssh_server.dest(blocker / "sub"))
    assert result.code == 9
    assert result.json()["error"]["code"] == "remote_not_writable"  # type: ignore[index]


def test_watch_pushes_each_change(ssh_server: sshd.SSHServer, tmp_path: Path, client: Any) -> None:
    from runctl.codesync.push import PushOptions, PushResult, watch_async
    from runctl.remote.target import ConnectOptions

    src = make_src(tmp_path / "src")
    remote = tmp_path / "remote"
    results: list[PushResult] = []

    def on_result(result: PushResult) -> None:
        results.append(result)
        if len(results) == 1:
            (src / "pkg" / "new.py").write_text("new")

    options = PushOptions(ssh=ConnectOptions(config=ssh_server.config, client=client))
    asyncio.run(
        asyncio.wait_for(
            watch_async(
                src, ssh_server.dest(remote), options, on_result, interval=0.05, settle=0.05, max_pushes=2
            ),
            timeout=30,
        )
    )
    assert results[1].sent == ["pkg/new.py"]
    assert (remote / "pkg" / "new.py").read_text() == "new"


def test_one_exec_channel_per_push(ssh_server: sshd.SSHServer, tmp_path: Path) -> None:
    """Listing, hashes, mtime fixes and the tar stream share one remote shell: each exec
    channel costs a login shell start (~100-150 ms with conda/pyenv in .bashrc)."""
    src = make_src(tmp_path / "src")
    remote = tmp_path / "remote"

    def channels(*extra: str) -> tuple[int, dict[str, Any]]:
        before = ssh_server.exec_sessions()
        doc = push(ssh_server, src, ssh_server.dest(remote), *extra)
        return ssh_server.exec_sessions() - before, doc

    assert channels()[0] == 1  # first push: listing (of nothing) + tar
    used, doc = channels()
    assert used == 1 and doc["sent"] == []  # no change: the listing only
    os.utime(src / "big.bin")  # hashed on both sides, mtime fixed remotely
    (src / "pkg" / "a.py").write_text("print('changed')\n")
    used, doc = channels()
    assert used == 1 and doc["sent"] == ["pkg/a.py"]
    assert channels()[0] == 1 and tree(remote) == selected_tree(src)
    (src / "run.sh").unlink()
    used, doc = channels("--delete")  # nothing to send: the delete shares the shell too
    assert used == 1 and doc["deleted"] == ["run.sh"]
    # One plan that sends, fixes an mtime after a hash match and deletes: one script.
    os.utime(src / "big.bin", (1_000_000_000, 1_000_000_000))
    (src / "pkg" / "a.py").write_text("print('again')\n")
    (src / "pkg" / "sub" / "b.py").unlink()
    used, doc = channels("--delete")
    assert used == 1 and doc["sent"] == ["pkg/a.py"] and doc["deleted"] == ["pkg/sub/b.py"]
    assert (remote / "big.bin").stat().st_mtime == 1_000_000_000
    assert tree(remote) == selected_tree(src)
    assert channels("--mode", "full")[0] == 1  # staging, tar and swap in one script


def test_failed_tar_never_runs_streamed_bytes(ssh_server: sshd.SSHServer, tmp_path: Path) -> None:
    """When the remote tar fails, what is still being streamed must not reach a shell."""
    marker = tmp_path / "pwned"
    src = tmp_path / "src"
    src.mkdir()
    payload = f"\nexit 0\n{sshd.ALIAS}\ntouch {marker}\nlast\ntouch {marker}\n"
    (src / "evil.sh").write_text(payload * 2000)
    blocker = tmp_path / "file"
    blocker.write_text("a file where a directory should be")
    result = run_push(ssh_server, src, ssh_server.dest(blocker / "sub"))
    assert result.code == 9
    assert not marker.exists()


def test_compress_auto_judges_the_link_by_its_round_trip(ssh_server: sshd.SSHServer, tmp_path: Path) -> None:
    """Through a slow link that reaches us on a loopback port (as a tunnel or a ProxyCommand
    would), auto compresses; straight to loopback it does not. (Both pushes send more than
    MEASURE_ABOVE: below it, auto compresses without measuring.)"""
    from tests import linkshaper

    src = make_src(tmp_path / "src")
    (src / "notes.txt").write_text("all work and no play\n" * 60_000)
    assert (src / "notes.txt").stat().st_size > MEASURE_ABOVE
    for i in range(3000):  # enough to plan for a while: the probe must not count that time
        (src / "many" / f"d{i // 100}").mkdir(parents=True, exist_ok=True)
        (src / "many" / f"d{i // 100}" / f"m{i}.py").write_text(f"x = {i}\n")
    direct = push(ssh_server, src, ssh_server.dest(tmp_path / "direct"))
    assert "compression" not in direct
    with linkshaper.shaped(ssh_server.port, 200, 5) as port:  # 10 ms round trip
        known = tmp_path / "known_hosts"  # the same host key, seen on the proxy's port
        known.write_text(f"[127.0.0.1]:{port} {ssh_server.host_pub_line}\n")
        via = ("--port", str(port), "--known-hosts", str(known))
        slow = push(ssh_server, src, ssh_server.dest(tmp_path / "slow"), *via)
    assert slow["compression"] == "gzip"
    assert tree(tmp_path / "slow") == selected_tree(src)


def test_compress_auto_takes_the_round_trip_a_digest_request_timed(
    ssh_server: sshd.SSHServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A push that asked the remote for a digest (a large file whose mtime alone moved)
    has timed the link with that request: auto decides by it, with no probe of its own.
    Through a 10 ms link it compresses; straight to loopback it does not."""
    from runctl.remote.shell import RemoteShell
    from tests import linkshaper

    def no_probe(self: RemoteShell) -> float:
        raise AssertionError("the link was probed although a digest request had timed it")

    src = make_src(tmp_path / "src")
    notes = src / "notes.txt"
    for name, via in (("direct", ()), ("slow", None)):
        notes.write_text("all work and no play\n" * 60_000)
        remote = tmp_path / name
        with contextlib.ExitStack() as stack:
            if via is None:
                port = stack.enter_context(linkshaper.shaped(ssh_server.port, 200, 5))  # 10 ms
                known = tmp_path / "known_hosts"  # the same host key, seen on the proxy's port
                known.write_text(f"[127.0.0.1]:{port} {ssh_server.host_pub_line}\n")
                via = ("--port", str(port), "--known-hosts", str(known))
            push(ssh_server, src, ssh_server.dest(remote), *via)
            big = (src / "big.bin").read_bytes()
            (src / "big.bin").write_bytes(bytes(reversed(big)))  # same size, new mtime
            notes.write_text("all work and no more play\n" * 60_000)
            with monkeypatch.context() as m:
                m.setattr(RemoteShell, "round_trip", no_probe)
                doc = push(ssh_server, src, ssh_server.dest(remote), *via)
        assert sorted(doc["sent"]) == ["big.bin", "notes.txt"] and doc["bytes"] > MEASURE_ABOVE
        assert ("compression" in doc) == (name == "slow"), doc.get("compression")
        assert tree(remote) == selected_tree(src)


def test_compress_auto_sends_a_small_change_compressed_without_measuring(
    ssh_server: sshd.SSHServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under MEASURE_ABOVE bytes to send, auto compresses on any link and asks no round
    trip of it (a WAN round trip costs more than either choice there)."""
    from runctl.remote.shell import RemoteShell

    def no_probe(self: RemoteShell) -> float:
        raise AssertionError("the link was measured for a small push")

    monkeypatch.setattr(RemoteShell, "round_trip", no_probe)
    src = make_src(tmp_path / "src")
    doc = push(ssh_server, src, ssh_server.dest(tmp_path / "dst"))
    assert doc["compression"] == "gzip" and doc["bytes"] < MEASURE_ABOVE
    assert tree(tmp_path / "dst") == selected_tree(src)


def test_shell_startup_files_that_print_do_not_break_a_push(
    noisy_server: sshd.SSHServer, tmp_path: Path
) -> None:
    """Whatever the login shell prints before runctl's driver starts is skipped: every
    answer opens with its own marker line."""
    banner = subprocess.run(
        ["ssh", "-F", str(noisy_server.config), sshd.ALIAS, "true"], capture_output=True, text=True
    )
    assert "Welcome to the GPU cluster" in banner.stdout  # the noise is really there
    src = make_src(tmp_path / "src")
    remote = tmp_path / "remote"
    for mode in ("incremental", "full", "incremental"):
        doc = push(noisy_server, src, noisy_server.dest(remote), "--mode", mode)
        assert doc["ok"] and tree(remote) == selected_tree(src)
    (src / "pkg" / "a.py").write_text("print('after the banner')\n")
    assert push(noisy_server, src, noisy_server.dest(remote))["sent"] == ["pkg/a.py"]


def test_dev_null_ssh_config_means_no_config(ssh_server: sshd.SSHServer, tmp_path: Path) -> None:
    """`-F /dev/null` is the usual "no ssh config": everything else comes from the flags."""
    src = make_src(tmp_path / "src")
    dest = f"{ssh_server.user}@127.0.0.1:{tmp_path / 'remote'}"
    flags = (
        "-i",
        str(ssh_server.key),
        "--port",
        str(ssh_server.port),
        "--known-hosts",
        str(ssh_server.known_hosts),
    )
    result = cli("-o", "json", "code", "push", str(src), dest, "-F", "/dev/null", *flags)
    assert result.code == 0, result.out + result.err
    assert tree(tmp_path / "remote") == selected_tree(src)


def test_backslash_names_are_pushed_in_both_modes(ssh_server: sshd.SSHServer, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    for name in ("back\\slash.py", "C:\\windows-path.txt", "d/x\\y"):
        (src / name).write_text(name)
    for mode in ("incremental", "full"):
        doc = push(ssh_server, src, ssh_server.dest(tmp_path / mode), "--mode", mode)
        assert sorted(doc["sent"]) == ["C:\\windows-path.txt", "back\\slash.py", "d/x\\y"]
        assert not doc["warnings"] and tree(tmp_path / mode) == tree(src)
