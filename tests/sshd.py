"""A private OpenSSH sshd on 127.0.0.1 and a free port, for tests and benchmarks.

Its own host key, client key, authorized_keys, known_hosts and a client ssh_config
with a Host alias, all in one fresh directory: the developer's ~/.ssh is never used,
and the system sshd is never touched.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"  # sshd refuses to start unless run by its absolute path
ALIAS = "runctl-test-host"


@dataclass
class SSHServer:
    dir: Path
    port: int
    user: str
    pid: int

    @property
    def config(self) -> Path:
        """Client ssh_config: Host ALIAS -> this server, with key and known_hosts."""
        return self.dir / "ssh_config"

    @property
    def key(self) -> Path:
        return self.dir / "client_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.dir / "known_hosts"

    @property
    def host_pub_line(self) -> str:
        """``<type> <base64>`` of the host key, as known_hosts lines carry it."""
        return " ".join((self.dir / "host_ed25519.pub").read_text().split()[:2])

    @property
    def host_pub(self) -> str:
        return (self.dir / "host_ed25519.pub").read_text().split()[1]

    def exec_sessions(self) -> int:
        """Exec channels opened so far (needs log_level VERBOSE)."""
        log = self.dir / "sshd.log"
        return log.read_text().count("Starting session: command") if log.exists() else 0

    def dest(self, path: str | Path) -> str:
        return f"{ALIAS}:{path}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


def start(root: Path, log_level: str = "VERBOSE", extra: Sequence[str] = ()) -> SSHServer:
    """Start sshd with everything under ``root`` (a fresh directory). At VERBOSE, sshd.log
    has one "Starting session" line per exec channel (tests count them). ``extra``: more
    sshd_config lines (e.g. ``SetEnv PATH=...`` for a remote that lacks a tool)."""
    if not os.access(SSHD, os.X_OK):
        raise RuntimeError(
            f"{SSHD} is missing: apt-get install -y --no-install-recommends "
            "openssh-server openssh-client rsync"
        )
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)
    port, user = free_port(), getpass.getuser()
    _keygen(root / "host_ed25519")
    _keygen(root / "client_ed25519")
    (root / "authorized_keys").write_text((root / "client_ed25519.pub").read_text())
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privilege-separation dir
    (root / "sshd_config").write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {root}/host_ed25519",
                f"PidFile {root}/sshd.pid",
                f"AuthorizedKeysFile {root}/authorized_keys",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "PermitRootLogin prohibit-password",
                "StrictModes no",
                f"AllowUsers {user}",
                "Subsystem sftp internal-sftp",
                "MaxSessions 64",
                "MaxStartups 64:30:128",
                f"LogLevel {log_level}",
                *extra,
                "",
            ]
        )
    )
    host_pub = " ".join((root / "host_ed25519.pub").read_text().split()[:2])
    (root / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub}\n")
    (root / "ssh_config").write_text(
        "\n".join(
            [
                f"Host {ALIAS}",
                "  HostName 127.0.0.1",
                f"  Port {port}",
                f"  User {user}",
                f"  IdentityFile {root}/client_ed25519",
                "  IdentitiesOnly yes",
                f"  UserKnownHostsFile {root}/known_hosts",
                "  StrictHostKeyChecking yes",
                "  BatchMode yes",
                "",
            ]
        )
    )
    config = str(root / "sshd_config")
    subprocess.run([SSHD, "-t", "-f", config], check=True)
    subprocess.run([SSHD, "-f", config, "-E", str(root / "sshd.log")], check=True)
    pid_file = root / "sshd.pid"
    deadline = time.monotonic() + 5
    while not pid_file.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"sshd did not start: {(root / 'sshd.log').read_text()}")
        time.sleep(0.01)
    return SSHServer(root, port, user, int(pid_file.read_text()))


def stop(server: SSHServer) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(server.pid, signal.SIGTERM)
