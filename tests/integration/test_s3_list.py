"""`runctl s3 list` against SeaweedFS, including listings that span several 1,000-key pages."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import S3Server, botocore_client, cli, cli_subprocess, key_of, read_tree, write_tree

FLAT = 1050
NESTED_DIRS = 5
PER_DIR = 10


@dataclass
class Uploaded:
    url: str
    prefix: str
    files: dict[str, bytes]


def big_tree() -> dict[str, bytes]:
    files = {"top.txt": b"top"}
    files.update({f"flat/f{i:04d}.txt": str(i).encode() for i in range(FLAT)})
    for d in range(NESTED_DIRS):
        files.update({f"nested/d{d}/x{j}.txt": f"{d}-{j}".encode() for j in range(PER_DIR)})
    return files


@pytest.fixture(scope="module")
def uploaded(s3: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Uploaded]:
    """1,101 small objects, uploaded once for the whole module."""
    files = big_tree()
    src = write_tree(tmp_path_factory.mktemp("many"), files)
    url = s3.fresh_prefix()
    with pytest.MonkeyPatch.context() as mp:
        for key, value in s3.server.env().items():
            mp.setenv(key, value)
        up = cli("-o", "json", "--concurrency", "32", "s3", "upload", str(src), url, "--recursive")
    assert up.code == 0, up.out
    assert up.json()["files"] == len(files)  # type: ignore[index]
    yield Uploaded(url, key_of(url), files)


def doc_of(result: Any) -> dict[str, Any]:
    assert result.code == 0, result.out + result.err
    doc = result.json()
    assert isinstance(doc, dict)
    return doc


def test_recursive_list_returns_every_key_across_pages(s3_env: S3Server, uploaded: Uploaded) -> None:
    doc = doc_of(cli("-o", "json", "s3", "list", uploaded.url, "--recursive"))
    keys = [o["key"] for o in doc["objects"]]
    assert len(keys) == len(uploaded.files) > 1000
    assert keys == sorted(uploaded.prefix + k for k in uploaded.files)  # complete, no duplicates, sorted
    assert doc["count"] == len(uploaded.files)
    assert doc["bytes"] == sum(len(v) for v in uploaded.files.values())
    assert doc["prefixes"] == []
    assert doc["ok"] is True and doc["command"] == "list"


def test_recursive_list_as_a_subprocess(s3_env: S3Server, uploaded: Uploaded) -> None:
    doc = doc_of(cli_subprocess("-o", "json", "s3", "list", uploaded.url, "-r"))
    assert sorted(o["key"] for o in doc["objects"]) == sorted(uploaded.prefix + k for k in uploaded.files)


def test_non_recursive_list_shows_prefixes_and_top_level_objects(
    s3_env: S3Server, uploaded: Uploaded
) -> None:
    doc = doc_of(cli("-o", "json", "s3", "list", uploaded.url))
    assert doc["prefixes"] == [uploaded.prefix + "flat/", uploaded.prefix + "nested/"]
    assert [o["key"] for o in doc["objects"]] == [uploaded.prefix + "top.txt"]
    assert doc["count"] == 1


def test_non_recursive_list_one_level_down(s3_env: S3Server, uploaded: Uploaded) -> None:
    doc = doc_of(cli("-o", "json", "s3", "list", uploaded.url + "nested/"))
    assert doc["prefixes"] == [f"{uploaded.prefix}nested/d{d}/" for d in range(NESTED_DIRS)]
    assert doc["objects"] == []
    # Without the trailing slash the URL names the same prefix.
    assert doc_of(cli("-o", "json", "s3", "list", uploaded.url + "nested"))["prefixes"] == doc["prefixes"]


def test_non_recursive_list_of_more_than_a_page_of_objects(s3_env: S3Server, uploaded: Uploaded) -> None:
    doc = doc_of(cli("-o", "json", "s3", "list", uploaded.url + "flat/"))
    assert doc["prefixes"] == []
    assert [o["key"] for o in doc["objects"]] == [f"{uploaded.prefix}flat/f{i:04d}.txt" for i in range(FLAT)]


def test_recursive_download_of_more_than_a_page(s3_env: S3Server, uploaded: Uploaded, tmp_path: Path) -> None:
    res = cli("-o", "json", "--concurrency", "32", "s3", "download", uploaded.url, str(tmp_path), "-r")
    assert doc_of(res)["files"] == len(uploaded.files)
    assert read_tree(tmp_path) == uploaded.files


def test_text_list_shows_pre_lines_then_objects(s3_env: S3Server, uploaded: Uploaded) -> None:
    res = cli("s3", "list", uploaded.url)
    assert res.code == 0, res.err
    lines = res.out.splitlines()
    assert len(lines) == 3
    assert re.fullmatch(r"\s+PRE flat/", lines[0])
    assert re.fullmatch(r"\s+PRE nested/", lines[1])
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +3 top\.txt", lines[2]), lines[2]


def test_text_recursive_list_shows_full_keys(s3_env: S3Server, uploaded: Uploaded) -> None:
    res = cli("s3", "list", uploaded.url + "nested/", "--recursive")
    assert res.code == 0, res.err
    names = [line.split()[-1] for line in res.out.splitlines()]
    assert names == sorted(
        f"{uploaded.prefix}nested/d{d}/x{j}.txt" for d in range(NESTED_DIRS) for j in range(PER_DIR)
    )


# -- object fields -------------------------------------------------------------------------


def test_json_object_fields(s3_env: S3Server, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_bytes(b"hello")
    url = s3_env.fresh_prefix()
    before = datetime.now(UTC).replace(microsecond=0).timestamp() - 5
    assert cli("s3", "upload", str(tmp_path / "f.txt"), url).code == 0
    (obj,) = doc_of(cli("-o", "json", "s3", "list", url))["objects"]
    assert set(obj) == {"key", "size", "last_modified", "etag"}
    assert obj["key"] == key_of(url) + "f.txt"
    assert obj["size"] == 5
    assert obj["etag"] == "5d41402abc4b2a76b9719d911017c592"  # md5(b"hello"), no quotes
    assert obj["last_modified"].endswith("Z")
    when = datetime.fromisoformat(obj["last_modified"].replace("Z", "+00:00")).timestamp()
    assert before <= when <= datetime.now(UTC).timestamp() + 5


def test_human_readable_sizes(s3_env: S3Server, tmp_path: Path) -> None:
    (tmp_path / "k.bin").write_bytes(os.urandom(1536))
    url = s3_env.fresh_prefix()
    assert cli("s3", "upload", str(tmp_path / "k.bin"), url).code == 0
    plain = cli("s3", "list", url)
    human = cli("s3", "list", url, "--human-readable")
    assert plain.code == human.code == 0
    assert plain.out.split()[2:] == ["1536", "k.bin"]
    assert human.out.split()[2:] == ["1.5", "KiB", "k.bin"]


def test_list_of_an_empty_prefix_is_empty_not_an_error(s3_env: S3Server) -> None:
    url = s3_env.fresh_prefix()
    doc = doc_of(cli("-o", "json", "s3", "list", url))
    assert (doc["objects"], doc["prefixes"], doc["count"]) == ([], [], 0)
    doc = doc_of(cli("-o", "json", "s3", "list", url, "-r"))
    assert (doc["objects"], doc["count"]) == ([], 0)
    text = cli("s3", "list", url)
    assert (text.code, text.out) == (0, "")


def test_list_of_a_bucket_root(s3_env: S3Server, tmp_path: Path) -> None:
    name = f"root-{os.urandom(4).hex()}.txt"
    (tmp_path / name).write_bytes(b"r")
    assert cli("s3", "upload", str(tmp_path / name), "s3://runctl-other/").code == 0
    for url in ("s3://runctl-other", "s3://runctl-other/"):
        doc = doc_of(cli("-o", "json", "s3", "list", url))
        assert name in [o["key"] for o in doc["objects"]]


def test_recursive_list_hides_directory_markers(s3_env: S3Server, s3_client: Any, tmp_path: Path) -> None:
    url = s3_env.fresh_prefix()
    prefix = key_of(url)
    (tmp_path / "f.txt").write_bytes(b"inside")
    s3_client.put_object(Bucket=s3_env.bucket, Key=prefix + "dir/", Body=b"")
    assert cli("s3", "upload", str(tmp_path / "f.txt"), url + "dir/").code == 0
    s3_client.put_object(Bucket=s3_env.bucket, Key=prefix + "lonely/", Body=b"")
    doc = doc_of(cli("-o", "json", "s3", "list", url, "-r"))
    assert [o["key"] for o in doc["objects"]] == [prefix + "dir/f.txt"]
    doc = doc_of(cli("-o", "json", "s3", "list", url))
    assert doc["prefixes"] == [prefix + "dir/", prefix + "lonely/"]
    assert doc["objects"] == []


# -- keys SeaweedFS would normalize (moto keeps them verbatim) -------------------------------


def test_moto_list_of_a_prefix_holding_dotdot_keys(s3_env: S3Server, moto_endpoint: str) -> None:
    """Listing is harmless: keys with ".." are shown as they are, at one level and recursively."""
    client = botocore_client(moto_endpoint)
    bucket = f"dots-{os.urandom(4).hex()}"
    client.create_bucket(Bucket=bucket)
    keys = ["evil/good.txt", "evil/../escape.txt", "evil/sub/ok.txt", "evil/.."]
    for key in keys:
        client.put_object(Bucket=bucket, Key=key, Body=b"x")
    ep = ["--endpoint-url", moto_endpoint]
    doc = doc_of(cli("-o", "json", *ep, "s3", "list", f"s3://{bucket}/evil/", "-r"))
    assert sorted(o["key"] for o in doc["objects"]) == sorted(keys)
    doc = doc_of(cli("-o", "json", *ep, "s3", "list", f"s3://{bucket}/evil/"))
    assert "evil/good.txt" in [o["key"] for o in doc["objects"]]
    assert "evil/sub/" in doc["prefixes"]
