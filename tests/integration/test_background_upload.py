"""Uploads from a training script that ends at once: nothing may be lost (issue 11).

The README's old example uploaded from a ``daemon=True`` thread; the interpreter killed
it half-way and the script still exited 0. ``runctl.upload_in_background`` runs the
upload in a thread the interpreter waits for, and hands back a handle to wait on; an
upload that failed unseen is reported loudly at exit."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import runctl
from runctl.errors import NetworkError
from tests.conftest import S3Server, key_of

pytestmark = pytest.mark.integration

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A 40 MiB file (a multipart upload at the default 8 MiB parts) and its SHA-256."""
    path = tmp_path_factory.mktemp("ckpt") / "step-1000.pt"
    data = os.urandom(40 * MiB)
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def run_script(body: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(body), *args],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=120,
    )


def object_digest(client: Any, s3: S3Server, url: str) -> str | None:
    try:
        body = client.get_object(Bucket=s3.bucket, Key=key_of(url))["Body"].read()
    except client.exceptions.NoSuchKey:
        return None
    return hashlib.sha256(body).hexdigest()


@pytest.mark.parametrize("run", range(5))
def test_a_script_that_ends_at_once_still_uploads_the_whole_file(
    s3_env: S3Server, s3_client: Any, checkpoint: tuple[Path, str], run: int
) -> None:
    path, digest = checkpoint
    url = s3_env.fresh_prefix()
    proc = run_script(
        """
        import sys
        import runctl

        runctl.upload_in_background(sys.argv[1], sys.argv[2])
        # ... the training loop would go on here; this script just ends.
        """,
        str(path),
        url,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert object_digest(s3_client, s3_env, url + path.name) == digest


def test_a_failed_upload_nobody_waited_for_is_reported_at_exit(
    s3_env: S3Server, checkpoint: tuple[Path, str]
) -> None:
    path, _ = checkpoint
    proc = run_script(
        """
        import sys
        import runctl

        settings = runctl.Settings(endpoint_url="http://127.0.0.1:1", retries=0)
        runctl.upload_in_background(sys.argv[1], "s3://runctl-test/lost/", settings=settings)
        """,
        str(path),
    )
    assert "background upload of" in proc.stderr and "FAILED, not in S3" in proc.stderr, proc.stderr
    assert "cannot reach S3 endpoint http://127.0.0.1:1" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_old_daemon_thread_pattern_loses_nothing_that_had_started(
    s3_env: S3Server, s3_client: Any, checkpoint: tuple[Path, str]
) -> None:
    """Exit waits for blocking transfers in flight in any thread (atexit runs while daemon
    threads still do). The README no longer shows this pattern: a thread that has not yet
    reached runctl when the script ends cannot be waited for."""
    path, digest = checkpoint
    url = s3_env.fresh_prefix()
    proc = run_script(
        """
        import sys, threading, time
        import runctl

        threading.Thread(target=runctl.upload, args=(sys.argv[1], sys.argv[2]), daemon=True).start()
        time.sleep(1)  # the upload is under way when the script ends
        """,
        str(path),
        url,
    )
    assert proc.returncode == 0, proc.stderr
    assert object_digest(s3_client, s3_env, url + path.name) == digest


def test_the_handle_gives_the_result_or_raises_the_error(s3_env: S3Server, tmp_path: Path) -> None:
    src = tmp_path / "small.bin"
    src.write_bytes(b"x" * 1000)
    settings = runctl.Settings(endpoint_url=s3_env.endpoint)
    handle = runctl.upload_in_background(src, s3_env.fresh_prefix(), settings=settings)
    result = handle.wait(timeout=60)
    assert result.ok and result.files == 1 and result.bytes == 1000
    assert handle.done() and handle.ok

    broken = runctl.upload_in_background(
        src, "s3://runctl-test/x/", settings=runctl.Settings(endpoint_url="http://127.0.0.1:1", retries=0)
    )
    with pytest.raises(NetworkError):
        broken.wait(timeout=60)
    assert not broken.ok

    many = [runctl.upload_in_background(src, s3_env.fresh_prefix(), settings=settings) for _ in range(3)]
    assert [r.files for r in runctl.wait_for_uploads(timeout=60)] == [1, 1, 1]
    assert all(h.ok for h in many)
