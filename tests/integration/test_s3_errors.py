"""Errors: one exit code per kind, one structured message, never a traceback."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliResult, S3Server, cli, cli_subprocess, read_tree, write_tree

UNREACHABLE = "http://127.0.0.1:1"


def assert_text_error(res: CliResult, exit_code: int) -> str:
    """One ``error:`` line and one ``hint:`` line on stderr, nothing on stdout; returns the message."""
    assert res.code == exit_code, (res.code, res.out, res.err)
    assert "Traceback" not in res.err
    assert res.out == ""
    lines = res.err.splitlines()
    assert len(lines) == 2, res.err
    assert lines[0].startswith("error: ") and len(lines[0]) > len("error: ")
    assert lines[1].startswith("hint: ") and len(lines[1]) > len("hint: ")
    assert "internal error" not in lines[0]
    return lines[0][len("error: ") :]


def assert_json_error(res: CliResult, exit_code: int, code: str | tuple[str, ...]) -> dict[str, Any]:
    """Exactly ``{"ok": false, "error": {"code", "message", "hint"}}`` on stdout."""
    assert res.code == exit_code, (res.code, res.out, res.err)
    assert "Traceback" not in res.err
    assert res.out.endswith("\n") and res.out.count("\n") == 1, res.out
    doc = json.loads(res.out)
    assert set(doc) == {"ok", "error"}
    assert doc["ok"] is False
    err = doc["error"]
    assert set(err) == {"code", "message", "hint"}
    assert err["code"] in ((code,) if isinstance(code, str) else code), err
    assert isinstance(err["message"], str) and err["message"]
    assert isinstance(err["hint"], str) and err["hint"]
    assert "internal error" not in err["message"]
    return dict(err)


def both(argv: list[str], exit_code: int, code: str | tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    """Run a failing command in text and in JSON mode; check both shapes."""
    message = assert_text_error(cli(*argv), exit_code)
    err = assert_json_error(cli("-o", "json", *argv), exit_code, code)
    assert err["message"] == message
    return message, err


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    f = tmp_path / "file.txt"
    f.write_bytes(b"data")
    return f


# -- usage errors (exit 2) -----------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "not-a-url",
        "http://bucket/key",
        "s3://",
        "s3:///key",
        "s3://Bad_Bucket!/x",
        "s3:/bucket/key",
        "S3://bucket/k",
    ],
)
def test_bad_url_is_a_usage_error(s3_env: S3Server, url: str) -> None:
    message, _ = both(["s3", "list", url], 2, "usage")
    assert url in message or "S3 URL" in message or "bucket" in message


def test_bad_url_on_upload_and_download(s3_env: S3Server, a_file: Path, tmp_path: Path) -> None:
    both(["s3", "upload", str(a_file), "bucket/key"], 2, "usage")
    both(["s3", "download", "/local/path", str(tmp_path / "x")], 2, "usage")
    both(["s3", "download", "s3://NOPE/x", str(tmp_path / "x"), "-r"], 2, "usage")


def test_directory_without_recursive_is_a_usage_error(s3_env: S3Server, tmp_path: Path) -> None:
    src = write_tree(tmp_path / "dir", {"a.txt": b"a"})
    message, _ = both(["s3", "upload", str(src), s3_env.fresh_prefix()], 2, "usage")
    assert str(src) in message
    assert "--recursive" in cli("s3", "upload", str(src), s3_env.fresh_prefix()).err


def test_download_of_a_prefix_without_recursive_is_a_usage_error(s3_env: S3Server, tmp_path: Path) -> None:
    both(["s3", "download", s3_env.fresh_prefix(), str(tmp_path / "out")], 2, "usage")
    assert not (tmp_path / "out").exists()


def test_file_with_recursive_is_a_usage_error(s3_env: S3Server, a_file: Path) -> None:
    both(["s3", "upload", str(a_file), s3_env.fresh_prefix(), "--recursive"], 2, "usage")


@pytest.mark.parametrize(
    "flags",
    [
        ["--part-size", "1MiB"],
        ["--part-size", "lots"],
        ["--concurrency", "0"],
        ["--endpoint-url", "localhost:9000"],
    ],
)
def test_invalid_settings_are_usage_errors(s3_env: S3Server, flags: list[str]) -> None:
    both([*flags, "s3", "list", s3_env.fresh_prefix()], 2, "usage")


def test_invalid_setting_from_environment_is_a_usage_error(
    s3_env: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNCTL_PART_SIZE", "tiny")
    message, _ = both(["s3", "list", s3_env.fresh_prefix()], 2, "usage")
    assert "tiny" in message


def test_argparse_errors_exit_2(s3_env: S3Server) -> None:
    assert cli("s3", "list").code == 2
    assert cli("s3", "list", s3_env.url(), "--no-such-flag").code == 2
    assert cli("s3", "frobnicate").code == 2
    assert cli("-o", "yaml", "s3", "list", s3_env.url()).code == 2


# -- not found (exit 4) --------------------------------------------------------------------


def test_missing_bucket(s3_env: S3Server, tmp_path: Path) -> None:
    missing = f"s3://runctl-missing-{uuid.uuid4().hex[:8]}/"
    message, _ = both(["s3", "list", missing], 4, "bucket_not_found")
    assert missing[5:-1] in message
    both(["s3", "list", missing + "p/", "--recursive"], 4, "bucket_not_found")
    # A single key is looked up with HEAD, whose 404 has no body naming the missing bucket.
    both(["s3", "download", missing + "p/key", str(tmp_path / "out")], 4, ("bucket_not_found", "not_found"))
    both(["s3", "download", missing + "p/", str(tmp_path / "out"), "-r"], 4, "bucket_not_found")
    assert not (tmp_path / "out").exists()


def test_upload_to_missing_bucket_on_moto(s3_env: S3Server, moto_endpoint: str, a_file: Path) -> None:
    """SeaweedFS creates a bucket on the first PUT into it; moto, like AWS, answers NoSuchBucket."""
    missing = f"s3://runctl-missing-{uuid.uuid4().hex[:8]}/"
    ep = ["--endpoint-url", moto_endpoint]
    both([*ep, "s3", "upload", str(a_file), missing + "p/"], 4, "bucket_not_found")
    both([*ep, "s3", "upload", str(a_file.parent), missing + "p/", "-r"], 4, "bucket_not_found")
    both([*ep, "s3", "list", missing], 4, "bucket_not_found")


def test_missing_key(s3_env: S3Server, tmp_path: Path) -> None:
    url = s3_env.fresh_prefix() + "no-such-key.txt"
    message, _ = both(["s3", "download", url, str(tmp_path / "out.txt")], 4, "not_found")
    assert "no-such-key.txt" in message
    assert list(tmp_path.iterdir()) == []


def test_missing_prefix_on_recursive_download(s3_env: S3Server, tmp_path: Path) -> None:
    both(["s3", "download", s3_env.fresh_prefix(), str(tmp_path / "out"), "-r"], 4, "not_found")
    assert not (tmp_path / "out").exists()


def test_missing_local_path(s3_env: S3Server, tmp_path: Path) -> None:
    missing = tmp_path / "does-not-exist"
    message, _ = both(["s3", "upload", str(missing), s3_env.fresh_prefix()], 4, "not_found")
    assert str(missing) in message
    both(["s3", "upload", str(missing), s3_env.fresh_prefix(), "--recursive"], 4, "not_found")


# -- credentials (exit 3) ------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"])
def test_wrong_credentials(
    s3_env: S3Server, monkeypatch: pytest.MonkeyPatch, a_file: Path, tmp_path: Path, variable: str
) -> None:
    url = s3_env.fresh_prefix()
    assert cli("s3", "upload", str(a_file), url).code == 0
    monkeypatch.setenv(variable, "definitely-wrong")
    both(["s3", "list", url], 3, "credentials")
    both(["s3", "list", url, "-r"], 3, "credentials")
    both(["s3", "upload", str(a_file), url + "again/"], 3, "credentials")
    # A HEAD answer has no body to say why it was refused: "access denied" is all S3 tells.
    both(["s3", "download", url + "file.txt", str(tmp_path / "out.txt")], 3, ("credentials", "access_denied"))
    both(["s3", "download", url, str(tmp_path / "out"), "-r"], 3, "credentials")
    assert not (tmp_path / "out.txt").exists() and not (tmp_path / "out").exists()


def test_wrong_secret_as_a_subprocess(s3_env: S3Server, a_file: Path) -> None:
    import os

    env = dict(os.environ, AWS_SECRET_ACCESS_KEY="definitely-wrong")
    res = cli_subprocess("s3", "upload", str(a_file), s3_env.fresh_prefix(), env=env)
    assert_text_error(res, 3)
    res = cli_subprocess("-o", "json", "s3", "list", s3_env.fresh_prefix(), env=env)
    assert_json_error(res, 3, "credentials")


# -- network (exit 5) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["s3", "list", "s3://runctl-test/p/"],
        ["s3", "list", "s3://runctl-test/p/", "-r"],
        ["s3", "upload", "{file}", "s3://runctl-test/p/"],
        ["s3", "download", "s3://runctl-test/p/key", "{out}"],
        ["s3", "download", "s3://runctl-test/p/", "{out}", "-r"],
    ],
    ids=["list", "list-recursive", "upload", "download", "download-recursive"],
)
def test_unreachable_endpoint_is_a_network_error_and_fails_fast(
    s3_env: S3Server, a_file: Path, tmp_path: Path, argv: list[str]
) -> None:
    argv = [a.format(file=a_file, out=tmp_path / "out") for a in argv]
    started = time.monotonic()
    message = assert_text_error(cli("--endpoint-url", UNREACHABLE, *argv), 5)
    elapsed = time.monotonic() - started
    assert "127.0.0.1:1" in message
    assert elapsed < 15, f"took {elapsed:.1f}s to give up on a refused connection"
    assert_json_error(cli("-o", "json", "--endpoint-url", UNREACHABLE, *argv), 5, "network")
    assert not (tmp_path / "out").exists()


def test_unreachable_endpoint_from_environment_as_a_subprocess(s3_env: S3Server) -> None:
    import os

    env = dict(os.environ, AWS_ENDPOINT_URL=UNREACHABLE)
    started = time.monotonic()
    res = cli_subprocess("-o", "json", "s3", "list", "s3://runctl-test/", env=env)
    assert time.monotonic() - started < 20
    assert_json_error(res, 5, "network")


# -- partial failure (exit 1) --------------------------------------------------------------


def test_partial_failure_exit_1_and_the_rest_completes(s3_env: S3Server, tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {"blocked.txt": b"x", "ok1.txt": b"1", "sub/ok2.txt": b"2"})
    url = s3_env.fresh_prefix()
    assert cli("s3", "upload", str(src), url, "-r").code == 0
    dst = tmp_path / "dst"
    (dst / "blocked.txt" / "occupied").mkdir(parents=True)  # a non-empty dir where a file must go
    res = cli("-o", "json", "s3", "download", url, str(dst), "-r")
    assert res.code == 1, res.out
    doc = json.loads(res.out)
    assert doc["ok"] is False
    assert [f["path"] for f in doc["failed"]] == ["blocked.txt"]
    assert doc["files"] == 2
    assert read_tree(dst) == {"ok1.txt": b"1", "sub/ok2.txt": b"2"}
    text = cli("s3", "download", url, str(dst), "-r")
    assert text.code == 1
    assert "Traceback" not in text.err
    assert any(line.startswith("failed: blocked.txt") for line in text.err.splitlines()), text.err
