"""`runctl s3 abort-uploads` against SeaweedFS: unfinished multipart uploads started with
botocore (as an interrupted upload leaves them), listed, spared by age, aborted."""

from __future__ import annotations

from typing import Any

from tests.conftest import S3Server, cli, key_of


def start_uploads(s3_client: Any, bucket: str, keys: list[str]) -> dict[str, str]:
    ids = {}
    for key in keys:
        upload = s3_client.create_multipart_upload(Bucket=bucket, Key=key)
        s3_client.upload_part(
            Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=b"p" * 1024
        )
        ids[key] = upload["UploadId"]
    return ids


def unfinished(s3_client: Any, bucket: str, prefix: str) -> set[str]:
    page = s3_client.list_multipart_uploads(Bucket=bucket, Prefix=prefix)
    return {u["Key"] for u in page.get("Uploads", [])}


def test_dry_run_lists_and_a_run_aborts_only_under_the_prefix(s3_env: S3Server, s3_client: Any) -> None:
    url = s3_env.fresh_prefix()
    prefix = key_of(url)
    other = s3_env.fresh_prefix()
    ids = start_uploads(s3_client, s3_env.bucket, [prefix + "ckpt/a.pt", prefix + "b.bin"])
    start_uploads(s3_client, s3_env.bucket, [key_of(other) + "keep.bin"])

    dry = cli("-o", "json", "s3", "abort-uploads", url, "--dry-run")
    assert dry.code == 0, dry.err
    doc = dry.json()
    assert doc["command"] == "abort-uploads" and doc["dry_run"] is True and doc["found"] == 2
    assert {(u["key"], u["upload_id"]) for u in doc["aborted"]} == set(ids.items())
    assert unfinished(s3_client, s3_env.bucket, prefix) == set(ids)  # nothing aborted

    young = cli("-o", "json", "s3", "abort-uploads", url, "--older-than", "1h")
    assert young.code == 0 and young.json()["aborted"] == []  # started seconds ago: spared
    assert unfinished(s3_client, s3_env.bucket, prefix) == set(ids)

    text = cli("s3", "abort-uploads", url)
    assert text.code == 0, text.err
    assert sorted(line.split()[2] for line in text.out.splitlines()) == sorted(ids)
    assert "2 of 2 unfinished uploads aborted" in text.err
    assert unfinished(s3_client, s3_env.bucket, prefix) == set()
    assert unfinished(s3_client, s3_env.bucket, key_of(other)) == {key_of(other) + "keep.bin"}


def test_bad_age_and_missing_bucket_are_one_line_errors(s3_env: S3Server) -> None:
    bad = cli("s3", "abort-uploads", s3_env.fresh_prefix(), "--older-than", "yesterday")
    assert bad.code == 2 and "not an age" in bad.err and bad.err.count("\n") <= 2
    missing = cli("-o", "json", "s3", "abort-uploads", "s3://runctl-no-such-bucket/p/")
    assert missing.code == 4, missing.out + missing.err
    assert missing.json()["error"]["message"].startswith("bucket not found")
