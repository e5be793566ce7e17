"""Integration fixtures: one private OpenSSH sshd per session (see tests/sshd.py), and a
fault-injecting proxy in front of the S3 server (tests/faultproxy.py)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import sshd
from tests.conftest import S3Server, botocore_client
from tests.faultproxy import FaultProxy, running


@pytest.fixture
def proxy(s3_env: S3Server) -> Iterator[FaultProxy]:
    with running(s3_env.endpoint) as p:
        yield p


@pytest.fixture
def direct(s3_env: S3Server) -> Any:
    """A botocore client that talks to SeaweedFS itself, bypassing the proxy."""
    return botocore_client(s3_env.endpoint, s3_env.server.access_key, s3_env.server.secret_key)


@pytest.fixture(scope="session")
def ssh_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sshd.SSHServer]:
    server = sshd.start(tmp_path_factory.mktemp("sshd"))
    try:
        yield server
    finally:
        sshd.stop(server)


NO_TAR_TOOLS = [
    *("sh", "bash", "find", "mkdir", "cat", "dd", "tail", "head", "mv", "rm", "chmod", "touch"),
    *("gzip", "sha256sum", "md5sum", "openssl", "env", "ls", "sed", "grep", "cut", "tr", "sort"),
    *("uniq", "wc", "dirname", "basename", "readlink", "uname", "id", "mktemp", "date"),
]


@pytest.fixture(scope="session")
def no_tar_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sshd.SSHServer]:
    """A real sshd whose sessions see a PATH without tar (the usual tools, symlinked).
    HOME points at an empty directory too: the login shell must not run the real
    ~/.bashrc with that PATH (a pyenv init there rewrites pyenv's shims, and with
    half the tools missing it leaves none)."""
    tools = tmp_path_factory.mktemp("no-tar-bin")
    for name in NO_TAR_TOOLS:
        found = shutil.which(name)
        if found:
            (tools / name).symlink_to(found)
    assert not (tools / "tar").exists()
    home = tmp_path_factory.mktemp("no-tar-home")
    server = sshd.start(tmp_path_factory.mktemp("sshd-no-tar"), extra=[f"SetEnv PATH={tools} HOME={home}"])
    try:
        yield server
    finally:
        sshd.stop(server)


@pytest.fixture(scope="session")
def noisy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sshd.SSHServer]:
    """A real sshd whose user's shell startup files print to stdout, as many managed GPU
    boxes do (a welcome banner in ~/.bashrc, sourced by bash even for `ssh host cmd`)."""
    home = tmp_path_factory.mktemp("noisy-home")
    banner = "echo \"Welcome to the GPU cluster! runctl-list gnu tar\"\nprintf 'no newline at the end'\n"
    for name in (".bashrc", ".profile", ".bash_profile"):
        (home / name).write_text(banner)
    server = sshd.start(tmp_path_factory.mktemp("sshd-noisy"), extra=[f"SetEnv HOME={home}"])
    try:
        yield server
    finally:
        sshd.stop(server)


def busybox_bin(folder: Path, *extra: str) -> Path:
    """A PATH directory holding only BusyBox applets (sh is BusyBox ash; find, tar, stat,
    touch, sha256sum are BusyBox's), plus ``extra`` tools from this machine."""
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.fail("busybox is not installed (apt-get install -y busybox; .ci/run installs it)")
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for name in [*applets, "busybox"]:
        (folder / name).symlink_to(busybox)
    for name in extra:
        found = shutil.which(name)
        assert found, name
        (folder / name).symlink_to(found)
    return folder


def _busybox_sshd(tmp_path_factory: pytest.TempPathFactory, name: str, *extra: str) -> sshd.SSHServer:
    tools = busybox_bin(tmp_path_factory.mktemp(f"{name}-bin"), *extra)
    home = tmp_path_factory.mktemp(f"{name}-home")  # no ~/.bashrc of the real user with this PATH
    return sshd.start(tmp_path_factory.mktemp(f"sshd-{name}"), extra=[f"SetEnv PATH={tools} HOME={home}"])


@pytest.fixture(scope="session")
def busybox_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sshd.SSHServer]:
    """A real sshd whose sessions see BusyBox tools only (an Alpine-like container): no
    GNU find, tar, touch or stat, no perl, no openssl."""
    server = _busybox_sshd(tmp_path_factory, "busybox")
    try:
        yield server
    finally:
        sshd.stop(server)


@pytest.fixture(scope="session")
def busybox_perl_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sshd.SSHServer]:
    """BusyBox tools plus perl (the tree is listed by perl, written by BusyBox tar and touch)."""
    server = _busybox_sshd(tmp_path_factory, "busybox-perl", "perl")
    try:
        yield server
    finally:
        sshd.stop(server)


@pytest.fixture
def no_ssh_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the test key may be used (a developer's agent would offer others)."""
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)


@pytest.fixture(params=["asyncssh", "openssh"])
def each_ssh_client(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both transports of the remote seam, chosen as a user would (RUNCTL_SSH_CLIENT)."""
    name: str = request.param
    monkeypatch.setenv("RUNCTL_SSH_CLIENT", name)
    return name
