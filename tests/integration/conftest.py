"""Integration fixtures: one private OpenSSH sshd per session (see tests/sshd.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import sshd


@pytest.fixture(scope="session")
def ssh_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sshd.SSHServer]:
    server = sshd.start(tmp_path_factory.mktemp("sshd"))
    try:
        yield server
    finally:
        sshd.stop(server)
