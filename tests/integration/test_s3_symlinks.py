"""Symlinked directories in an upload's source are followed, as ``aws s3 cp`` and
``aws s3 sync`` follow them (and as runctl already followed symlinked files); a link
that leads back to a directory it sits in is a loop: not followed, and named in a
warning, as is a broken link. Housekeeping and destinations never follow them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import S3Server, cli, key_of, write_tree

pytestmark = pytest.mark.integration


def linked_tree(root: Path) -> Path:
    """src/real/a.txt, src/real/loop -> .. (the source root: a loop), src/linked -> real,
    src/self -> . (a loop), src/flink.txt -> real/a.txt, src/dangling -> nowhere, and
    src/outside -> a directory outside the source."""
    src = write_tree(root / "src", {"real/a.txt": b"alpha"})
    outside = write_tree(root / "elsewhere", {"deep/b.txt": b"beta"})
    (src / "real" / "loop").symlink_to("..")
    (src / "linked").symlink_to("real")
    (src / "self").symlink_to(".")
    (src / "flink.txt").symlink_to("real/a.txt")
    (src / "dangling").symlink_to("nowhere")
    (src / "outside").symlink_to(outside)
    return src


EXPECTED = {
    "real/a.txt": b"alpha",
    "linked/a.txt": b"alpha",
    "flink.txt": b"alpha",
    "outside/deep/b.txt": b"beta",
}


def keys_under(client: Any, s3: S3Server, url: str) -> dict[str, bytes]:
    prefix = key_of(url)
    listed = client.list_objects_v2(Bucket=s3.bucket, Prefix=prefix).get("Contents", [])
    return {
        o["Key"][len(prefix) :]: client.get_object(Bucket=s3.bucket, Key=o["Key"])["Body"].read()
        for o in listed
    }


def check_warnings(warnings: list[str], src: Path) -> None:
    loops = [w for w in warnings if "symlink loop" in w]
    assert sorted(w.split(" -> ")[0].removeprefix("not following ") for w in loops) == sorted(
        str(p) for p in (src / "linked" / "loop", src / "real" / "loop", src / "self")
    ), warnings
    assert [w for w in warnings if "broken symlink" in w] == [
        f"skipping {src / 'dangling'}: a broken symlink (-> nowhere)"
    ], warnings
    assert len(warnings) == 4, warnings


@pytest.mark.timeout(60)
def test_upload_recursive_follows_symlinked_directories_and_stops_at_loops(
    s3_env: S3Server, s3_client: Any, tmp_path: Path
) -> None:
    src = linked_tree(tmp_path)
    url = s3_env.fresh_prefix()
    res = cli("-o", "json", "s3", "upload", str(src), url, "--recursive")
    assert res.code == 0, res.out + res.err
    doc = json.loads(res.out)
    assert doc["ok"] is True and doc["files"] == len(EXPECTED), doc
    check_warnings(doc["warnings"], src)
    assert keys_under(s3_client, s3_env, url) == EXPECTED

    text = cli("s3", "upload", str(src), s3_env.fresh_prefix(), "--recursive")
    assert text.code == 0, text.err
    assert sum(line.startswith("warning: ") for line in text.err.splitlines()) == 4, text.err


@pytest.mark.timeout(60)
def test_sync_up_follows_them_too_and_a_second_sync_copies_nothing(
    s3_env: S3Server, s3_client: Any, tmp_path: Path
) -> None:
    src = linked_tree(tmp_path)
    url = s3_env.fresh_prefix()
    res = cli("-o", "json", "s3", "sync", str(src), url)
    assert res.code == 0, res.out + res.err
    doc = json.loads(res.out)
    assert doc["copied"] == len(EXPECTED)
    check_warnings(doc["warnings"], src)
    assert keys_under(s3_client, s3_env, url) == EXPECTED
    again = json.loads(cli("-o", "json", "s3", "sync", str(src), url).out)
    assert again["copied"] == 0 and again["skipped"] == len(EXPECTED), again


def test_checkpoint_cleanup_never_deletes_through_a_symlinked_directory(tmp_path: Path) -> None:
    run = write_tree(tmp_path / "run", {"step_1.pt": b"1", "step_2.pt": b"2"})
    other = write_tree(tmp_path / "other-run", {"step_0.pt": b"0"})
    (run / "best").symlink_to(other)
    os.utime(run / "step_1.pt", (1_000_000, 1_000_000))
    res = cli("checkpoint", "cleanup", str(run), "--keep-last-n", "1")
    assert res.code == 0, res.err
    assert sorted(p.name for p in run.iterdir()) == ["best", "step_2.pt"]
    assert (other / "step_0.pt").read_bytes() == b"0"
