"""Faults between runctl and S3: a real proxy on loopback in front of the real SeaweedFS
answers some requests with 5xx errors, resets connections mid-body, or never answers.
runctl must retry what is transient, give up cleanly on what is not, and never leave a
partial file at a final name."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from runctl.stores.local_partial import PARTIAL_MARK
from tests.conftest import CliResult, S3Server, cli, key_of, write_tree
from tests.faultproxy import FaultProxy

MiB = 1024 * 1024


def via(proxy: FaultProxy, *argv: str) -> CliResult:
    return cli("--endpoint-url", proxy.endpoint, "--no-progress", *argv)


def put_direct(direct: Any, s3: S3Server, url: str, data: bytes) -> None:
    direct.put_object(Bucket=s3.bucket, Key=key_of(url), Body=data)


def assert_one_line_error(res: CliResult, exit_code: int, *needles: str) -> str:
    assert res.code == exit_code, (res.code, res.out, res.err)
    assert "Traceback" not in res.err, res.err
    lines = [line for line in res.err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, res.err
    assert "internal error" not in errors[0], res.err
    for needle in needles:
        assert needle in errors[0], res.err
    return errors[0]


def temp_files(root: Path) -> list[str]:
    return [p.name for p in root.rglob("*") if ".runctl-tmp-" in p.name]


def test_upload_retries_503_slowdown(
    s3_env: S3Server, proxy: FaultProxy, direct: Any, tmp_path: Path
) -> None:
    files = {f"f{i}.txt": f"file {i}\n".encode() * (i + 1) for i in range(8)}
    src = write_tree(tmp_path / "src", files)
    url = s3_env.fresh_prefix()
    proxy.fail(5, status=503, code="SlowDown", method="PUT")

    res = via(proxy, "s3", "upload", str(src), url, "-r")

    assert res.code == 0, res.out + res.err
    assert len(proxy.seen("PUT", action="status")) == 5
    assert len(proxy.seen("PUT", action="forward")) == len(files)  # each file landed once
    prefix = key_of(url)
    for name, data in files.items():
        got = direct.get_object(Bucket=s3_env.bucket, Key=prefix + name)["Body"].read()
        assert got == data, name


def test_download_retries_500(s3_env: S3Server, proxy: FaultProxy, direct: Any, tmp_path: Path) -> None:
    url = s3_env.fresh_prefix() + "blob.bin"
    data = os.urandom(300_000)
    put_direct(direct, s3_env, url, data)
    proxy.fail(3, status=500, code="InternalError", method="GET")

    dst = tmp_path / "dst"
    dst.mkdir()
    res = via(proxy, "s3", "download", url, str(dst / "blob.bin"))

    assert res.code == 0, res.out + res.err
    assert (dst / "blob.bin").read_bytes() == data
    assert len(proxy.seen("GET", action="status")) == 3
    assert temp_files(dst) == []


def test_large_download_survives_a_reset_mid_range(
    s3_env: S3Server, proxy: FaultProxy, direct: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNCTL_RANGE_SIZE", "5MiB")
    url = s3_env.fresh_prefix() + "big.bin"
    data = os.urandom(24 * MiB + 12345)
    put_direct(direct, s3_env, url, data)
    # The third range (bytes 10 MiB..15 MiB) dies after 1 MiB of its body, once.
    third = rf"^bytes={10 * MiB}-"
    proxy.reset(1, after_bytes=1 * MiB, path=key_of(url), header=("Range", third))

    dst = tmp_path / "dst"
    dst.mkdir()
    res = via(proxy, "--part-size", "5MiB", "s3", "download", url, str(dst / "big.bin"))

    assert res.code == 0, res.out + res.err
    assert len(proxy.seen("GET", action="reset")) == 1
    ranged = [s for s in proxy.seen("GET", path=key_of(url)) if s.range]
    assert len(ranged) >= 6, ranged  # 5 MiB ranges, really in parallel pieces
    assert (dst / "big.bin").read_bytes() == data
    assert temp_files(dst) == []
    assert os.listdir(dst) == ["big.bin"]


def test_persistent_500_fails_fast_and_cleanly(s3_env: S3Server, proxy: FaultProxy, tmp_path: Path) -> None:
    proxy.fail(None, status=500, code="InternalError")
    url = s3_env.fresh_prefix() + "never.bin"
    dst = tmp_path / "dst"
    dst.mkdir()

    started = time.monotonic()
    res = via(proxy, "s3", "download", url, str(dst / "never.bin"))
    elapsed = time.monotonic() - started

    assert_one_line_error(res, 5, "S3 server error")
    assert elapsed < 30, elapsed
    assert len(proxy.seen()) >= 2  # the request was retried before giving up
    assert os.listdir(dst) == []


def test_persistent_500_on_get_retries_then_leaves_no_partial_file(
    s3_env: S3Server, proxy: FaultProxy, direct: Any, tmp_path: Path
) -> None:
    """The HEAD works; every GET of the object fails: whole-file retries, then exit 5."""
    url = s3_env.fresh_prefix() + "blob.bin"
    put_direct(direct, s3_env, url, os.urandom(100_000))
    proxy.fail(
        None,
        status=500,
        code="InternalError",
        method="GET",
        path=key_of(url) + "$",
    )
    dst = tmp_path / "dst"
    dst.mkdir()

    started = time.monotonic()
    res = via(proxy, "s3", "download", url, str(dst / "blob.bin"))
    elapsed = time.monotonic() - started

    assert_one_line_error(res, 5, "S3 server error")
    assert elapsed < 30, elapsed
    # obstore retries each request (3 times), and the executor retries the file (3 times).
    assert len(proxy.seen("GET", path=key_of(url) + "$", action="status")) >= 8
    assert os.listdir(dst) == []


def test_multipart_upload_retries_503_on_parts(
    s3_env: S3Server, proxy: FaultProxy, direct: Any, tmp_path: Path
) -> None:
    data = os.urandom(12 * MiB + 7)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    url = s3_env.fresh_prefix() + "big.bin"
    proxy.fail(2, status=503, code="SlowDown", method="PUT", path=r"[?&]partNumber=")

    res = via(proxy, "--part-size", "5MiB", "s3", "upload", str(src), url)

    assert res.code == 0, res.out + res.err
    assert len(proxy.seen("PUT", path=r"[?&]partNumber=", action="status")) == 2
    assert len(proxy.seen("PUT", path=r"[?&]partNumber=", action="forward")) == 3
    assert direct.get_object(Bucket=s3_env.bucket, Key=key_of(url))["Body"].read() == data


def test_large_download_with_one_range_failing_leaves_only_its_partial(
    s3_env: S3Server, proxy: FaultProxy, direct: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Other ranges succeed, one keeps failing: exit 5, nothing at the final name; what
    was written is kept, hidden, for the next run to resume (test_s3_download_resume)."""
    monkeypatch.setenv("RUNCTL_RANGE_SIZE", "5MiB")
    url = s3_env.fresh_prefix() + "big.bin"
    put_direct(direct, s3_env, url, os.urandom(16 * MiB))
    proxy.fail(
        None, status=500, code="InternalError", path=key_of(url), header=("Range", rf"^bytes={10 * MiB}-")
    )
    dst = tmp_path / "dst"
    dst.mkdir()

    started = time.monotonic()
    res = via(proxy, "--part-size", "5MiB", "s3", "download", url, str(dst / "big.bin"))
    elapsed = time.monotonic() - started

    assert_one_line_error(res, 5, "S3 server error")
    assert elapsed < 30, elapsed
    assert len(proxy.seen("GET", action="status")) >= 8
    assert sorted(os.listdir(dst)) == [f".big.bin{PARTIAL_MARK}data", f".big.bin{PARTIAL_MARK}journal"]


STALL_BOUND = 60.0


def download_within(
    bound: float, proxy: FaultProxy, url: str, dst: Path, **env: str
) -> tuple[CliResult, float]:
    """Download through the proxy as a real process, failing the test if it outlives ``bound``.

    A real process, not ``cli()``: a stuck in-process run could not be interrupted
    (pytest-timeout's SIGALRM exception is swallowed by the running event loop)."""
    argv = ["--endpoint-url", proxy.endpoint, "--no-progress", "s3", "download", url, str(dst)]
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "runctl", *argv],
            capture_output=True,
            text=True,
            env=dict(os.environ, **env),
            timeout=bound,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(
            f"runctl still waiting on a stalled server after {bound:.0f}s ({len(proxy.seen())} requests)"
        )
    return CliResult(proc.returncode, proc.stdout, proc.stderr), time.monotonic() - started


@pytest.mark.timeout(STALL_BOUND + 30)
def test_stalled_server_fails_within_bounded_time(
    s3_env: S3Server, proxy: FaultProxy, tmp_path: Path
) -> None:
    """A server that accepts connections and never answers must not hang runctl (default timeouts)."""
    proxy.stall(None)
    dst = tmp_path / "dst"
    dst.mkdir()
    result, elapsed = download_within(STALL_BOUND, proxy, s3_env.fresh_prefix() + "x.bin", dst / "x.bin")
    assert_one_line_error(result, 5)
    assert elapsed < STALL_BOUND, elapsed
    assert os.listdir(dst) == []


def test_stalled_download_body_fails_within_bounded_time(
    s3_env: S3Server, proxy: FaultProxy, direct: Any, tmp_path: Path
) -> None:
    """The object exists (HEAD answers) but every GET stalls: bounded, exit 5, no file.
    Short timeouts through the environment keep the test quick; the mechanism is the same."""
    url = s3_env.fresh_prefix() + "g.bin"
    put_direct(direct, s3_env, url, b"y" * 1000)
    proxy.stall(None, method="GET", path=key_of(url) + "$")
    dst = tmp_path / "dst"
    dst.mkdir()
    result, elapsed = download_within(
        STALL_BOUND, proxy, url, dst / "g.bin", RUNCTL_IDLE_TIMEOUT="1", RUNCTL_RETRY_BUDGET="2"
    )
    assert_one_line_error(result, 5)
    assert "did not answer in time" in result.err
    assert elapsed < 15, elapsed
    assert os.listdir(dst) == []


def test_noop_download_sync_needs_no_per_file_requests(
    s3_env: S3Server, proxy: FaultProxy, tmp_path: Path
) -> None:
    """Files written by a download (mtime set into the past, written after the object's
    LastModified) are recognised from the two listings alone: no HEAD per file.
    The proxy counts the requests."""
    src, down = tmp_path / "src", tmp_path / "down"
    write_tree(src, {f"d/f{i}.txt": b"same" for i in range(20)})
    for path in src.rglob("*.txt"):
        os.utime(path, (1_600_000_000, 1_600_000_000))  # an old checkpoint
    url = s3_env.fresh_prefix()
    assert cli("s3", "sync", str(src), url).code == 0
    time.sleep(2.1)  # LastModified has whole seconds: let the download land clearly after it
    assert via(proxy, "s3", "sync", url, str(down)).code == 0
    before = len(proxy.seen())
    again = via(proxy, "-o", "json", "s3", "sync", url, str(down))
    assert again.code == 0 and again.json()["copied"] == 0  # type: ignore[index]
    requests = proxy.seen()[before:]
    assert [s.method for s in requests] == ["GET"]  # one listing page, nothing per file
