"""No output ever carries a secret (issue 11): a representative set of commands, ending
well and badly, in text and JSON, with ``-v`` (tracebacks) and without, in-process and
as real processes, run with recognisable secret access keys and session tokens; not one
of those strings may appear in anything they print. An SSH private key's material must
not appear either.

The whole suite runs with recognisable secrets too (tests/conftest.py: SUITE_SECRET for
its S3 servers): every CliResult and everything a test captures (output, logs, failure
reports) is searched for them. This test adds session tokens, ``-v`` tracebacks and the
Python API's errors, and exec over SSH (private key material)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import runctl
from tests import sshd
from tests.conftest import CliResult, S3Server, botocore_client, cli, cli_subprocess, write_tree

pytestmark = pytest.mark.integration

FAKE_SECRET = "FAKEsecretKEY0do0not0print0x9f3c2a71b5e8d4"
FAKE_TOKEN = "FAKEsessionTOKEN0do0not0print0IQoJb3JpZ2luX2VjEJr"
FAKE_KEY_ID = "AKIAFAKEKEYID0000001"
UNREACHABLE = "http://127.0.0.1:1"


@dataclass
class Run:
    argv: tuple[str, ...]
    env: dict[str, str]
    ok: bool
    """Whether the command is meant to succeed (the set must have both kinds)."""
    process: bool = False


@pytest.fixture
def world(s3_env: S3Server, tmp_path: Path) -> Iterator[dict[str, str]]:
    src = write_tree(tmp_path / "src", {"a.txt": b"alpha", "sub/b.bin": os.urandom(9 * 1024 * 1024)})
    url = s3_env.fresh_prefix()
    assert cli("s3", "upload", str(src), url, "-r").code == 0
    yield {"src": str(src), "url": url, "out": str(tmp_path / "out"), "file": str(src / "a.txt")}


def secrets_of(s3: S3Server, *extra: str) -> list[str]:
    return [FAKE_SECRET, FAKE_TOKEN, s3.server.secret_key, *extra]


def runs(s3: S3Server, w: dict[str, str], moto: str) -> list[Run]:
    good = dict(os.environ)  # the server's own (real) secret: success
    wrong = {**good, "AWS_SECRET_ACCESS_KEY": FAKE_SECRET}
    token = {**good, "AWS_SESSION_TOKEN": FAKE_TOKEN}
    unknown = {**good, "AWS_ACCESS_KEY_ID": FAKE_KEY_ID, "AWS_SECRET_ACCESS_KEY": FAKE_SECRET}
    # moto checks no signature: the fake secret and token are *used*, and the command succeeds.
    on_moto = {**unknown, "AWS_SESSION_TOKEN": FAKE_TOKEN, "AWS_ENDPOINT_URL": moto}
    down = {**good, "AWS_SECRET_ACCESS_KEY": FAKE_SECRET, "AWS_SESSION_TOKEN": FAKE_TOKEN}
    u, src, out = w["url"], w["src"], w["out"]
    table: list[tuple[tuple[str, ...], dict[str, str], bool]] = [
        (("s3", "upload", w["file"], u + "again/"), good, True),
        (("s3", "upload", src, u + "tree/", "-r"), good, True),
        (("s3", "download", u + "a.txt", out + "/"), good, True),
        (("s3", "download", u, out, "-r"), good, True),
        (("s3", "list", u, "-r"), good, True),
        (("s3", "sync", src, u), good, True),
        (("s3", "sync", u, out + "2"), good, True),
        (("s3", "review", u, "--detailed"), good, True),
        (("s3", "cleanup", u, "--keep-last-n", "1", "--dry-run"), good, True),
        (("s3", "list", u), wrong, False),
        (("s3", "upload", w["file"], u), wrong, False),
        (("s3", "download", u + "a.txt", out + "/x"), wrong, False),
        (("s3", "download", u + "sub/b.bin", out + "/y"), token, False),
        (("s3", "sync", src, u), unknown, False),
        (("s3", "list", u), down, False),
        (("--endpoint-url", UNREACHABLE, "s3", "upload", w["file"], u), down, False),
        (("s3", "list", "s3://runctl-fake-bucket-x/"), on_moto, False),
        (("s3", "download", u + "missing.txt", out + "/m"), down, False),
    ]
    result = []
    for argv, env, ok in table:
        for flags in ((), ("-v",), ("-o", "json"), ("-o", "json", "-v")):
            result.append(Run((*flags, *argv), env, ok))
    # A few as real processes: what a user's terminal would show, logging included.
    result += [
        Run(("-v", "s3", "list", u), wrong, False, process=True),
        Run(("-v", "-o", "json", "s3", "download", u + "a.txt", out + "/p"), token, False, process=True),
        Run(("-v", "s3", "sync", src, u), good, True, process=True),
    ]
    return result


def run(case: Run, monkeypatch: pytest.MonkeyPatch) -> CliResult:
    if case.process:
        return cli_subprocess(*case.argv, env=case.env)
    with monkeypatch.context() as m:
        for key in [k for k in os.environ if k.startswith("AWS_")]:
            m.delenv(key)
        for key, value in case.env.items():
            m.setenv(key, value)
        return cli(*case.argv)


def test_no_secret_in_any_output(
    s3_env: S3Server, moto_endpoint: str, world: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client: Any = botocore_client(moto_endpoint)
    client.create_bucket(Bucket="runctl-secrets")
    table = runs(s3_env, world, moto_endpoint)
    moto_env = {
        **dict(os.environ),
        "AWS_ACCESS_KEY_ID": FAKE_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": FAKE_SECRET,
        "AWS_SESSION_TOKEN": FAKE_TOKEN,
        "AWS_ENDPOINT_URL": moto_endpoint,
    }
    table += [
        Run(("-v", "s3", "upload", world["file"], "s3://runctl-secrets/p/"), moto_env, True),
        Run(("-v", "-o", "json", "s3", "list", "s3://runctl-secrets/", "-r"), moto_env, True),
        Run(("-v", "s3", "download", "s3://runctl-secrets/p/a.txt", world["out"] + "/moto/"), moto_env, True),
    ]
    secrets = secrets_of(s3_env)
    outcomes = {True: 0, False: 0}
    for case in table:
        res = run(case, monkeypatch)
        assert (res.code == 0) == case.ok, (case.argv, res.code, res.out, res.err)
        outcomes[case.ok] += 1
        for secret in secrets:
            assert secret not in res.out and secret not in res.err, (case.argv, secret, res.out, res.err)
    assert outcomes[True] >= 20 and outcomes[False] >= 20, outcomes


def test_no_secret_in_python_api_errors(
    s3_env: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The typed errors the Python API raises (message, hint, str, repr, the chained cause)."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", FAKE_TOKEN)
    src = tmp_path / "f.txt"
    src.write_text("x")
    for call in (
        lambda: runctl.upload(src, s3_env.fresh_prefix()),
        lambda: runctl.list_objects(s3_env.fresh_prefix(), recursive=True),
        lambda: runctl.download(s3_env.fresh_prefix() + "k", tmp_path / "k"),
    ):
        with pytest.raises(runctl.RunctlError) as info:
            call()
        exc = info.value
        texts = [str(exc), repr(exc), exc.hint, str(exc.__cause__), repr(exc.__cause__)]
        for secret in secrets_of(s3_env):
            assert not any(secret in t for t in texts), (secret, texts)


def test_no_private_key_material_in_exec_output(
    ssh_server: sshd.SSHServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    key_lines = ssh_server.key.read_text().splitlines()
    material = [line for line in key_lines if line and not line.startswith("-----")]
    assert material
    wrong = tmp_path / "id_wrong"
    import subprocess

    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong)], check=True)
    wrong_material = [line for line in wrong.read_text().splitlines() if not line.startswith("-----")]
    noid = tmp_path / "ssh_config"
    noid.write_text(
        f"Host {sshd.ALIAS}\n  HostName 127.0.0.1\n  Port {ssh_server.port}\n  User {ssh_server.user}\n"
        f"  IdentitiesOnly yes\n  UserKnownHostsFile {ssh_server.known_hosts}\n  BatchMode yes\n"
    )
    results = [
        cli("-v", "exec", sshd.ALIAS, "-F", str(ssh_server.config), "--", "echo", "hi"),
        cli("-v", "-o", "json", "exec", sshd.ALIAS, "-F", str(noid), "-i", str(wrong), "--", "true"),
        cli(
            "-v",
            "exec",
            sshd.ALIAS,
            "-F",
            str(noid),
            "-i",
            str(wrong),
            "--ssh-client",
            "openssh",
            "--",
            "true",
        ),
    ]
    assert [r.code for r in results] == [0, 3, 3], results
    for res in results:
        for line in material + wrong_material:
            assert line not in res.out and line not in res.err
