"""A destination that cannot take the bytes (size limit, read-only dir): a clear error,
a non-zero exit, and nothing half-written left at a final name."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import S3Server, cli


def _limit_file_size() -> None:
    # RLIMIT_FSIZE makes the kernel refuse writes past 1 MiB (EFBIG), like a disk that
    # fills up mid-file; SIGXFSZ would kill the process instead of failing the write.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))


@pytest.mark.parametrize("size", [3 << 20, 40 << 20], ids=["single-get", "ranged-gets"])
def test_write_failure_mid_file_leaves_no_partial_file(s3_env: S3Server, tmp_path: Path, size: int) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "small.txt").write_bytes(b"fits")
    (src / "big.bin").write_bytes(os.urandom(size))
    url = s3_env.fresh_prefix()
    assert cli("s3", "upload", str(src), url, "-r").code == 0

    dst = tmp_path / "dst"
    proc = subprocess.run(
        [sys.executable, "-m", "runctl", "-o", "json", "s3", "download", url, str(dst), "-r"],
        capture_output=True,
        text=True,
        preexec_fn=_limit_file_size,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    import json

    doc = json.loads(proc.stdout)
    assert doc["ok"] is False and doc["files"] == 1
    assert [f["path"] for f in doc["failed"]] == ["big.bin"]
    assert "File too large" in doc["failed"][0]["error"]
    assert sorted(os.listdir(dst)) == ["small.txt"]  # no big.bin, no temp file


def test_unwritable_destination_is_a_clear_error(s3_env: S3Server, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        # root ignores directory permissions; a path under a regular file fails for anyone.
        blocker = tmp_path / "file"
        blocker.write_text("x")
        dst = blocker / "sub"
    else:
        dst = tmp_path / "ro"
        dst.mkdir(mode=0o500)
    src = tmp_path / "one.txt"
    src.write_text("data")
    url = s3_env.fresh_prefix()
    assert cli("s3", "upload", str(src), url).code == 0
    result = cli("s3", "download", url, str(dst), "-r")
    # Refused before any transfer starts: one error line, not one failure per key (issue 11).
    assert result.code == (2 if os.geteuid() == 0 else 1), result.err
    assert result.err.startswith("error: ") and result.err.count("error: ") == 1, result.err
    assert "is a file, not a directory" in result.err or "permission denied" in result.err
    assert "Traceback" not in result.err


def test_source_file_vanishing_after_planning_fails_only_that_file(s3_env: S3Server, tmp_path: Path) -> None:
    import runctl
    from runctl.events import Event, Planned
    from runctl.settings import Settings

    src = tmp_path / "src"
    src.mkdir()
    for name in ("a.txt", "gone.txt", "z.txt"):
        (src / name).write_text(name)

    def delete_after_planning(event: Event) -> None:
        if isinstance(event, Planned):
            (src / "gone.txt").unlink()

    result = runctl.upload(
        src,
        s3_env.fresh_prefix(),
        recursive=True,
        settings=Settings(endpoint_url=s3_env.endpoint),
        reporter=delete_after_planning,
    )
    assert result.files == 2
    assert [(f.path, "vanished" in f.error) for f in result.failed] == [("gone.txt", True)]
