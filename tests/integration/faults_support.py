"""Helpers for the fault-injection tests (test_faults_s3.py, test_faults_push.py): a
SeaweedFS of one test's own that can be SIGKILLed and restarted on the same ports and
data directory, runctl as a real process with a bound on its run time, a small tmpfs,
and checks of what a transfer left behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from runctl import local_s3
from runctl.stores.local import is_temporary
from runctl.stores.local_partial import PARTIAL_MARK
from tests.conftest import CliResult, botocore_client

MiB = 1024 * 1024
TMP_MARK = ".runctl-tmp-"
PROBE_KEY = ".faults-probe"
RUN_BOUND = 60.0
"""Longest any one runctl process may run in these tests (they expect a few seconds)."""


# -- runctl as a real process -------------------------------------------------------------


def runctl_argv(*argv: str) -> list[str]:
    return [sys.executable, "-m", "runctl", *argv]


def run(*argv: str, env: dict[str, str] | None = None, bound: float = RUN_BOUND) -> CliResult:
    """``python -m runctl ARGV`` to the end; the test fails if it outlives ``bound``."""
    try:
        proc = subprocess.run(
            runctl_argv(*argv),
            capture_output=True,
            text=True,
            env=env if env is not None else dict(os.environ),
            timeout=bound,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"runctl {' '.join(argv)} still running after {bound:.0f}s: {exc.stderr!r}")
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def spawn(*argv: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        runctl_argv(*argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env if env is not None else dict(os.environ),
    )


def finish(proc: subprocess.Popen[str], bound: float = RUN_BOUND) -> CliResult:
    """Wait for a spawned runctl (killing it if it outlives ``bound``, then failing)."""
    try:
        out, err = proc.communicate(timeout=bound)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=10)
        pytest.fail(f"runctl still running after {bound:.0f}s: {err!r}")
    return CliResult(proc.returncode, out, err)


def wait_for(predicate: Any, timeout: float, what: str, proc: subprocess.Popen[str] | None = None) -> None:
    """Poll ``predicate()`` every 10 ms; fail the test after ``timeout`` or if ``proc`` ends first."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate(timeout=10)
            pytest.fail(f"runctl ended (exit {proc.returncode}) before {what}: {out!r} {err!r}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def error_lines(res: CliResult) -> list[str]:
    return [line for line in res.err.splitlines() if line.startswith("error: ")]


# -- what a transfer left behind ------------------------------------------------------------


def temp_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if TMP_MARK in p.name)


def final_files(root: Path) -> dict[str, bytes]:
    """Files at final names (not runctl's temporary ones) below ``root``."""
    if not root.exists():
        return {}
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and not is_temporary(p.name)
    }


def partial_files(root: Path) -> list[str]:
    """A large download's partial data and journal, kept for resuming."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if PARTIAL_MARK in p.name)


def object_or_none(client: Any, bucket: str, key: str) -> bytes | None:
    """The object's bytes, or None if there is no object under ``key``."""
    try:
        body: bytes = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except client.exceptions.NoSuchKey:
        return None
    return body


def pending_uploads(client: Any, bucket: str, key: str) -> list[str]:
    """Upload ids of unfinished multipart uploads to ``key``."""
    page = client.list_multipart_uploads(Bucket=bucket, Prefix=key)
    return [u["UploadId"] for u in page.get("Uploads", []) if u["Key"] == key]


# -- a SeaweedFS of one test's own --------------------------------------------------------


@dataclass
class Weed:
    """``weed mini`` on fixed loopback ports and a data directory, so that after a SIGKILL it
    can be started again as the same server (same endpoint, same stored objects). The
    command line is local_s3.start's, with the ports chosen once."""

    data_dir: Path
    bucket: str = "runctl-faults"
    ports: list[int] = field(default_factory=lambda: local_s3.free_ports(5))
    proc: subprocess.Popen[bytes] | None = None
    probed: bool = False

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports[0]}"

    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": local_s3.ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": local_s3.SECRET_KEY,
            "AWS_REGION": "us-east-1",
        }

    def client(self) -> Any:
        return botocore_client(self.endpoint, local_s3.ACCESS_KEY, local_s3.SECRET_KEY)

    def start(self, timeout: float = 30.0) -> None:
        s3, master, volume, filer, admin = self.ports
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            local_s3.weed_binary(),
            *("mini", f"-dir={self.data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1"),
            *(f"-s3.port={s3}", f"-master.port={master}", f"-volume.port={volume}"),
            *(f"-filer.port={filer}", f"-admin.port={admin}", "-master.telemetry=false"),
            *("-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0"),
            f"-bucket={self.bucket}",
        ]
        env = dict(os.environ)  # weed mini takes its admin credentials from these two
        env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = local_s3.ACCESS_KEY, local_s3.SECRET_KEY
        with open(self.data_dir / "weed.log", "ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=self.data_dir
            )
        client = self.client()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                text = (self.data_dir / "weed.log").read_text()
                pytest.fail(f"weed exited ({self.proc.returncode}): {text}")
            try:
                self._probe(client)
                return
            except Exception:
                if time.monotonic() > deadline:
                    pytest.fail(f"weed did not answer on {self.endpoint} within {timeout:.0f}s")
                time.sleep(0.1)

    def _probe(self, client: Any) -> None:
        """Ready when an object can be read back: the S3 port answering is not enough
        after a restart (for a moment, GETs of stored objects fail with 500 while the
        volume server registers again). The first start writes the probe object."""
        if not self.probed:
            client.put_object(Bucket=self.bucket, Key=PROBE_KEY, Body=b"probe")
            self.probed = True
        assert client.get_object(Bucket=self.bucket, Key=PROBE_KEY)["Body"].read() == b"probe"

    def kill(self) -> None:
        """SIGKILL the server (its whole process group), as a crash or the OOM killer would."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        """End of the test: the data directory is thrown away, so no clean shutdown is
        needed (a SIGTERM after a restart can take 10 s to be obeyed)."""
        self.kill()


@pytest.fixture
def own_weed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Weed]:
    """A SeaweedFS for this test alone (so it may be killed), with runctl pointed at it
    through the environment; the developer's own AWS config kept out of the way."""
    for key in [k for k in os.environ if k.startswith(("AWS_", "RUNCTL_")) and k != "RUNCTL_CACHE_DIR"]:
        monkeypatch.delenv(key)
    weed = Weed(tmp_path / "weed")
    for key, value in weed.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    weed.start()
    try:
        yield weed
    finally:
        weed.stop()


# -- a small filesystem -------------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(mount: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (e.g. "4m") at ``mount``: a disk that fills up. Needs root
    (the tests and CI run as root); unmounted at the end whatever happens."""
    mount.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if done.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False, timeout=30)
