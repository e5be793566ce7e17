"""The OpenSSH transport's command line and how ssh's own failures map to typed errors
(the integration tests run every code push over a real ssh too)."""

from __future__ import annotations

from pathlib import Path

from runctl.errors import CredentialsError, HostKeyError, NetworkError
from runctl.remote.openssh_remote import ssh_argv, ssh_error
from runctl.remote.target import ConnectOptions, parse_dest


def test_argv_pins_host_key_checking_and_passes_options() -> None:
    target = parse_dest("ssh://alice@gpu1:2222/work")
    argv = ssh_argv(target, ConnectOptions(config=Path("/c"), identity=Path("/k")), "/usr/bin/ssh")
    assert argv[:4] == ["/usr/bin/ssh", "-T", "-o", "StrictHostKeyChecking=yes"]
    assert argv[-2:] == ["--", "gpu1"]
    joined = " ".join(argv)
    assert "-F /c" in joined and "-i /k" in joined and "-p 2222" in joined and "-l alice" in joined
    accept = ssh_argv(target, ConnectOptions(accept_new_host_key=True), "ssh")
    assert "StrictHostKeyChecking=accept-new" in accept  # trust on first use, never "no"
    known = ssh_argv(parse_dest("h:x"), ConnectOptions(known_hosts=Path("/kh"), port=7), "ssh")
    assert "UserKnownHostsFile=/kh" in known and known[known.index("-p") + 1] == "7"


def test_ssh_failures_map_to_the_same_errors_as_asyncssh() -> None:
    unknown = ssh_error(
        "h",
        "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\r\n"
        "Host key verification failed.\r\n",
        "ssh-ed25519 SHA256:abc",
    )
    assert isinstance(unknown, HostKeyError) and unknown.exit_code == 7
    assert "SHA256:abc" in unknown.message and "--accept-new-host-key" in unknown.hint
    changed = ssh_error(
        "h", "@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@\nHost key verification failed."
    )
    assert isinstance(changed, HostKeyError) and "does not match" in changed.message
    denied = ssh_error("h", "alice@127.0.0.1: Permission denied (publickey).\r\n")
    assert isinstance(denied, CredentialsError) and denied.exit_code == 3
    refused = ssh_error("h", "ssh: connect to host 127.0.0.1 port 1: Connection refused\r\n")
    assert isinstance(refused, NetworkError) and "refused" in refused.message
    unresolved = ssh_error("nohost", "ssh: Could not resolve hostname nohost: Name or service not known")
    assert isinstance(unresolved, NetworkError) and "resolve" in unresolved.message
    other = ssh_error("h", "kex_exchange_identification: read: Connection reset by peer")
    assert isinstance(other, NetworkError) and other.exit_code == 5 and "reset" in other.message
