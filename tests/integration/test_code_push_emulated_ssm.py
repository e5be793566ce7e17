"""`runctl code push` to an instance over emulated SSM (tests/ssm_emulator.py really runs
each Run Command's script): the listing is one Run Command, the update another, and the
tar stream travels as one S3 staging object on SeaweedFS, deleted afterwards."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from tests.conftest import S3Server, cli, interrupt_when, key_of, read_tree, write_tree
from tests.ssm_emulator import SSMEmulator

FILES = {
    "train.py": b"print('train')\n",
    "pkg/__init__.py": b"",
    "pkg/model.py": b"LAYERS = 12\n" * 100,
    "configs/base yaml.txt": "lr: 0.1 # caf\u00e9\n".encode(),
    **{f"pkg/mod{i}.py": f"x = {i}\n".encode() * 50 for i in range(20)},
}


def push(src: Path, dest: str, staging: str | None, *extra: str) -> Any:
    flags = ("--staging", staging) if staging else ()
    return cli("-o", "json", "code", "push", str(src), dest, "--via", "ssm", *flags, *extra)


def staged_keys(ssm_env: SSMEmulator) -> set[str]:
    """The staging objects the Run Commands fetched (named in their presigned URLs)."""
    found: set[str] = set()
    for body in ssm_env.requests("SendCommand"):
        found |= set(re.findall(r"runctl-[0-9a-f]{32}\.bin", "\n".join(body["Parameters"]["commands"])))
    return found


def objects_under(s3_client: Any, bucket: str, url: str) -> list[str]:
    reply = s3_client.list_objects_v2(Bucket=bucket, Prefix=key_of(url))
    return [o["Key"] for o in reply.get("Contents", [])]


def test_push_no_change_edit_and_delete(
    ssm_env: SSMEmulator, s3_env: S3Server, s3_client: Any, tmp_path: Path
) -> None:
    box = ssm_env.add_instance()
    src = write_tree(tmp_path / "src", FILES)
    dest_dir = box.root / "work" / "proj"
    dest = f"{box.instance_id}:{dest_dir}"
    staging = s3_env.fresh_prefix()

    first = push(src, dest, staging)
    assert first.code == 0, first.out + first.err
    doc = first.json()
    assert doc["transport"] == "ssm" and sorted(doc["sent"]) == sorted(FILES)
    assert doc["verified"] in ("sha256", "md5")  # the instance checked the unpack
    assert read_tree(dest_dir) == FILES
    assert ssm_env.count("SendCommand") == 2  # the listing, then the update
    assert len(staged_keys(ssm_env)) == 1
    assert objects_under(s3_client, s3_env.bucket, staging) == []  # staged input and outputs gone

    again = push(src, dest, staging)
    assert again.code == 0, again.out
    assert again.json()["sent"] == []
    assert ssm_env.count("SendCommand") == 3  # no change: the listing alone

    for i in range(10):
        (src / f"pkg/mod{i}.py").write_bytes(b"changed\n" * (i + 1))
    (src / "pkg/model.py").unlink()
    edited = push(src, dest, staging, "--delete")
    assert edited.code == 0, edited.out
    doc = edited.json()
    assert len(doc["sent"]) == 10 and doc["deleted"] == ["pkg/model.py"]
    assert ssm_env.count("SendCommand") == 5
    assert len(staged_keys(ssm_env)) == 2  # one more object for the second update
    assert read_tree(dest_dir) == read_tree(src)
    assert objects_under(s3_client, s3_env.bucket, staging) == []


def test_full_mode_over_ssm(ssm_env: SSMEmulator, s3_env: S3Server, tmp_path: Path) -> None:
    box = ssm_env.add_instance()
    src = write_tree(tmp_path / "src", FILES)
    dest_dir = box.root / "full"
    write_tree(dest_dir, {"stale.py": b"old\n", "train.py": b"old\n"})
    result = push(src, f"{box.instance_id}:{dest_dir}", s3_env.fresh_prefix(), "--mode", "full", "--delete")
    assert result.code == 0, result.out
    assert read_tree(dest_dir) == FILES


def test_a_failed_fetch_is_an_error_and_the_staged_object_is_deleted(
    ssm_env: SSMEmulator, s3_env: S3Server, s3_client: Any, tmp_path: Path
) -> None:
    """An instance without curl, wget or python3 cannot fetch the staged stream: the push
    fails with one line naming why (exit 10), the remote keeps its old tree, and the
    staging prefix is empty again."""
    tools = tmp_path / "bin"
    tools.mkdir()
    for name in ("sh", "tar", "gzip", "find", "mkdir", "mv", "rm", "cat", "touch", "sha256sum", "ls"):
        found = shutil.which(name)
        if found:
            (tools / name).symlink_to(found)
    box = ssm_env.add_instance(path=str(tools))
    src = write_tree(tmp_path / "src", FILES)
    dest_dir = box.root / "proj"
    staging = s3_env.fresh_prefix()
    result = push(src, f"{box.instance_id}:{dest_dir}", staging)
    assert result.code == 10, result.out
    assert "curl, wget or python3 not found" in result.json()["error"]["message"]
    assert not dest_dir.exists() or read_tree(dest_dir) == {}
    assert len(staged_keys(ssm_env)) == 1
    assert objects_under(s3_client, s3_env.bucket, staging) == []


def test_sending_files_without_staging_is_a_usage_error(ssm_env: SSMEmulator, tmp_path: Path) -> None:
    box = ssm_env.add_instance()
    src = write_tree(tmp_path / "src", {"a.py": b"a\n"})
    result = push(src, f"{box.instance_id}:{box.root / 'proj'}", None)
    assert result.code == 2, result.out
    assert "--staging" in result.json()["error"]["hint"]


def test_ctrl_c_mid_update_cancels_and_deletes_the_staged_object(
    ssm_env: SSMEmulator, s3_env: S3Server, s3_client: Any, tmp_path: Path
) -> None:
    """Interrupted while the instance unpacks (a tar that first waits): exit 130, the Run
    Command is cancelled, the staging prefix is empty, the remote keeps its old tree."""
    tools = tmp_path / "bin"
    tools.mkdir()
    for name in (
        "sh",
        "gzip",
        "find",
        "mkdir",
        "mv",
        "rm",
        "cat",
        "touch",
        "sha256sum",
        "ls",
        "curl",
        "sleep",
    ):
        found = shutil.which(name)
        if found:
            (tools / name).symlink_to(found)
    marker = tmp_path / "unpacking"
    (tools / "tar").write_text(f"#!/bin/sh\ntouch '{marker}'\nsleep 60\nexec {shutil.which('tar')} \"$@\"\n")
    (tools / "tar").chmod(0o755)
    box = ssm_env.add_instance(path=str(tools))
    dest_dir = box.root / "proj"
    dest_dir.mkdir()
    (dest_dir / "train.py").write_bytes(b"old\n")
    src = write_tree(tmp_path / "src", FILES)
    staging = s3_env.fresh_prefix()
    argv = ["code", "push", str(src), f"{box.instance_id}:{dest_dir}", "--via", "ssm", "--staging", staging]
    result = interrupt_when(marker, *argv)
    assert result.code == 130, result.err
    assert ssm_env.count("CancelCommand") == 1
    assert objects_under(s3_client, s3_env.bucket, staging) == []
    assert read_tree(dest_dir) == {"train.py": b"old\n"}
