"""Ctrl-C in the middle of a transfer: exit 130, no temp files, no partial files at final names."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import S3Server, cli


def test_sigint_during_download_exits_130_and_leaves_complete_files(s3_env: S3Server, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    payload = {f"f{i:04d}.bin": os.urandom(2048 + i) for i in range(1500)}
    for name, data in payload.items():
        (src / name).write_bytes(data)
    url = s3_env.fresh_prefix()
    assert cli("--concurrency", "32", "s3", "upload", str(src), url, "-r").code == 0

    dst = tmp_path / "dst"
    proc = subprocess.Popen(
        [sys.executable, "-m", "runctl", "--concurrency", "1", "s3", "download", url, str(dst), "-r"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A child of a non-interactive shell may inherit SIGINT as ignored; a user's Ctrl-C is not.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (dst.exists() and len(os.listdir(dst)) >= 20):
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    names = os.listdir(dst)
    assert 20 <= len(names) < len(payload)
    assert not [n for n in names if ".runctl-tmp-" in n]
    for name in names:
        assert (dst / name).read_bytes() == payload[name]
