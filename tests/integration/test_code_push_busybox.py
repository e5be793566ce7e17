"""`runctl code push` to remotes that have BusyBox tools only (Alpine-like), with and
without perl, and the racy-edit rule on whole-second remotes (real sshd on loopback)."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import sshd
from tests.integration.conftest import busybox_bin
from tests.integration.test_code_push import make_src, push, run_push, selected_tree, tree

pytestmark = pytest.mark.integration

LISTERS = {"busybox_server": "stat", "busybox_perl_server": "perl"}


@pytest.fixture(autouse=True)
def _no_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)  # only the test key may be used


@pytest.fixture(autouse=True, params=["asyncssh", "openssh"])
def client(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    name: str = request.param
    monkeypatch.setenv("RUNCTL_SSH_CLIENT", name)
    return name


@pytest.fixture(params=sorted(LISTERS))
def bb(request: pytest.FixtureRequest) -> tuple[sshd.SSHServer, str]:
    """Each BusyBox remote, with the lister it must be listed by."""
    server: sshd.SSHServer = request.getfixturevalue(request.param)
    return server, LISTERS[request.param]


def test_busybox_remote_push_cycle(bb: tuple[sshd.SSHServer, str], tmp_path: Path, client: str) -> None:
    """First push, no change, edits, a touch-only change (BusyBox touch takes no ISO
    stamp with nanoseconds), later pushes, --delete and full mode, all into the same
    existing directory; the lister is reported in JSON and in -v."""
    server, lister = bb
    src = make_src(tmp_path / "src")
    remote = tmp_path / "remote"
    dest = server.dest(remote)
    first = push(server, src, dest)
    assert sorted(first["sent"]) == ["big.bin", "link.py", "pkg/a.py", "pkg/sub/b.py", "run.sh"]
    assert tree(remote) == selected_tree(src)
    assert first["verified"] == "sha256"  # BusyBox sha256sum checked the unpack
    again = push(server, src, dest)
    assert again["sent"] == [] and again["unchanged"] == 5
    assert again["remote"]["lister"] == lister and "openssl" not in again["remote"]["tools"]
    verbose = run_push(server, src, dest, "-v", text=True)
    assert verbose.code == 0, verbose.err
    assert f"listed by {lister}, tools: " in verbose.err + verbose.out

    (src / "pkg" / "a.py").write_text("print('edited on busybox')\n")
    assert push(server, src, dest)["sent"] == ["pkg/a.py"]
    # The stamp of the issue: BusyBox touch refused it, and every later push failed.
    stamp = 981173106.789000034  # 2001-02-03T04:05:06.789000034Z
    os.utime(src / "big.bin", (stamp, stamp))
    touched = push(server, src, dest)
    assert touched["sent"] == [] and touched["unchanged"] == 5
    assert (remote / "big.bin").stat().st_mtime == 981173106  # whole seconds: what BusyBox can set
    for _ in range(2):
        assert push(server, src, dest)["sent"] == []
    assert tree(remote) == selected_tree(src)

    (remote / "stale.py").write_text("old")
    (src / "pkg" / "sub" / "b.py").unlink()
    done = push(server, src, dest, "--delete")
    assert sorted(done["deleted"]) == ["pkg/sub/b.py", "stale.py"]
    assert tree(remote) == selected_tree(src)
    (src / "new.py").write_text("new in full mode\n")
    full = push(server, src, dest, "--mode", "full")
    assert full["mode"] == "full" and "new.py" in full["sent"]
    assert tree(remote) == selected_tree(src)
    assert push(server, src, dest)["sent"] == []


def test_busybox_names_that_need_care(bb: tuple[sshd.SSHServer, str], tmp_path: Path) -> None:
    """Newlines, spaces, backslashes, quotes and unicode in names and link targets
    survive the BusyBox listers (stat's records are framed by a random token)."""
    server, _ = bb
    src = tmp_path / "src"
    (src / "sp ace dir").mkdir(parents=True)
    names = ["new\nline.txt", "back\\slash.py", "sp ace dir/q'uote $x.py", "ünïcødé.md", "li' -> 'nk"]
    for name in names[:-1]:
        (src / name).write_text(name)
    (src / names[-1]).symlink_to("sp ace dir/q'uote $x.py")
    (src / "nl-link").symlink_to("new\nline.txt")
    remote = tmp_path / "remote"
    push(server, src, server.dest(remote))
    assert tree(remote) == tree(src)
    assert push(server, src, server.dest(remote))["sent"] == []
    (src / "new\nline.txt").write_text("changed, and longer than before")
    assert push(server, src, server.dest(remote))["sent"] == ["new\nline.txt"]
    assert tree(remote) == tree(src)


def _wait_for_second_start() -> None:
    """Sleep to just after a whole second: the first rounds then share one second."""
    time.sleep(1.02 - time.time() % 1)


def racy_rounds(server: sshd.SSHServer, tmp_path: Path, rounds: int = 8) -> None:
    """Rewrite a config file with the same size and push at once, ``rounds`` times: after
    every push the remote holds exactly what was pushed (each push checks the content
    of a file whose mtime cannot tell; the issue saw `sent: []` and old content)."""
    src = tmp_path / "src"
    src.mkdir()
    config = src / "config.yaml"
    config.write_text("lr=0.0\n")
    remote = tmp_path / "remote"
    push(server, src, server.dest(remote))
    seconds = []
    _wait_for_second_start()
    for i in range(1, rounds + 1):
        config.write_text(f"lr=0.{i}\n")
        seconds.append(int(config.stat().st_mtime))
        doc = push(server, src, server.dest(remote))
        assert (remote / "config.yaml").read_text() == f"lr=0.{i}\n", (i, doc)
        assert doc["sent"] == ["config.yaml"], (i, doc)
    # The race was really run: some edits fell in the second of the one before.
    assert any(a == b for a, b in itertools.pairwise(seconds)), seconds
    assert push(server, src, server.dest(remote))["sent"] == []  # and no change is no change
    assert tree(remote) == tree(src)


def test_racy_same_size_edits_on_busybox(bb: tuple[sshd.SSHServer, str], tmp_path: Path) -> None:
    racy_rounds(bb[0], tmp_path)


def test_racy_same_size_edits_over_sftp(no_tar_server: sshd.SSHServer, tmp_path: Path, client: str) -> None:
    """Without tar, files go over SFTP with whole-second mtimes: the same rule holds. The
    system ssh client has no SFTP channel for runctl: there the push is refused (exit 10)."""
    if client == "openssh":
        src = make_src(tmp_path / "src")
        refused = run_push(no_tar_server, src, no_tar_server.dest(tmp_path / "remote"))
        assert refused.code == 10, refused.out + refused.err
        return
    racy_rounds(no_tar_server, tmp_path)


def test_racy_same_size_edits_on_gnu(ssh_server: sshd.SSHServer, tmp_path: Path) -> None:
    racy_rounds(ssh_server, tmp_path, rounds=4)


@pytest.fixture(scope="module")
def listless_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sshd.SSHServer]:
    """BusyBox without stat (and no perl): nothing can list the tree. A fake `apk` on the
    PATH stands for Alpine's package manager, which the hint must name."""
    tools = busybox_bin(tmp_path_factory.mktemp("listless-bin"))
    (tools / "stat").unlink()
    (tools / "apk").write_text("#!/bin/sh\nexit 1\n")
    (tools / "apk").chmod(0o755)
    home = tmp_path_factory.mktemp("listless-home")
    server = sshd.start(tmp_path_factory.mktemp("sshd-listless"), extra=[f"SetEnv PATH={tools} HOME={home}"])
    try:
        yield server
    finally:
        sshd.stop(server)


def test_no_lister_names_the_tool_and_apk(listless_server: sshd.SSHServer, tmp_path: Path) -> None:
    src = make_src(tmp_path / "src")
    remote = tmp_path / "remote"
    push(listless_server, src, listless_server.dest(remote))  # a first push needs no listing
    failed = run_push(listless_server, src, listless_server.dest(remote))
    assert failed.code == 10, failed.out + failed.err
    error = failed.json()["error"]  # type: ignore[index]
    assert error["code"] == "remote_tool_missing" and "find" in error["message"]
    assert "apk add findutils" in error["hint"] and "apt-get" not in error["hint"]
