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


def test_python_api_upload_from_a_background_thread(s3_env: S3Server, tmp_path: Path) -> None:
    """The README's use: push a checkpoint from a thread while the training loop goes on."""
    import threading

    import runctl

    ckpt = tmp_path / "step-1000.pt"
    ckpt.write_bytes(b"\x01" * 100_000)
    url = s3_env.fresh_prefix()
    results: list[runctl.TransferResult] = []
    worker = threading.Thread(target=lambda: results.append(runctl.upload(ckpt, url)))
    worker.start()
    steps = 0
    while worker.is_alive():  # the "training loop" keeps running meanwhile
        steps += 1
        worker.join(timeout=0.001)
    assert results and results[0].ok and results[0].bytes == 100_000
    listed = runctl.list_objects(url)
    assert [o.path for o in listed.objects] == ["step-1000.pt"]
