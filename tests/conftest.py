"""Shared fixtures: one real SeaweedFS S3 server per test session, on loopback."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from runctl import local_s3
from runctl.cli.main import run_cli


@dataclass
class S3Server:
    server: local_s3.LocalS3
    bucket: str

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    def url(self, suffix: str = "") -> str:
        return f"s3://{self.bucket}/{suffix}"

    def fresh_prefix(self) -> str:
        """A new, empty prefix URL (ends with /) so tests never see each other's objects."""
        return self.url(f"t-{uuid.uuid4().hex[:10]}/")


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    data = tmp_path_factory.mktemp("seaweedfs")
    server = local_s3.start(data, buckets=("runctl-test", "runctl-other"))
    try:
        yield S3Server(server, "runctl-test")
    finally:
        local_s3.stop_pid(server.pid)


@pytest.fixture
def s3_env(s3: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> S3Server:
    """Point runctl at the test server through the environment, as a user would;
    keep the developer's own AWS config out of the way."""
    for key in [k for k in os.environ if k.startswith(("AWS_", "RUNCTL_"))]:
        monkeypatch.delenv(key)
    for key, value in s3.server.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    return s3


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> object:
        import json

        return json.loads(self.out)


def cli(*argv: str) -> CliResult:
    """Run runctl in-process, capturing stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    code = run_cli(list(argv), out, err)
    return CliResult(code, out.getvalue(), err.getvalue())


def cli_subprocess(*argv: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> CliResult:
    """Run runctl as a real process (``python -m runctl``), as a user or CI script would."""
    proc = subprocess.run(
        [sys.executable, "-m", "runctl", *argv],
        capture_output=True,
        text=True,
        env=env if env is not None else dict(os.environ),
        cwd=cwd,
        timeout=300,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)
