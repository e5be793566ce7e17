"""asyncssh's user authentication in one round trip (remote/asyncssh_auth.py), read from
the requests a real sshd logs at DEBUG1: no "none" request, a local key signed at once,
a refused key followed by the next one, an agent's key still offered before it is used."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import sshd
from tests.conftest import cli
from tests.sshd import ALIAS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def debug_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sshd.SSHServer]:
    server = sshd.start(tmp_path_factory.mktemp("sshd-debug"), log_level="DEBUG1")
    try:
        yield server
    finally:
        sshd.stop(server)


@pytest.fixture(autouse=True)
def _asyncssh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNCTL_SSH_CLIENT", "asyncssh")
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)


def requests_of(server: sshd.SSHServer) -> list[str]:
    """The auth requests of the last login in the log: method, and "test" for an offer
    (a public key without a signature, which sshd answers with PK_OK: "Postponed")."""
    log = (server.dir / "sshd.log").read_text()
    login = log.rsplit("Connection from 127.0.0.1", 1)[-1]
    found = []
    for line in login.splitlines():
        if m := re.search(r"userauth-request for user \S+ service ssh-connection method (\S+)", line):
            found.append(m.group(1))
        elif "userauth_pubkey: publickey test" in line:
            found[-1] += " test"
    return found


def exec_true(server: sshd.SSHServer, config: Path) -> None:
    result = cli("exec", ALIAS, "-F", str(config), "--", "true")
    assert result.code == 0, result.err


def test_a_local_key_is_signed_in_the_first_request(debug_sshd: sshd.SSHServer) -> None:
    exec_true(debug_sshd, debug_sshd.config)
    assert requests_of(debug_sshd) == ["publickey"]


def test_a_refused_key_is_followed_by_the_next_one(debug_sshd: sshd.SSHServer, tmp_path: Path) -> None:
    other = tmp_path / "other_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    right = f"  IdentityFile {debug_sshd.dir}/client_ed25519\n"
    text = debug_sshd.config.read_text()
    assert right in text
    config = tmp_path / "ssh_config"
    config.write_text(text.replace(right, f"  IdentityFile {other}\n{right}"))
    exec_true(debug_sshd, config)
    assert requests_of(debug_sshd) == ["publickey", "publickey"]  # refused, then accepted


def test_an_agents_key_is_offered_before_it_is_used(
    debug_sshd: sshd.SSHServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.05)
        subprocess.run(["ssh-add", "-q", str(debug_sshd.dir / "client_ed25519")], env=env, check=True)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        exec_true(debug_sshd, debug_sshd.config)
    finally:
        agent.terminate()
        agent.wait(timeout=10)
    # An agent may ask its user to confirm each signature: nothing is signed unoffered.
    assert requests_of(debug_sshd) == ["publickey test", "publickey"]
