"""`runctl s3 cleanup|watch|review` against a real S3 server (SeaweedFS on loopback)."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from runctl.api import upload_async
from runctl.housekeeping import watch
from runctl.settings import Settings
from runctl.stores.factory import open_store
from tests.conftest import S3Server, cli

pytestmark = pytest.mark.integration


def write_tree(root: Path, files: dict[str, int]) -> Path:
    for rel, size in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)
    return root


def upload(root: Path, url: str) -> None:
    res = cli("s3", "upload", str(root), url, "--recursive")
    assert res.code == 0, res.err


def keys(s3: S3Server, url: str) -> list[str]:
    res = cli("-o", "json", "s3", "list", url, "--recursive")
    assert res.code == 0, res.err
    doc: Any = res.json()
    return sorted(o["key"] for o in doc["objects"])


def key_prefix(s3: S3Server, url: str) -> str:
    return url[len(s3.url()) :]


def test_cleanup_across_pages_keeps_newest(s3_env: S3Server, tmp_path: Path) -> None:
    url = s3_env.fresh_prefix()
    upload(write_tree(tmp_path / "old", {f"old/f{i:04}.pt": 1 for i in range(1100)}), url)
    time.sleep(1.1)  # LastModified has whole seconds: the next three are strictly newer
    upload(write_tree(tmp_path / "new", {f"new/n{i}.pt": 2 for i in range(3)}), url)
    kp = key_prefix(s3_env, url)
    newest = [f"{kp}new/n{i}.pt" for i in range(3)]

    dry = cli("-o", "json", "s3", "cleanup", url, "--keep-last-n", "3", "--dry-run")
    assert dry.code == 0, dry.err
    doc: Any = dry.json()
    assert doc["dry_run"] is True
    fields = "ok command url dry_run keep_last_n patterns listed candidates kept deleted deleted_count"
    assert sorted(doc) == sorted([*fields.split(), "deleted_bytes"])  # the document as before
    assert all(sorted(d) == ["key", "last_modified", "size"] for d in doc["deleted"])
    assert all(d["key"].startswith(f"{kp}old/") and d["size"] == 1 for d in doc["deleted"])
    assert (doc["listed"], doc["deleted_count"], doc["deleted_bytes"]) == (1103, 1100, 1100)
    assert sorted(k["key"] for k in doc["kept"]) == newest
    assert len(keys(s3_env, url)) == 1103

    real = cli("-o", "json", "s3", "cleanup", url, "--keep-last-n", "3")
    assert real.code == 0, real.err
    doc = real.json()
    assert doc["dry_run"] is False and doc["deleted_count"] == 1100
    assert keys(s3_env, url) == newest


def test_keep_zero_refused_without_force(s3_env: S3Server, tmp_path: Path) -> None:
    url = s3_env.fresh_prefix()
    upload(write_tree(tmp_path / "t", {"a.pt": 1, "b.pt": 1}), url)
    refused = cli("s3", "cleanup", url, "--keep-last-n", "0")
    assert refused.code == 2
    assert "--force" in refused.err
    assert len(keys(s3_env, url)) == 2
    forced = cli("s3", "cleanup", url, "--keep-last-n", "0", "--force")
    assert forced.code == 0, forced.err
    assert forced.out.count("deleted ") == 2
    assert keys(s3_env, url) == []


def test_cleanup_pattern_selects_candidates(s3_env: S3Server, tmp_path: Path) -> None:
    url = s3_env.fresh_prefix()
    upload(write_tree(tmp_path / "t", {"ckpt/a.pt": 1, "ckpt/b.pt": 1, "logs/x.log": 1}), url)
    res = cli("s3", "cleanup", url, "--keep-last-n", "1", "--pattern", "ckpt/*")
    assert res.code == 0, res.err
    kp = key_prefix(s3_env, url)
    left = keys(s3_env, url)
    # Only ckpt/* were candidates: one of them (the newest; b.pt on a LastModified tie) is kept.
    assert len(left) == 2 and left[0] in (f"{kp}ckpt/a.pt", f"{kp}ckpt/b.pt") and left[1] == f"{kp}logs/x.log"
    assert res.out.count("deleted ") == 1


def test_watch_sees_add_and_delete(s3_env: S3Server, tmp_path: Path) -> None:
    url = s3_env.fresh_prefix()
    upload(write_tree(tmp_path / "t", {"existing.pt": 1}), url)
    new_file = write_tree(tmp_path / "n", {"step_2.pt": 5}) / "step_2.pt"
    seen: list[tuple[str, str, int]] = []

    async def go() -> None:
        store = open_store(url, Settings(), directory=True)[0]
        ready = asyncio.Event()

        async def mutate() -> None:
            await ready.wait()
            await upload_async(new_file, url)
            while not seen:
                await asyncio.sleep(0.05)
            await store.delete(["step_2.pt"])

        def baseline_taken(poll: int) -> None:
            if poll == 0:
                ready.set()

        async with store, asyncio.timeout(30):
            task = asyncio.create_task(mutate())
            changes = watch(
                store, interval=0.1, on_poll=baseline_taken, stop=lambda: any(e[0] == "deleted" for e in seen)
            )
            async for change in changes:
                seen.append((change.event, change.entry.path, change.entry.size))
            await task

    asyncio.run(go())
    assert seen == [("added", "step_2.pt", 5), ("deleted", "step_2.pt", 5)]


def test_watch_cli_bounded_polls_prints_nothing_for_existing(s3_env: S3Server, tmp_path: Path) -> None:
    url = s3_env.fresh_prefix()
    upload(write_tree(tmp_path / "t", {"existing.pt": 1}), url)
    res = cli("-o", "json", "s3", "watch", url, "--interval", "0.05", "--max-polls", "2")
    assert (res.code, res.out) == (0, ""), res.err
    bad = cli("s3", "watch", url, "--interval", "0")
    assert bad.code == 2


def test_watch_ctrl_c_exits_130(s3_env: S3Server) -> None:
    url = s3_env.fresh_prefix()
    proc = subprocess.Popen(
        [sys.executable, "-m", "runctl", "s3", "watch", url, "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
        text=True,
    )
    try:
        assert proc.stderr is not None
        ready, _, _ = select.select([proc.stderr], [], [], 120)  # ends when it starts
        assert ready, "watch did not start"
        assert "watching" in proc.stderr.readline()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 130
        assert "stopped" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_review_counts_and_categories(s3_env: S3Server, tmp_path: Path) -> None:
    url = s3_env.fresh_prefix()
    files = {
        "ckpts/step_1.pt": 10,
        "final/model.safetensors": 100,
        "logs/train.log": 3,
        "logs/stdout.txt": 4,
        "tb/events.out.tfevents.1700000000.host": 5,
        "data.csv": 6,
    }
    upload(write_tree(tmp_path / "t", files), url)
    res = cli("-o", "json", "s3", "review", url)
    assert res.code == 0, res.err
    doc: Any = res.json()
    assert (doc["count"], doc["bytes"]) == (6, 128)
    assert {k: (v["count"], v["bytes"]) for k, v in doc["categories"].items()} == {
        "checkpoints": (1, 10),
        "models": (1, 100),
        "logs": (3, 12),
        "other": (1, 6),
    }
    kp = key_prefix(s3_env, url)
    assert doc["largest"] == {**doc["largest"], "key": f"{kp}final/model.safetensors", "category": "models"}
    assert doc["newest"]["key"].startswith(kp) and doc["oldest"]["key"].startswith(kp)
    assert "objects" not in doc["categories"]["logs"]

    detailed = cli("-o", "json", "s3", "review", url, "--detailed")
    logs = detailed.json()["categories"]["logs"]["objects"]  # type: ignore[index]
    assert sorted(o["key"] for o in logs) == sorted(f"{kp}{k}" for k in files if k.startswith(("logs", "tb")))

    text = cli("s3", "review", url, "--detailed")
    assert text.code == 0, text.err
    assert "6 objects" in text.out and f"{kp}data.csv" in text.out and "largest:" in text.out


def test_review_missing_bucket_is_not_found(s3_env: S3Server) -> None:
    res = cli("s3", "review", "s3://runctl-no-such-bucket/p/")
    assert res.code == 4, res.err
