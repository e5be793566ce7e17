"""Against ``rclone serve s3``, which answers a ranged GET with ``200 OK`` instead of
``206 Partial Content`` (some S3-compatible servers and proxies also send the whole body
then). runctl downloads large objects as parallel ranged GETs; with such a server it must
not fail ("Received non-partial response when range requested"): it falls back to one
plain GET per object, streamed once, and remembers not to ask for ranges again."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RcloneS3, botocore_client, cli

pytestmark = pytest.mark.integration

MiB = 1024 * 1024


@pytest.fixture
def rclone_env(rclone_s3: RcloneS3, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> RcloneS3:
    for key in [k for k in os.environ if k.startswith(("AWS_", "RUNCTL_")) and k != "RUNCTL_CACHE_DIR"]:
        monkeypatch.delenv(key)
    for key, value in rclone_s3.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return rclone_s3


def client_for(server: RcloneS3) -> Any:
    return botocore_client(server.endpoint, server.access_key, server.secret_key)


def put(server: RcloneS3, key: str, data: bytes) -> None:
    """Through the server's own S3 API (a file written behind its back would not be
    listed until its directory cache expires)."""
    client_for(server).put_object(Bucket=server.bucket, Key=key, Body=data)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_the_server_really_ignores_ranges(rclone_env: RcloneS3) -> None:
    """The premise: a signed ranged GET comes back 200, not 206."""
    import urllib.request

    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    put(rclone_env, "premise/ten.bin", bytes(range(10)))
    request = AWSRequest(
        "GET", f"{rclone_env.endpoint}/{rclone_env.bucket}/premise/ten.bin", headers={"Range": "bytes=2-4"}
    )
    S3SigV4Auth(Credentials(rclone_env.access_key, rclone_env.secret_key), "s3", "us-east-1").add_auth(
        request
    )
    signed = urllib.request.Request(request.url, headers=dict(request.headers.items()))
    with urllib.request.urlopen(signed, timeout=10) as answer:
        assert answer.status == 200
        assert answer.read() in (bytes(range(10)), bytes([2, 3, 4]))  # all of it, or the range


def test_download_of_40_mib_object(rclone_env: RcloneS3, tmp_path: Path) -> None:
    data = os.urandom(40 * MiB)
    put(rclone_env, "big/model.bin", data)
    out = tmp_path / "model.bin"
    res = cli("-o", "json", "s3", "download", f"s3://{rclone_env.bucket}/big/model.bin", str(out))
    assert res.code == 0, res.out + res.err
    doc = json.loads(res.out)
    assert doc["ok"] is True and doc["files"] == 1 and doc["bytes"] == len(data), doc
    assert out.stat().st_size == len(data)
    assert sha(out.read_bytes()) == sha(data)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.bin"]  # no temporary file left


def test_recursive_download_and_sync_of_large_and_small_objects(rclone_env: RcloneS3, tmp_path: Path) -> None:
    files = {
        "set/a.bin": os.urandom(20 * MiB),
        "set/b.bin": os.urandom(33 * MiB + 7),
        "set/small.txt": b"small",
    }
    for key, data in files.items():
        put(rclone_env, key, data)
    out = tmp_path / "out"
    # Small ranges, so that every large object would need several of them.
    res = cli("--part-size", "5MiB", "s3", "download", f"s3://{rclone_env.bucket}/set/", str(out), "-r")
    assert res.code == 0, res.err
    got = {p.relative_to(out).as_posix(): sha(p.read_bytes()) for p in out.rglob("*") if p.is_file()}
    assert got == {key.removeprefix("set/"): sha(data) for key, data in files.items()}

    synced = tmp_path / "synced"
    res = cli("-o", "json", "s3", "sync", f"s3://{rclone_env.bucket}/set/", str(synced))
    assert res.code == 0, res.out + res.err
    assert json.loads(res.out)["copied"] == 3
    assert sha((synced / "b.bin").read_bytes()) == sha(files["set/b.bin"])
