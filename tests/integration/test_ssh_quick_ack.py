"""remote/quick_ack.py on a real connection: under runctl's event loop (uvloop, which binds
a protocol's data_received when the transport is made) the reads of an asyncssh session
to the test sshd go through the wrapper, and it found the connection's TCP socket."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from runctl.aio import run
from runctl.remote import open_remote
from runctl.remote.asyncssh_remote import AsyncSSHRemote
from runctl.remote.target import ConnectOptions, parse_dest
from tests import sshd

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not hasattr(socket, "TCP_QUICKACK"), reason="TCP_QUICKACK is Linux-only"),
]


def test_an_asyncssh_session_acks_its_reads_at_once(
    ssh_server: sshd.SSHServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)

    async def session() -> tuple[bytes, Any]:
        target = parse_dest(ssh_server.dest("/"))
        remote = await open_remote(target, ConnectOptions(config=ssh_server.config, client="asyncssh"))
        try:
            assert isinstance(remote, AsyncSSHRemote)
            proc = await remote.start("echo hello")
            out = await proc.stdout.read()
            await proc.wait()
            # Set by the wrapper only, at the connection's first read.
            return out, remote.conn.__dict__.get("_runctl_ack_sock")
        finally:
            await remote.close()

    out, sock = run(session())
    assert out == b"hello\n"
    assert sock and sock.family == socket.AF_INET  # the loopback TCP socket the session runs on
