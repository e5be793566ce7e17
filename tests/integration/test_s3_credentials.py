"""Credentials and endpoints resolve as the AWS CLI resolves them (botocore's chain)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import S3Server, cli


@pytest.fixture
def profiles(s3_env: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """Keys only in the shared files, under named profiles; none in the environment."""
    creds = tmp_path / "credentials"
    config = tmp_path / "config"
    key, secret = s3_env.server.access_key, s3_env.server.secret_key
    creds.write_text(
        f"[train]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n"
        f"[broken]\naws_access_key_id = {key}\naws_secret_access_key = not-the-secret\n"
    )
    config.write_text(
        "[profile train]\nregion = us-east-1\n"
        f"[profile withendpoint]\nregion = us-east-1\nendpoint_url = {s3_env.endpoint}\n"
        f"aws_access_key_id = {key}\naws_secret_access_key = {secret}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    return s3_env


def _listed(*argv: str) -> int:
    result = cli("-o", "json", *argv)
    assert result.code == 0, result.out + result.err
    doc = result.json()
    assert isinstance(doc, dict) and doc["ok"] is True
    return int(doc["count"])


def test_profile_flag_reads_the_shared_credentials_file(profiles: S3Server, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    url = profiles.fresh_prefix()
    assert cli("--profile", "train", "s3", "upload", str(tmp_path / "f.txt"), url).code == 0
    assert _listed("--profile", "train", "s3", "list", url) == 1


def test_aws_profile_variable_works_too(profiles: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "train")
    assert _listed("s3", "list", profiles.fresh_prefix()) == 0


def test_endpoint_url_from_the_profile(profiles: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    assert _listed("--profile", "withendpoint", "s3", "list", profiles.fresh_prefix()) == 0


def test_wrong_secret_in_a_profile_is_a_credentials_error(profiles: S3Server) -> None:
    result = cli("-o", "json", "--profile", "broken", "s3", "list", profiles.fresh_prefix(), "-r")
    assert result.code == 3
    assert result.json()["error"]["code"] == "credentials"  # type: ignore[index]


def test_unknown_profile_says_how_to_fix_it(profiles: S3Server) -> None:
    result = cli("--profile", "nope", "s3", "list", profiles.fresh_prefix())
    assert result.code == 3
    assert "error: AWS profile 'nope' not found" in result.err
    assert "aws configure" in result.err


def test_no_credentials_anywhere(profiles: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    result = cli("-o", "json", "s3", "list", profiles.fresh_prefix())
    assert result.code == 3
    error = result.json()["error"]  # type: ignore[index]
    assert error["code"] == "credentials"
    assert "aws configure" in error["hint"] and "AWS_ACCESS_KEY_ID" in error["hint"]
