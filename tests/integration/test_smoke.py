from __future__ import annotations

from pathlib import Path

from tests.conftest import S3Server, cli


def test_upload_list_download_roundtrip(s3_env: S3Server, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "a" / "b").mkdir(parents=True)
    (src / "a" / "b" / "x.txt").write_text("hello")
    (src / "top.bin").write_bytes(b"\0" * 10)
    url = s3_env.fresh_prefix()
    up = cli("--output", "json", "s3", "upload", str(src), url, "--recursive")
    assert up.code == 0, up.err
    assert up.json()["files"] == 2  # type: ignore[index]
    listed = cli("-o", "json", "s3", "list", url, "--recursive")
    keys = sorted(o["key"] for o in listed.json()["objects"])  # type: ignore[index]
    assert keys == [
        url[len("s3://runctl-test/") :] + "a/b/x.txt",
        url[len("s3://runctl-test/") :] + "top.bin",
    ]
    down = cli("s3", "download", url, str(tmp_path / "dst"), "--recursive")
    assert down.code == 0, down.err
    assert (tmp_path / "dst" / "a" / "b" / "x.txt").read_text() == "hello"
