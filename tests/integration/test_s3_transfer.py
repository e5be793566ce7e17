"""Upload and download against a real SeaweedFS server (and moto, for keys SeaweedFS refuses)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import S3Server, botocore_client, cli, cli_subprocess, key_of, read_tree, write_tree

MiB = 1024 * 1024

TREE: dict[str, bytes] = {
    "top.txt": b"top level\n",
    "empty.txt": b"",
    "a/b/c/deep.bin": bytes(range(256)) * 40,
    "a/sibling.txt": b"sibling",
    "a/b/empty-too": b"",
    "with space/file name with spaces.txt": b"spaces",
    "ünïcödé/日本語ファイル.txt": "héllo wörld ✓\n".encode(),
    "emoji 🎉/party 🎈.md": b"# party",
    "dots/.hidden": b"hidden",
    "dots/name.with.many.dots.tar.gz": b"\x1f\x8b" + b"\0" * 100,
    "symbols/a+b=c&d;e,f@g'h(i)[j]~k!.txt": b"symbols",
}


def json_of(result: Any) -> dict[str, Any]:
    doc = result.json()
    assert isinstance(doc, dict)
    return doc


# -- recursive round trips ---------------------------------------------------------------


def test_recursive_round_trip_is_byte_identical(s3_env: S3Server, tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", TREE)
    url = s3_env.fresh_prefix()
    up = cli("-o", "json", "s3", "upload", str(src), url, "--recursive")
    assert up.code == 0, up.out + up.err
    doc = json_of(up)
    assert doc["ok"] is True and doc["failed"] == [] and doc["warnings"] == []
    assert doc["files"] == len(TREE)
    assert doc["bytes"] == sum(len(v) for v in TREE.values())

    listed = json_of(cli("-o", "json", "s3", "list", url, "--recursive"))
    prefix = key_of(url)
    assert sorted(o["key"] for o in listed["objects"]) == sorted(prefix + k for k in TREE)
    assert {o["key"][len(prefix) :]: o["size"] for o in listed["objects"]} == {
        k: len(v) for k, v in TREE.items()
    }

    down = cli("-o", "json", "s3", "download", url, str(tmp_path / "dst"), "--recursive")
    assert down.code == 0, down.out + down.err
    assert json_of(down)["files"] == len(TREE)
    assert read_tree(tmp_path / "dst") == TREE
    # Nothing but the files: no temp files, no directory markers turned into files.
    assert sorted(p.name for p in (tmp_path / "dst").rglob("*") if ".runctl-tmp-" in p.name) == []


def test_recursive_url_without_trailing_slash_is_the_same_prefix(s3_env: S3Server, tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {"x/1.txt": b"1", "2.txt": b"22"})
    url = s3_env.fresh_prefix().rstrip("/")
    assert cli("s3", "upload", str(src), url, "-r").code == 0
    listed = json_of(cli("-o", "json", "s3", "list", url + "/", "-r"))
    assert sorted(o["key"] for o in listed["objects"]) == [key_of(url) + "/2.txt", key_of(url) + "/x/1.txt"]
    assert cli("s3", "download", url, str(tmp_path / "dst"), "-r").code == 0
    assert read_tree(tmp_path / "dst") == {"x/1.txt": b"1", "2.txt": b"22"}


def test_recursive_download_into_existing_dir_merges_and_overwrites(s3_env: S3Server, tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {"a.txt": b"new a", "sub/b.txt": b"new b"})
    dst = write_tree(tmp_path / "dst", {"a.txt": b"old a, longer than the new one", "keep.txt": b"keep"})
    url = s3_env.fresh_prefix()
    assert cli("s3", "upload", str(src), url, "-r").code == 0
    assert cli("s3", "download", url, str(dst), "-r").code == 0
    assert read_tree(dst) == {"a.txt": b"new a", "sub/b.txt": b"new b", "keep.txt": b"keep"}


def test_recursive_download_skips_directory_markers(s3_env: S3Server, s3_client: Any, tmp_path: Path) -> None:
    url = s3_env.fresh_prefix()
    prefix = key_of(url)
    s3_client.put_object(Bucket=s3_env.bucket, Key=prefix + "folder/", Body=b"")
    s3_client.put_object(Bucket=s3_env.bucket, Key=prefix + "folder/file.txt", Body=b"content")
    s3_client.put_object(Bucket=s3_env.bucket, Key=prefix + "only-marker/", Body=b"")
    down = cli("-o", "json", "s3", "download", url, str(tmp_path / "dst"), "-r")
    assert down.code == 0, down.out
    assert read_tree(tmp_path / "dst") == {"folder/file.txt": b"content"}


def test_recursive_round_trip_as_a_subprocess(s3_env: S3Server, tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", TREE)
    url = s3_env.fresh_prefix()
    up = cli_subprocess("s3", "upload", str(src), url, "--recursive", "--no-progress")
    assert up.code == 0, up.err
    assert up.out == ""  # text mode: the summary is a diagnostic, on stderr
    assert f"upload: {len(TREE)} files" in up.err
    down = cli_subprocess("-o", "json", "s3", "download", url, str(tmp_path / "dst"), "--recursive")
    assert down.code == 0, down.err
    assert json_of(down)["files"] == len(TREE)
    assert read_tree(tmp_path / "dst") == TREE


def test_upload_recursive_of_an_empty_directory_uploads_nothing(s3_env: S3Server, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    url = s3_env.fresh_prefix()
    up = cli("-o", "json", "s3", "upload", str(tmp_path / "empty"), url, "-r")
    assert up.code == 0, up.out
    assert json_of(up)["files"] == 0
    assert json_of(cli("-o", "json", "s3", "list", url, "-r"))["count"] == 0


# -- single-file path rules (as `aws s3 cp`) ----------------------------------------------


def test_upload_file_to_prefix_with_slash_keeps_its_name(s3_env: S3Server, tmp_path: Path) -> None:
    f = tmp_path / "report final.csv"
    f.write_bytes(b"a,b\n1,2\n")
    url = s3_env.fresh_prefix()
    up = cli("-o", "json", "s3", "upload", str(f), url + "sub/")
    assert up.code == 0, up.out
    listed = json_of(cli("-o", "json", "s3", "list", url, "-r"))
    assert [o["key"] for o in listed["objects"]] == [key_of(url) + "sub/report final.csv"]


def test_upload_file_to_key_uses_the_key(s3_env: S3Server, tmp_path: Path) -> None:
    f = tmp_path / "local-name.txt"
    f.write_bytes(b"payload")
    url = s3_env.fresh_prefix()
    assert cli("s3", "upload", str(f), url + "dir/other-name.bin").code == 0
    listed = json_of(cli("-o", "json", "s3", "list", url, "-r"))
    assert [(o["key"], o["size"]) for o in listed["objects"]] == [(key_of(url) + "dir/other-name.bin", 7)]


def test_upload_file_to_bare_bucket_keeps_its_name(s3_env: S3Server, tmp_path: Path) -> None:
    name = f"bare-{os.urandom(4).hex()}.txt"
    (tmp_path / name).write_bytes(b"at the root")
    assert cli("s3", "upload", str(tmp_path / name), "s3://runctl-other").code == 0
    down = cli("s3", "download", f"s3://runctl-other/{name}", str(tmp_path / "back.txt"))
    assert down.code == 0, down.err
    assert (tmp_path / "back.txt").read_bytes() == b"at the root"


def test_download_key_into_existing_dir_keeps_basename(s3_env: S3Server, tmp_path: Path) -> None:
    url = s3_env.fresh_prefix()
    f = tmp_path / "weights ü.bin"
    f.write_bytes(os.urandom(3000))
    assert cli("s3", "upload", str(f), url + "models/").code == 0
    dst = tmp_path / "existing"
    dst.mkdir()
    down = cli("-o", "json", "s3", "download", url + "models/weights ü.bin", str(dst))
    assert down.code == 0, down.out
    assert read_tree(dst) == {"weights ü.bin": f.read_bytes()}


def test_download_key_to_path_with_trailing_slash_creates_the_dir(s3_env: S3Server, tmp_path: Path) -> None:
    url = s3_env.fresh_prefix()
    (tmp_path / "f.txt").write_bytes(b"x")
    assert cli("s3", "upload", str(tmp_path / "f.txt"), url).code == 0
    assert cli("s3", "download", url + "f.txt", str(tmp_path / "newdir") + "/").code == 0
    assert read_tree(tmp_path / "newdir") == {"f.txt": b"x"}


def test_download_key_to_a_new_file_path(s3_env: S3Server, tmp_path: Path) -> None:
    url = s3_env.fresh_prefix()
    (tmp_path / "orig.txt").write_bytes(b"contents")
    assert cli("s3", "upload", str(tmp_path / "orig.txt"), url).code == 0
    target = tmp_path / "not" / "yet" / "there" / "renamed.dat"
    down = cli("s3", "download", url + "orig.txt", str(target))
    assert down.code == 0, down.err
    assert target.read_bytes() == b"contents"
    assert sorted(p.name for p in target.parent.iterdir()) == ["renamed.dat"]


def test_download_key_over_an_existing_file_replaces_it(s3_env: S3Server, tmp_path: Path) -> None:
    url = s3_env.fresh_prefix()
    (tmp_path / "orig.txt").write_bytes(b"new")
    assert cli("s3", "upload", str(tmp_path / "orig.txt"), url).code == 0
    target = tmp_path / "existing.txt"
    target.write_bytes(b"old and longer")
    assert cli("s3", "download", url + "orig.txt", str(target)).code == 0
    assert target.read_bytes() == b"new"


def test_empty_file_round_trip_single(s3_env: S3Server, tmp_path: Path) -> None:
    url = s3_env.fresh_prefix()
    (tmp_path / "zero").write_bytes(b"")
    up = cli("-o", "json", "s3", "upload", str(tmp_path / "zero"), url)
    assert up.code == 0, up.out
    assert json_of(up)["bytes"] == 0
    assert cli("s3", "download", url + "zero", str(tmp_path / "zero-back")).code == 0
    assert (tmp_path / "zero-back").read_bytes() == b""


def test_single_file_round_trip_as_a_subprocess(s3_env: S3Server, tmp_path: Path) -> None:
    url = s3_env.fresh_prefix()
    data = os.urandom(100_000)
    (tmp_path / "ü file.bin").write_bytes(data)
    up = cli_subprocess("-o", "json", "s3", "upload", str(tmp_path / "ü file.bin"), url)
    assert up.code == 0, up.err
    assert json_of(up)["files"] == 1
    (tmp_path / "out").mkdir()
    down = cli_subprocess("s3", "download", url + "ü file.bin", str(tmp_path / "out"), "-q")
    assert down.code == 0, down.err
    assert down.err == ""  # --quiet
    assert (tmp_path / "out" / "ü file.bin").read_bytes() == data


# -- multipart -----------------------------------------------------------------------------


def test_multipart_upload_and_ranged_download(s3_env: S3Server, tmp_path: Path) -> None:
    size = 12 * MiB + 12345
    data = os.urandom(size)
    (tmp_path / "big.bin").write_bytes(data)
    url = s3_env.fresh_prefix()
    up = cli("-o", "json", "--part-size", "5MiB", "s3", "upload", str(tmp_path / "big.bin"), url)
    assert up.code == 0, up.out
    assert json_of(up)["bytes"] == size
    (obj,) = json_of(cli("-o", "json", "s3", "list", url, "-r"))["objects"]
    assert obj["size"] == size
    assert obj["etag"].endswith("-3"), obj["etag"]  # 5 + 5 + 2.x MiB: three parts
    down = cli(
        "-o", "json", "--part-size", "5MiB", "s3", "download", url + "big.bin", str(tmp_path / "back.bin")
    )
    assert down.code == 0, down.out
    assert json_of(down)["bytes"] == size
    assert (tmp_path / "back.bin").read_bytes() == data


def test_file_of_exactly_one_part_is_a_single_put(s3_env: S3Server, tmp_path: Path) -> None:
    data = os.urandom(5 * MiB)
    (tmp_path / "one.bin").write_bytes(data)
    url = s3_env.fresh_prefix()
    assert cli("--part-size", "5MiB", "s3", "upload", str(tmp_path / "one.bin"), url).code == 0
    (obj,) = json_of(cli("-o", "json", "s3", "list", url, "-r"))["objects"]
    assert "-" not in obj["etag"]
    assert cli("s3", "download", url + "one.bin", str(tmp_path / "back.bin")).code == 0
    assert (tmp_path / "back.bin").read_bytes() == data


def test_multipart_recursive_round_trip_as_a_subprocess(s3_env: S3Server, tmp_path: Path) -> None:
    files = {"big/one.bin": os.urandom(11 * MiB), "small.txt": b"small"}
    src = write_tree(tmp_path / "src", files)
    url = s3_env.fresh_prefix()
    up = cli_subprocess("--part-size", "5MiB", "s3", "upload", str(src), url, "-r")
    assert up.code == 0, up.err
    listed = json_of(cli("-o", "json", "s3", "list", url, "-r"))
    etags = {o["key"][len(key_of(url)) :]: o["etag"] for o in listed["objects"]}
    assert etags["big/one.bin"].endswith("-3")
    down = cli_subprocess("s3", "download", url, str(tmp_path / "dst"), "-r", "--part-size", "5MiB")
    assert down.code == 0, down.err
    assert read_tree(tmp_path / "dst") == files


# -- mtime -----------------------------------------------------------------------------------

MTIME = 1_600_000_000.123456


def test_upload_records_source_mtime_and_download_restores_it(
    s3_env: S3Server, s3_client: Any, tmp_path: Path
) -> None:
    f = tmp_path / "dated.txt"
    f.write_bytes(b"old file")
    os.utime(f, (MTIME, MTIME))
    url = s3_env.fresh_prefix()
    assert cli("s3", "upload", str(f), url).code == 0
    head = s3_client.head_object(Bucket=s3_env.bucket, Key=key_of(url) + "dated.txt")
    assert abs(float(head["Metadata"]["mtime"]) - MTIME) < 1e-3
    assert cli("s3", "download", url + "dated.txt", str(tmp_path / "back.txt")).code == 0
    assert abs((tmp_path / "back.txt").stat().st_mtime - MTIME) < 1e-3


def test_recursive_download_restores_every_mtime(s3_env: S3Server, tmp_path: Path) -> None:
    files = {"a.txt": b"a", "d/b.txt": b"bb", "d/e/empty": b"", "big.bin": os.urandom(6 * MiB)}
    src = write_tree(tmp_path / "src", files)
    mtimes = {}
    for i, rel in enumerate(files):
        t = MTIME + 1000 * i + 0.5 * i
        os.utime(src / rel, (t, t))
        mtimes[rel] = t
    url = s3_env.fresh_prefix()
    assert cli("--part-size", "5MiB", "s3", "upload", str(src), url, "-r").code == 0
    assert cli("--part-size", "5MiB", "s3", "download", url, str(tmp_path / "dst"), "-r").code == 0
    assert read_tree(tmp_path / "dst") == files
    for rel, t in mtimes.items():
        assert abs((tmp_path / "dst" / rel).stat().st_mtime - t) < 1e-3, rel


# -- keys with ".." never escape the destination (moto keeps such keys verbatim) -------------


EVIL_KEYS = {
    "evil/good.txt": b"good",
    "evil/sub/also-good.txt": b"also good",
    "evil/../../escape.txt": b"escaped!",
    "evil/../sibling.txt": b"sibling!",
    "evil/sub/../../../up3.txt": b"up three",
    "evil/..": b"dotdot",
}


@pytest.fixture
def moto_bucket(moto_endpoint: str, s3_env: S3Server) -> str:
    client: Any = botocore_client(moto_endpoint)
    bucket = f"evil-{os.urandom(4).hex()}"
    client.create_bucket(Bucket=bucket)
    for key, body in EVIL_KEYS.items():
        client.put_object(Bucket=bucket, Key=key, Body=body)
    listed = {o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert listed == set(EVIL_KEYS)  # moto keeps the keys verbatim
    return bucket


UNSAFE = ["../../escape.txt", "../sibling.txt", "sub/../../../up3.txt", ".."]


def test_moto_dotdot_keys_never_write_outside_destination(
    moto_endpoint: str, moto_bucket: str, tmp_path: Path
) -> None:
    outer = tmp_path / "a" / "b"
    dst = outer / "dst"
    outer.mkdir(parents=True)
    before = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    res = cli(
        "s3", "download", f"s3://{moto_bucket}/evil", str(dst), "--recursive", "--endpoint-url", moto_endpoint
    )
    assert res.code == 0, res.err
    assert read_tree(dst) == {"good.txt": b"good", "sub/also-good.txt": b"also good"}
    after = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if dst not in p.parents)
    assert after == [*before, "a/b/dst"]
    warnings = [line for line in res.err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == len(UNSAFE), res.err
    for bad in UNSAFE:
        assert any(bad in w for w in warnings), (bad, warnings)
    assert "Traceback" not in res.err


def test_moto_dotdot_keys_are_warnings_in_json(moto_endpoint: str, moto_bucket: str, tmp_path: Path) -> None:
    dst = tmp_path / "x" / "dst"
    res = cli(
        "-o",
        "json",
        "s3",
        "download",
        f"s3://{moto_bucket}/evil/",
        str(dst),
        "-r",
        "--endpoint-url",
        moto_endpoint,
    )
    assert res.code == 0, res.out + res.err
    doc = json_of(res)
    assert doc["ok"] is True
    assert doc["files"] == 2
    assert len(doc["warnings"]) == len(UNSAFE)
    for bad in UNSAFE:
        assert any(bad in w for w in doc["warnings"]), (bad, doc["warnings"])
    assert read_tree(tmp_path) == {"x/dst/good.txt": b"good", "x/dst/sub/also-good.txt": b"also good"}


def test_moto_single_dotdot_key_downloads_under_its_basename_only(
    moto_endpoint: str, moto_bucket: str, tmp_path: Path
) -> None:
    dst = tmp_path / "a" / "dst"
    dst.mkdir(parents=True)
    res = cli(
        "s3",
        "download",
        f"s3://{moto_bucket}/evil/../../escape.txt",
        str(dst),
        "--endpoint-url",
        moto_endpoint,
    )
    # Either refused or written as dst/escape.txt; never above dst.
    assert res.code in (0, 2), res.err  # written under its base name, or refused as a usage error
    assert "Traceback" not in res.err
    assert set(read_tree(tmp_path)) <= {"a/dst/escape.txt"}
