"""The remote checks a push's unpacked files against the bytes sent before it puts any of
them in place (remote.unpack_check), against the real sshd on loopback, over both SSH
clients. The stream is damaged after runctl hashed it, as a broken link, disk or tar
would: the push fails with exit 5 and the remote tree is the old one, untouched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runctl.stores import remote_tree, sftp
from tests import sshd
from tests.conftest import CliResult, cli

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_ssh_agent", "each_ssh_client")]


def push(server: sshd.SSHServer, src: Path, dest: str, *extra: str) -> CliResult:
    return cli("-o", "json", "code", "push", str(src), dest, "-F", str(server.config), *extra)


class Flipping:
    """A sink that flips one bit of the first ``needle`` it carries (after runctl hashed it)."""

    def __init__(self, sink: Any, needle: bytes) -> None:
        self.sink = sink
        self.needle = needle
        self.flipped = False

    def write(self, data: bytes) -> None:
        at = -1 if self.flipped else bytes(data).find(self.needle)
        if at >= 0:
            damaged = bytearray(data)
            damaged[at] ^= 0x01
            data = bytes(damaged)
            self.flipped = True
        self.sink.write(data)

    async def drain(self) -> None:
        await self.sink.drain()


def damage_streams(monkeypatch: pytest.MonkeyPatch, needle: bytes) -> list[Flipping]:
    sinks: list[Flipping] = []
    real = remote_tree.send_tar

    async def send_tar(items: Any, src: Any, sink: Any, *args: Any, **kwargs: Any) -> None:
        sinks.append(Flipping(sink, needle))
        await real(items, src, sinks[-1], *args, **kwargs)

    monkeypatch.setattr(remote_tree, "send_tar", send_tar)
    return sinks


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def source(tmp_path: Path, version: str) -> Path:
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True, exist_ok=True)
    (src / "pkg" / "model.py").write_text(f"WEIGHTS = 'PAYLOAD-{version}'\n")
    (src / "it's a $name.txt").write_text(f"quoted {version}\n")
    (src / "big.bin").write_bytes(version.encode() * 300_000)  # sent as its own writes
    return src


@pytest.mark.parametrize("mode", ["incremental", "full"])
def test_a_damaged_unpack_is_refused_before_anything_moves(
    ssh_server: sshd.SSHServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    remote = tmp_path / "remote" / "proj"
    dest = ssh_server.dest(remote)
    first = push(ssh_server, source(tmp_path, "v1"), dest, "--mode", mode)
    assert first.code == 0, first.err
    assert first.json()["verified"] in ("sha256", "md5"), first.out  # type: ignore[index]
    before = files(remote)

    src = source(tmp_path, "v2")
    sinks = damage_streams(monkeypatch, b"PAYLOAD-v2")
    res = push(ssh_server, src, dest, "--mode", mode)

    assert sinks and all(s.flipped for s in sinks)
    assert res.code == 5, (res.code, res.out, res.err)
    assert "Traceback" not in res.err
    doc = res.json()
    assert doc["ok"] is False and doc["error"]["code"] == "integrity", doc  # type: ignore[index]
    assert "not the bytes sent" in doc["error"]["message"]  # type: ignore[index]
    assert files(remote) == before  # the old tree, whole: nothing was put in place
    assert not [p for p in remote.parent.rglob("*") if ".runctl-tmp-" in p.name]

    monkeypatch.undo()
    again = push(ssh_server, src, dest, "--mode", mode)
    assert again.code == 0, again.err
    assert files(remote) == files(src)


def test_a_damaged_first_push_leaves_nothing(
    ssh_server: sshd.SSHServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote = tmp_path / "remote" / "new"
    damage_streams(monkeypatch, b"PAYLOAD-v1")
    res = push(ssh_server, source(tmp_path, "v1"), ssh_server.dest(remote))
    assert res.code == 5, res.err
    assert not remote.exists()
    assert not [p.name for p in tmp_path.rglob("*") if "runctl" in p.name]  # no staging left anywhere


def test_names_a_shell_could_misread_are_checked(ssh_server: sshd.SSHServer, tmp_path: Path) -> None:
    """The check's fragment names every file it reads: quotes, newlines, dashes, globs."""
    src = tmp_path / "src"
    src.mkdir()
    names = ["-n", "a b", "q'uote", 'd"q', "new\nline", "$(touch PWNED)", "*", "back\\slash", "ünï"]
    for i, name in enumerate(names):
        (src / name).write_text(f"content {i}\n")
    remote = tmp_path / "remote" / "odd"
    res = push(ssh_server, src, ssh_server.dest(remote))
    assert res.code == 0, res.err
    assert res.json()["verified"] in ("sha256", "md5")  # type: ignore[index]
    assert files(remote) == files(src)
    assert not list(tmp_path.rglob("PWNED"))


@pytest.mark.parametrize("each_ssh_client", ["asyncssh"], indirect=True)
def test_files_sent_over_sftp_are_checked_before_they_move(
    no_tar_server: sshd.SSHServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, each_ssh_client: str
) -> None:
    """Without tar, files go over SFTP into a staging directory and the remote checks
    them there, as it checks an unpacked stream: a staged file damaged after it was
    written (a disk, a broken SFTP server) fails the push with exit 5 and nothing moves.
    Only asyncssh has an SFTP channel (openssh refuses such a remote: test_code_push)."""
    remote = tmp_path / "remote" / "proj"
    dest = no_tar_server.dest(remote)
    first = push(no_tar_server, source(tmp_path, "v1"), dest)
    assert first.code == 0, first.err
    assert first.json()["verified"] in ("sha256", "md5"), first.out  # type: ignore[index]
    assert files(remote) == files(tmp_path / "src")
    before = files(remote)

    damaged: list[Path] = []
    real = sftp._StagingWriter.write

    async def write(self: Any, path: str, *args: Any) -> None:
        await real(self, path, *args)
        staged = [p for p in remote.glob(".runctl-tmp-*/" + path) if p.is_file()]
        if path == "pkg/model.py" and staged:
            data = bytearray(staged[0].read_bytes())
            data[0] ^= 0x01
            staged[0].write_bytes(bytes(data))
            damaged.append(staged[0])

    monkeypatch.setattr(sftp._StagingWriter, "write", write)
    src = source(tmp_path, "v2")
    res = push(no_tar_server, src, dest)
    assert damaged, "the staged file was never found to damage"
    assert res.code == 5, (res.code, res.out, res.err)
    doc = res.json()
    assert doc["ok"] is False and doc["error"]["code"] == "integrity", doc  # type: ignore[index]
    assert files(remote) == before  # nothing was put in place, not even the undamaged files
    assert not [p for p in remote.parent.rglob("*") if ".runctl-tmp-" in p.name]

    monkeypatch.undo()
    monkeypatch.setenv("RUNCTL_SSH_CLIENT", each_ssh_client)
    again = push(no_tar_server, src, dest)
    assert again.code == 0, again.err
    assert again.json()["verified"] in ("sha256", "md5")  # type: ignore[index]
    assert files(remote) == files(src)
