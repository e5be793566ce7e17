"""Fault injection between the real runctl CLI (``python -m runctl``) and a real SeaweedFS,
on loopback: connections cut mid-upload and reset mid-download, the server SIGKILLed
mid-transfer and restarted, the client SIGKILLed mid-transfer, a destination disk that
fills up, and a source file that changes or vanishes while it is being uploaded. Both
sides are checked afterwards: what is at the final local names and under the final
keys is whole (or absent), never torn, and a rerun of the same command completes.

Files are kept small (1 MiB single-request, 12 MiB multipart with 5 MiB parts) and the
proxy's ``delay`` slows a transfer down just enough to act in the middle of it."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from runctl.stores.local_partial import PARTIAL_MARK
from tests.conftest import CliResult, S3Server, key_of
from tests.faultproxy import FaultProxy
from tests.integration.faults_support import (
    MiB,
    Weed,
    error_lines,
    final_files,
    finish,
    object_or_none,
    own_weed,
    partial_files,
    pending_uploads,
    run,
    spawn,
    temp_files,
    tmpfs,
    wait_for,
)

__all__ = ["own_weed"]  # the fixture, imported to be found by pytest

pytestmark = pytest.mark.integration

PART = ("--part-size", "5MiB")
SIZES = {"small": 1 * MiB + 3, "multipart": 12 * MiB + 5}
"""A single-request object, and one of three parts (5 + 5 + 2 MiB) with --part-size 5MiB."""


def via(proxy: FaultProxy, *argv: str, env: dict[str, str] | None = None) -> CliResult:
    return run("--endpoint-url", proxy.endpoint, "--no-progress", *PART, *argv, env=env)


def env_with(**extra: str) -> dict[str, str]:
    return dict(os.environ, **extra)


# -- 1. a connection reset mid-upload / mid-download: retried, whole --------------------


@pytest.mark.parametrize("kind", ["small", "multipart"])
def test_connection_cut_mid_upload_is_retried(
    s3_env: S3Server, proxy: FaultProxy, direct: Any, tmp_path: Path, kind: str
) -> None:
    """The first PUT carrying the body (a part, for multipart) loses its connection after
    300 KB: runctl retries it, exits 0, and the object is byte-identical."""
    data = os.urandom(SIZES[kind])
    src = tmp_path / "up.bin"
    src.write_bytes(data)
    url = s3_env.fresh_prefix() + "up.bin"
    body_put = r"[?&]partNumber=2(&|$)" if kind == "multipart" else key_of(url) + "$"
    proxy.cut(1, after_bytes=300_000, method="PUT", path=body_put)

    res = via(proxy, "s3", "upload", str(src), url)

    assert res.code == 0, res.out + res.err
    assert len(proxy.seen("PUT", path=body_put, action="cut")) == 1  # the fault really fired
    assert len(proxy.seen("PUT", path=body_put, action="forward")) >= 1  # and was retried
    assert direct.get_object(Bucket=s3_env.bucket, Key=key_of(url))["Body"].read() == data
    assert pending_uploads(direct, s3_env.bucket, key_of(url)) == []


@pytest.mark.parametrize("kind", ["small", "multipart"])
def test_connection_reset_mid_download_is_retried(
    s3_env: S3Server, proxy: FaultProxy, direct: Any, tmp_path: Path, kind: str
) -> None:
    """The GET of the object (the second 5 MiB range, for a ranged download) is reset
    after 300 KB of body: retried, exit 0, the file byte-identical, no temp file left."""
    data = os.urandom(SIZES[kind])
    url = s3_env.fresh_prefix() + "down.bin"
    direct.put_object(Bucket=s3_env.bucket, Key=key_of(url), Body=data)
    header = ("Range", rf"^bytes={5 * MiB}-") if kind == "multipart" else None
    proxy.reset(1, after_bytes=300_000, method="GET", path=key_of(url) + "$", header=header)
    dst = tmp_path / "dst"
    dst.mkdir()

    res = via(proxy, "s3", "download", url, str(dst / "down.bin"), env=env_with(RUNCTL_RANGE_SIZE="5MiB"))

    assert res.code == 0, res.out + res.err
    assert len(proxy.seen("GET", action="reset")) == 1
    if kind == "multipart":
        assert len([s for s in proxy.seen("GET", path=key_of(url) + "$") if s.range]) >= 3  # ranged
    assert (dst / "down.bin").read_bytes() == data
    assert os.listdir(dst) == ["down.bin"]


# -- 2. the S3 server SIGKILLed mid-transfer, then restarted ------------------------------

UPLOAD_SIZES = {"single": 4 * MiB + 3, "multipart": 12 * MiB + 5}
"""One PUT (under the 5 MiB part size), and three parts."""
DOWNLOAD_RANGE = {"single": "16MiB", "multipart": "5MiB"}
"""12 MiB objects come down as one GET (the default range size, 16 MiB) or as three 5 MiB
ranges. Not smaller: a server killed while sending has often handed a few MiB to the
kernel already (loopback send buffers grow to 4 MiB), and those still arrive."""
PACE = (0.05, 256 * 1024)
"""(seconds, per bytes) of added latency: ~5 MiB/s per connection, slow enough to act
mid-transfer, quick enough for a short test."""
DOWN = 3.0
"""Seconds the killed server stays down: longer than one request's own retries (obstore
gives up after ~1.2 s), so runctl's handling of a lost server is what is tested."""


def kill_and_restart(weed: Weed, proxy: FaultProxy, up: int = 0, down: int = 0) -> FaultProxy:
    """Once the transfer is part-way (``up``/``down`` body bytes through the proxy),
    SIGKILL the server and stop the proxy in front of it (the endpoint dies as a whole:
    its connections close, new ones are refused), wait ``DOWN`` seconds, then start both
    again as the same server (same ports, same data directory); return the new proxy."""
    assert proxy.wait_body_bytes(up=up, down=down, timeout=20), proxy.body_bytes()
    weed.kill()
    proxy.stop()
    time.sleep(DOWN)
    weed.start()
    again = FaultProxy(weed.endpoint, proxy.port).start()
    again.delay(PACE[0], per_bytes=PACE[1])
    return again


def assert_network_failure_or_success(res: CliResult) -> None:
    assert "Traceback" not in res.err, res.err
    assert res.code in (0, 5), (res.code, res.err)
    if res.code == 5:
        assert len(error_lines(res)) == 1 and len(res.err.strip().splitlines()) <= 2, res.err


def upload_while_killed(weed: Weed, src: Path, url: str, *, proxy_survives: bool) -> tuple[CliResult, int]:
    """Upload ``src`` through a slow proxy, SIGKILL the server a third of the way in,
    restart it; the result and how many requests reached the server after the restart."""
    proxy = FaultProxy(weed.endpoint).start()
    after = proxy
    try:
        proxy.delay(PACE[0], per_bytes=PACE[1])
        proc = spawn("--endpoint-url", proxy.endpoint, "--no-progress", *PART, "s3", "upload", str(src), url)
        if proxy_survives:
            before = len(proxy.seen())
            kill_only(weed, proxy, up=src.stat().st_size // 3)
        else:
            before = 0
            after = kill_and_restart(weed, proxy, up=src.stat().st_size // 3)
        return finish(proc), len(after.seen()) - before
    finally:
        proxy.stop()
        after.stop()


def kill_only(weed: Weed, proxy: FaultProxy, up: int = 0, down: int = 0) -> None:
    """As ``kill_and_restart``, but the proxy in front stays up (a load balancer or a
    gateway in front of the server): requests meanwhile find their connection closed."""
    assert proxy.wait_body_bytes(up=up, down=down, timeout=20), proxy.body_bytes()
    weed.kill()
    time.sleep(DOWN)
    weed.start()


@pytest.mark.parametrize("kind", ["single", "multipart"])
def test_server_killed_mid_upload(own_weed: Weed, tmp_path: Path, kind: str) -> None:
    """The server dies with a third of the body sent: exit 0 or 5 (one error line); under
    the key, nothing or the whole file; the rerun completes."""
    data = os.urandom(UPLOAD_SIZES[kind])
    src = tmp_path / "up.bin"
    src.write_bytes(data)
    key = "killed/up.bin"
    url = f"s3://{own_weed.bucket}/{key}"

    res, resumed = upload_while_killed(own_weed, src, url, proxy_survives=False)

    client = own_weed.client()
    landed = object_or_none(client, own_weed.bucket, key)
    assert landed is None or landed == data, (res.code, len(landed))
    assert_network_failure_or_success(res)
    if res.code == 0:
        assert landed == data and resumed > 0, resumed
    again = run("--no-progress", *PART, "s3", "upload", str(src), url)
    assert again.code == 0, again.err
    assert object_or_none(client, own_weed.bucket, key) == data


def test_server_behind_a_proxy_killed_mid_upload(own_weed: Weed, tmp_path: Path) -> None:
    """As above, with the proxy staying up while the server is down (requests find their
    connection closed with no answer, as behind a TCP load balancer)."""
    data = os.urandom(UPLOAD_SIZES["multipart"])
    src = tmp_path / "up.bin"
    src.write_bytes(data)
    key = "killed/up.bin"
    url = f"s3://{own_weed.bucket}/{key}"

    res, _ = upload_while_killed(own_weed, src, url, proxy_survives=True)

    client = own_weed.client()
    landed = object_or_none(client, own_weed.bucket, key)
    assert landed is None or landed == data, (res.code, len(landed))
    assert_network_failure_or_success(res)
    again = run("--no-progress", *PART, "s3", "upload", str(src), url)
    assert again.code == 0, again.err
    assert object_or_none(client, own_weed.bucket, key) == data


def download_while_killed(
    weed: Weed, url: str, target: Path, env: dict[str, str], *, proxy_survives: bool
) -> tuple[CliResult, int]:
    proxy = FaultProxy(weed.endpoint).start()
    after = proxy
    try:
        proxy.delay(PACE[0], per_bytes=PACE[1])
        argv = ("--endpoint-url", proxy.endpoint, "--no-progress", *PART, "s3", "download", url, str(target))
        proc = spawn(*argv, env=env)
        third = 4 * MiB
        if proxy_survives:
            before = len(proxy.seen())
            kill_only(weed, proxy, down=third)
        else:
            before = 0
            after = kill_and_restart(weed, proxy, down=third)
        return finish(proc), len(after.seen()) - before
    finally:
        proxy.stop()
        after.stop()


def check_killed_download(res: CliResult, dst: Path, data: bytes, url: str, env: dict[str, str]) -> None:
    """No temp file, nothing or the whole file at the final name, the rerun completes;
    then (last, so the rest is checked even where it fails) exit 0 or 5 with one line."""
    assert temp_files(dst) == []
    assert final_files(dst) in ({}, {"down.bin": data})
    again = run("--no-progress", *PART, "s3", "download", url, str(dst / "down.bin"), env=env)
    assert again.code == 0, again.err
    assert final_files(dst) == {"down.bin": data}
    assert partial_files(dst) == []  # resumed from, then removed
    assert_network_failure_or_success(res)


@pytest.mark.parametrize("kind", ["single", "multipart"])
def test_server_killed_mid_download(own_weed: Weed, tmp_path: Path, kind: str) -> None:
    """The server dies with a third of the object sent: exit 0 or 5 (one error line); at
    the final name, nothing or the whole file, and no temp file; the rerun completes."""
    data = os.urandom(12 * MiB + 5)
    key = "killed/down.bin"
    url = f"s3://{own_weed.bucket}/{key}"
    own_weed.client().put_object(Bucket=own_weed.bucket, Key=key, Body=data)
    dst = tmp_path / "dst"
    dst.mkdir()
    env = env_with(RUNCTL_RANGE_SIZE=DOWNLOAD_RANGE[kind])

    res, resumed = download_while_killed(own_weed, url, dst / "down.bin", env, proxy_survives=False)

    if res.code == 0:
        assert resumed > 0  # the kill did interrupt it: the rest came from the restarted server
    check_killed_download(res, dst, data, url, env)


def test_server_behind_a_proxy_killed_mid_download(own_weed: Weed, tmp_path: Path) -> None:
    """As above, with the proxy staying up while the server is down: the in-flight GET is
    cut short, and its retries find their connection closed with no answer (what a TCP
    load balancer or gateway in front of a dead server does). Three 5 MiB ranges."""
    data = os.urandom(12 * MiB + 5)
    key = "killed/down.bin"
    url = f"s3://{own_weed.bucket}/{key}"
    own_weed.client().put_object(Bucket=own_weed.bucket, Key=key, Body=data)
    dst = tmp_path / "dst"
    dst.mkdir()
    env = env_with(RUNCTL_RANGE_SIZE="5MiB")

    res, _ = download_while_killed(own_weed, url, dst / "down.bin", env, proxy_survives=True)

    check_killed_download(res, dst, data, url, env)


# -- 3. the client SIGKILLed mid-transfer ---------------------------------------------------


@pytest.mark.parametrize("kind", ["single", "multipart"])
def test_client_killed_mid_upload(
    s3_env: S3Server, proxy: FaultProxy, direct: Any, tmp_path: Path, kind: str
) -> None:
    """runctl is SIGKILLed with a third of the body sent (for multipart: parts in the
    server, no completion): no object under the key at all; the rerun completes."""
    data = os.urandom(UPLOAD_SIZES[kind])
    src = tmp_path / "up.bin"
    src.write_bytes(data)
    url = s3_env.fresh_prefix() + "up.bin"
    key = key_of(url)
    proxy.delay(PACE[0], per_bytes=PACE[1])
    proc = spawn("--endpoint-url", proxy.endpoint, "--no-progress", *PART, "s3", "upload", str(src), url)
    if kind == "multipart":  # a part landed whole: the upload exists server-side, unfinished
        wait_for(lambda: proxy.seen("PUT", path=r"partNumber=", action="delay"), 20, "a part PUT", proc)
    assert proxy.wait_body_bytes(up=len(data) // 3, timeout=20), proxy.body_bytes()
    proc.send_signal(signal.SIGKILL)
    finish(proc)
    assert proc.returncode == -signal.SIGKILL

    assert not proxy.seen("POST", path=r"uploadId="), proxy.seen()  # never completed
    assert object_or_none(direct, s3_env.bucket, key) is None
    if kind == "multipart":
        assert len(pending_uploads(direct, s3_env.bucket, key)) == 1  # what abort-uploads is for
    proxy.clear()
    again = via(proxy, "s3", "upload", str(src), url)
    assert again.code == 0, again.err
    assert object_or_none(direct, s3_env.bucket, key) == data


@pytest.mark.parametrize("kind", ["single", "multipart"])
def test_client_killed_mid_download(
    s3_env: S3Server, proxy: FaultProxy, direct: Any, tmp_path: Path, kind: str
) -> None:
    """runctl is SIGKILLed with a third of the object received (multipart: once a range
    is written whole): nothing at the final name (a temp file may stay: nothing could
    remove it; a ranged download keeps its partial for resuming); the rerun completes,
    a ranged one from the ranges written."""
    data = os.urandom(12 * MiB + 5)
    url = s3_env.fresh_prefix() + "down.bin"
    direct.put_object(Bucket=s3_env.bucket, Key=key_of(url), Body=data)
    dst = tmp_path / "dst"
    dst.mkdir()
    env = env_with(RUNCTL_RANGE_SIZE=DOWNLOAD_RANGE[kind])
    proxy.delay(PACE[0], per_bytes=PACE[1])
    argv = ("s3", "download", url, str(dst / "down.bin"))
    proc = spawn("--endpoint-url", proxy.endpoint, "--no-progress", *PART, *argv, env=env)
    assert proxy.wait_body_bytes(down=len(data) // 3, timeout=20), proxy.body_bytes()
    journal = dst / f".down.bin{PARTIAL_MARK}journal"
    if kind == "single":
        wait_for(lambda: temp_files(dst), 10, "the temp file", proc)
    else:  # the header line and one range's
        wait_for(lambda: journal.exists() and journal.read_text().count("\n") >= 2, 20, "a range", proc)
    proc.send_signal(signal.SIGKILL)
    finish(proc)
    assert proc.returncode == -signal.SIGKILL

    assert final_files(dst) == {}
    if kind == "single":
        left = temp_files(dst)
        assert len(left) == 1 and left[0].startswith("."), left  # hidden, beside the final name
    else:
        assert partial_files(dst) == [f".down.bin{PARTIAL_MARK}data", journal.name]
    proxy.clear()
    again = via(proxy, "-o", "json", *argv, env=env)
    assert again.code == 0, again.err
    assert final_files(dst) == {"down.bin": data}
    assert partial_files(dst) == []
    assert json.loads(again.out)["resumed"] is (kind == "multipart"), again.out


# -- 4. the destination disk fills up -------------------------------------------------------


@pytest.mark.parametrize("ranges", ["one-get", "ranged"])
def test_disk_full_on_download(
    s3_env: S3Server, direct: Any, tmp_path: Path, ranges: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 4 MiB tmpfs as the destination (mount -t tmpfs -o size=4m, as root): of a prefix
    with two small files and a 12 MiB one, the small ones land whole, the big one fails
    with one error line naming it, exit 1, nothing of it left (no final name, no temp)."""
    prefix = s3_env.fresh_prefix()
    small = {"a.txt": b"alpha\n" * 1000, "z.txt": os.urandom(300_000)}
    big = os.urandom(12 * MiB + 5)
    for name, body in {**small, "m.bin": big}.items():
        direct.put_object(Bucket=s3_env.bucket, Key=key_of(prefix) + name, Body=body)
    if ranges == "ranged":  # a pre-sized temp file written by parallel 5 MiB ranges
        monkeypatch.setenv("RUNCTL_RANGE_SIZE", "5MiB")
    with tmpfs(tmp_path / "small-disk", "4m") as disk:
        dst = disk / "dst"
        res = run("--no-progress", *PART, "--concurrency", "1", "s3", "download", prefix, str(dst), "-r")
        left = final_files(dst)
        temps = temp_files(disk)

    assert res.code == 1, (res.code, res.out, res.err)
    assert "Traceback" not in res.err, res.err
    errors = [line for line in res.err.splitlines() if line.startswith(("error: ", "failed: "))]
    assert len(errors) == 1, res.err  # "failed: m.bin: cannot write ...: No space left on device"
    assert "m.bin" in errors[0] and "No space left on device" in errors[0], errors
    assert left == small  # the files that fit are whole; nothing at m.bin
    assert temps == []


def test_disk_full_on_single_file_download(s3_env: S3Server, direct: Any, tmp_path: Path) -> None:
    """One object into a 4 MiB tmpfs: exit 1, one error line naming the file, no file."""
    url = s3_env.fresh_prefix() + "big.bin"
    direct.put_object(Bucket=s3_env.bucket, Key=key_of(url), Body=os.urandom(12 * MiB + 5))
    with tmpfs(tmp_path / "small-disk", "4m") as disk:
        res = run("--no-progress", *PART, "s3", "download", url, str(disk / "big.bin"))
        left = sorted(p.name for p in disk.iterdir())

    assert res.code == 1, (res.code, res.out, res.err)
    assert "Traceback" not in res.err, res.err
    errors = error_lines(res)
    assert len(errors) == 1 and "big.bin" in errors[0] and "No space left" in errors[0], res.err
    assert left == []


# -- 5. a source file that changes or vanishes while it is uploaded -----------------------

CHANGES = {
    # (size, how the file is changed a third of the way through its upload)
    "rewritten-same-size-single": (4 * MiB + 3, "same-size"),
    "rewritten-same-size-multipart": (12 * MiB + 5, "same-size"),
    "rewritten-shorter-multipart": (12 * MiB + 5, "shorter"),
    "vanished-multipart": (12 * MiB + 5, "vanish"),
}


def change(path: Path, how: str, size: int) -> bytes | None:
    """Change ``path`` as an editor or a training job would; its new content (None: gone).
    In place (same inode): a reader that has the file open sees the new bytes."""
    if how == "vanish":
        path.unlink()
        return None
    new = os.urandom(size if how == "same-size" else 7 * MiB + 1)
    with open(path, "r+b" if how == "same-size" else "wb") as fh:
        fh.write(new)
    return new


def describe(landed: bytes, old: bytes, new: bytes) -> str:
    """Which version each MiB of ``landed`` comes from: "o" (old), "n" (new), "?" (neither)."""
    marks = []
    for at in range(0, len(landed), MiB):
        piece = landed[at : at + MiB]
        marks.append("o" if old[at : at + MiB] == piece else "n" if new[at : at + MiB] == piece else "?")
    return f"{len(landed)} bytes (old {len(old)}, new {len(new)}), by MiB: {''.join(marks)}"


def upload_while_changing(
    s3: S3Server, proxy: FaultProxy, direct: Any, tmp_path: Path, case: str
) -> tuple[CliResult, bytes, bytes | None, bytes | None]:
    """Upload a file slowly (one part in flight, so the file is read as the upload goes)
    and change it a third of the way in: (result, old content, new content, what landed)."""
    size, how = CHANGES[case]
    old = os.urandom(size)
    src = tmp_path / "changing.bin"
    src.write_bytes(old)
    url = s3.fresh_prefix() + "changing.bin"
    proxy.delay(PACE[0], per_bytes=PACE[1])
    env = env_with(RUNCTL_PARTS_IN_FLIGHT="1")
    argv = ("--endpoint-url", proxy.endpoint, "--no-progress", *PART, "s3", "upload", str(src), url)
    proc = spawn(*argv, env=env)
    assert proxy.wait_body_bytes(up=size // 3, timeout=20), proxy.body_bytes()
    assert proc.poll() is None, "the upload ended before the change"
    new = change(src, how, size)
    res = finish(proc)
    return res, old, new, object_or_none(direct, s3.bucket, key_of(url))


@pytest.mark.parametrize(
    "case",
    [
        "rewritten-same-size-single",
        "rewritten-same-size-multipart",
        "rewritten-shorter-multipart",
    ],
)
def test_source_changing_mid_upload_is_never_torn(
    s3_env: S3Server, proxy: FaultProxy, direct: Any, tmp_path: Path, case: str
) -> None:
    """What lands under the key is exactly the old content or exactly the new one (or
    nothing); never a mix."""
    res, old, new, landed = upload_while_changing(s3_env, proxy, direct, tmp_path, case)
    assert "Traceback" not in res.err, res.err
    outcome = "nothing" if landed is None else "old" if landed == old else "new" if landed == new else "torn"
    assert outcome != "torn", (res.code, res.err, describe(landed or b"", old, new or b""))
    if res.code == 0:
        assert outcome in ("old", "new"), outcome


@pytest.mark.parametrize(
    "case", ["rewritten-same-size-single", "rewritten-same-size-multipart", "rewritten-shorter-multipart"]
)
def test_source_changing_mid_upload_is_reported(
    s3_env: S3Server, proxy: FaultProxy, direct: Any, tmp_path: Path, case: str
) -> None:
    """Like GNU tar's "file changed as we read it" (or rsync's second pass): a file that
    changed during its upload is named, as a warning or as a failure (non-zero exit)."""
    res, _, _, _ = upload_while_changing(s3_env, proxy, direct, tmp_path, case)
    assert "Traceback" not in res.err, res.err
    named = [line for line in res.err.splitlines() if "changing.bin" in line and "chang" in line.lower()]
    assert res.code != 0 or any(line.startswith("warning: ") for line in named), (res.code, res.err)
    assert named, res.err


def test_source_vanishing_mid_upload(
    s3_env: S3Server, proxy: FaultProxy, direct: Any, tmp_path: Path
) -> None:
    """Deleted while being read: runctl has it open, so it may finish the upload of the
    whole old content (as cp, rsync and aws s3 cp do once a file is open); or fail naming
    it (exit 4, "vanished"). Never a partial object; a report if it did not land."""
    res, old, _, landed = upload_while_changing(s3_env, proxy, direct, tmp_path, "vanished-multipart")
    assert "Traceback" not in res.err, res.err
    if res.code == 0:
        assert landed == old
    else:
        assert landed is None or landed == old
        assert "changing.bin" in res.err, res.err
