"""`runctl exec` over SSH against a real sshd, through both transports of the seam."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests import sshd
from tests.conftest import CliResult, cli
from tests.sshd import ALIAS

pytestmark = pytest.mark.usefixtures("no_ssh_agent", "each_ssh_client")


def run_exec(server: sshd.SSHServer, target: str, *argv: str, json: bool = False) -> CliResult:
    output = ("-o", "json") if json else ()
    return cli(*output, "exec", target, "-F", str(server.config), "--", *argv)


def doc(result: CliResult) -> dict[str, Any]:
    value: dict[str, Any] = result.json()  # type: ignore[assignment]
    return value


def test_arguments_are_passed_exactly(ssh_server: sshd.SSHServer) -> None:
    result = run_exec(ssh_server, ALIAS, "printf", "[%s]\\n", "a b", "$HOME", "it's")
    assert result.code == 0, result.err
    assert result.out == "[a b]\n[$HOME]\n[it's]\n"


def test_one_argument_is_a_shell_command_line(ssh_server: sshd.SSHServer) -> None:
    result = run_exec(ssh_server, ALIAS, "echo $((40 + 2)) && echo done >&2")
    assert result.code == 0
    assert result.out == "42\n"
    assert "done" in result.err


def test_exit_status_is_the_commands(ssh_server: sshd.SSHServer) -> None:
    result = run_exec(ssh_server, ALIAS, "echo out; echo err >&2; exit 3", json=True)
    assert result.code == 3
    document = doc(result)
    assert document["ok"] is False and document["command"] == "exec"
    assert document["exit_status"] == 3 and document["via"] == "ssh"
    assert document["stdout"] == "out\n" and document["stderr"] == "err\n"
    assert document["truncated"] is False and document["seconds"] > 0
    assert document["target"].startswith(ALIAS)


def test_a_path_in_the_target_is_the_working_directory(ssh_server: sshd.SSHServer, tmp_path: Path) -> None:
    work = tmp_path / "dir with space"
    work.mkdir()
    result = run_exec(ssh_server, f"{ALIAS}:{work}", "pwd")
    assert result.code == 0, result.err
    assert result.out.strip() == str(work)


def test_a_missing_working_directory_fails(ssh_server: sshd.SSHServer, tmp_path: Path) -> None:
    result = run_exec(ssh_server, f"{ALIAS}:{tmp_path / 'nope'}", "pwd")
    assert result.code != 0
    assert result.out == ""
    assert "nope" in result.err


def test_timeout_stops_the_command(ssh_server: sshd.SSHServer) -> None:
    started = time.monotonic()
    config = str(ssh_server.config)
    result = cli("-o", "json", "exec", ALIAS, "-F", config, "--timeout", "1", "--", "sleep 30")
    assert result.code == 124
    assert doc(result)["error"]["code"] == "timed_out"
    assert time.monotonic() - started < 15


def test_no_command_is_a_usage_error(ssh_server: sshd.SSHServer) -> None:
    result = cli("exec", ALIAS, "-F", str(ssh_server.config))
    assert result.code == 2
    assert "no command" in result.err


def test_unreachable_host_is_a_network_error(ssh_server: sshd.SSHServer) -> None:
    port = sshd.free_port()
    result = cli("-o", "json", "exec", f"ssh://127.0.0.1:{port}", "--", "true")
    assert result.code == 5, result.out + result.err
    assert doc(result)["ok"] is False


def test_unknown_host_key_is_refused(ssh_server: sshd.SSHServer, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    result = cli(
        "exec",
        ALIAS,
        "-F",
        str(ssh_server.config),
        "--known-hosts",
        str(empty),
        "--",
        "true",
    )
    assert result.code == 7, result.err
