"""Checkpoint housekeeping on local directories, and the store-agnostic core (no servers)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from runctl.errors import NetworkError, UsageError
from runctl.events import Event, FileDeleted
from runctl.housekeeping import categorize, cleanup, rank, review, watch
from runctl.housekeeping.ranking import has_checkpoint_extension
from runctl.settings import Settings
from runctl.stores.base import Entry, ProgressFn, Reader, Store
from runctl.stores.local import LocalStore
from tests.conftest import cli


def make(root: Path, rel: str, mtime: float, size: int = 4) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    os.utime(path, (mtime, mtime))
    return path


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """Five checkpoints (step_1 oldest .. step_5 newest) plus files that are not checkpoints."""
    root = tmp_path / "run"
    for i in range(1, 6):
        make(root, f"ckpts/step_{i}.pt", 1_700_000_000 + i * 10, size=i)
    make(root, "logs/train.log", 1_700_009_999)
    make(root, "config.yaml", 1_700_009_999)
    make(root, "final/model.safetensors", 1_700_000_005)
    return root


def remaining(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


# -- ranking --------------------------------------------------------------------
def test_rank_newest_first_ties_by_natural_key() -> None:
    entries = [
        Entry("step_9.pt", 1, 100.0),
        Entry("step_10.pt", 1, 100.0),
        Entry("old.pt", 1, 50.0),
        Entry("new.pt", 1, 200.0),
        Entry("a/step_2.pt", 1, 100.0),
    ]
    order = ["new.pt", "step_10.pt", "step_9.pt", "a/step_2.pt", "old.pt"]
    assert [e.path for e in rank(entries)] == order


def test_checkpoint_extensions_are_case_insensitive() -> None:
    assert has_checkpoint_extension("x/MODEL.PT")
    assert not has_checkpoint_extension("x/model.pt.json")


@pytest.mark.parametrize(
    ("path", "category"),
    [
        ("run/ckpts/step_100.pt", "checkpoints"),
        ("run/checkpoint-500/optimizer.json", "checkpoints"),
        ("run/last.ckpt", "checkpoints"),
        ("run/final/model.safetensors", "models"),
        ("models/resnet.onnx", "models"),
        ("pytorch_model.bin", "models"),
        ("run/logs/stdout.txt", "logs"),
        ("run/train.log", "logs"),
        ("tb/events.out.tfevents.1700000000.host", "logs"),
        ("notes.txt", "other"),
        ("data/shard-0001.parquet", "other"),
    ],
)
def test_categorize(path: str, category: str) -> None:
    assert categorize(path) == category


# -- checkpoint list ------------------------------------------------------------
def test_checkpoint_list_default_extensions_newest_first(run_dir: Path) -> None:
    res = cli("-o", "json", "checkpoint", "list", str(run_dir))
    assert res.code == 0, res.err
    doc: Any = res.json()
    paths = [c["path"] for c in doc["checkpoints"]]
    newest_first = [f"ckpts/step_{i}.pt" for i in (5, 4, 3, 2, 1)] + ["final/model.safetensors"]
    assert paths == [f"{run_dir}/{p}" for p in newest_first]
    assert doc["count"] == 6
    assert doc["checkpoints"][0]["last_modified"].endswith("Z")


def test_checkpoint_list_pattern_and_text(run_dir: Path) -> None:
    res = cli("checkpoint", "list", str(run_dir), "--pattern", "ckpts/step_[12].pt")
    assert res.code == 0, res.err
    lines = res.out.splitlines()
    assert [line.split()[-1] for line in lines] == [
        f"{run_dir}/ckpts/step_2.pt",
        f"{run_dir}/ckpts/step_1.pt",
    ]
    assert "2 checkpoints" in res.err


def test_checkpoint_list_missing_dir_is_not_found(tmp_path: Path) -> None:
    res = cli("checkpoint", "list", str(tmp_path / "nope"))
    assert res.code == 4
    assert "not found" in res.err


# -- checkpoint cleanup ---------------------------------------------------------
def test_cleanup_dry_run_then_real(run_dir: Path) -> None:
    before = remaining(run_dir)
    dry = cli("-o", "json", "checkpoint", "cleanup", str(run_dir), "--keep-last-n", "2", "--dry-run")
    assert dry.code == 0, dry.err
    doc: Any = dry.json()
    assert doc["dry_run"] is True and doc["deleted_count"] == 4 and doc["candidates"] == 6
    assert remaining(run_dir) == before

    real = cli("checkpoint", "cleanup", str(run_dir), "--keep-last-n", "2")
    assert real.code == 0, real.err
    assert len(real.out.splitlines()) == 4 and all(
        line.startswith("deleted ") for line in real.out.splitlines()
    )
    assert remaining(run_dir) == ["ckpts/step_4.pt", "ckpts/step_5.pt", "config.yaml", "logs/train.log"]


def test_cleanup_pattern_limits_candidates(run_dir: Path) -> None:
    res = cli(
        "-o", "json", "checkpoint", "cleanup", str(run_dir), "--keep-last-n", "1", "--pattern", "ckpts/*"
    )
    assert res.code == 0, res.err
    assert remaining(run_dir) == [
        "ckpts/step_5.pt",
        "config.yaml",
        "final/model.safetensors",
        "logs/train.log",
    ]


def test_keep_zero_needs_force(run_dir: Path) -> None:
    refused = cli("checkpoint", "cleanup", str(run_dir), "--keep-last-n", "0")
    assert refused.code == 2
    assert "--force" in refused.err
    assert len(remaining(run_dir)) == 8
    negative = cli("-o", "json", "checkpoint", "cleanup", str(run_dir), "--keep-last-n", "-1", "--force")
    assert negative.code == 2
    assert negative.json()["error"]["code"] == "usage"  # type: ignore[index]
    forced = cli("checkpoint", "cleanup", str(run_dir), "--keep-last-n", "0", "--force")
    assert forced.code == 0, forced.err
    assert remaining(run_dir) == ["config.yaml", "logs/train.log"]


class FlakyStore(Store):
    """An in-memory store whose listing and deletes can be made to fail."""

    def __init__(self, entries: list[Entry]) -> None:
        self.url = "mem://"
        self.entries = {e.path: e for e in entries}
        self.list_failures: list[bool] = []
        self.fail_delete_after = -1
        self.deletes = 0

    async def list(self) -> AsyncIterator[Entry]:
        if self.list_failures and self.list_failures.pop(0):
            raise NetworkError("connection reset")
        for path in sorted(self.entries):
            yield self.entries[path]

    async def stat(self, path: str) -> Entry | None:
        return self.entries.get(path)

    async def open(
        self, path: str, offset: int = 0, length: int | None = None, version: str | None = None
    ) -> Reader:
        raise NotImplementedError

    async def write(self, path: str, src: Store, entry: Entry, progress: ProgressFn) -> None:
        raise NotImplementedError

    async def delete(self, paths: Iterable[str]) -> None:
        if self.deletes == self.fail_delete_after:
            raise NetworkError("connection reset")
        self.deletes += 1
        for p in paths:
            self.entries.pop(p, None)


def test_cleanup_deletes_in_batches_and_reports_partial_failure() -> None:
    store = FlakyStore([Entry(f"k{i:05}", 1, float(i)) for i in range(2500)])
    result = asyncio.run(cleanup(store, 10, dry_run=True))
    assert len(result.deleted) == 2490 and store.deletes == 0
    store.fail_delete_after = 2
    with pytest.raises(NetworkError, match=r"after deleting 2000 of 2490"):
        asyncio.run(cleanup(store, 10))
    assert len(store.entries) == 500


def test_cleanup_is_a_plan_of_deletes_a_dry_run_shows_and_a_real_run_executes() -> None:
    entries = [Entry(f"step_{i}.pt", i, float(i)) for i in range(1, 6)]
    store = FlakyStore(entries)
    dry = asyncio.run(cleanup(store, 2, dry_run=True))
    assert [(a.kind, a.path, a.size, a.reason) for a in dry.plan.actions] == [
        ("delete", f"step_{i}.pt", i, "not among the newest 2") for i in (3, 2, 1)
    ]
    assert [e.path for e in dry.deleted] == [a.path for a in dry.plan.actions]
    assert len(store.entries) == 5

    events: list[Event] = []
    real = asyncio.run(cleanup(store, 2, reporter=events.append))
    assert [a.path for a in real.plan.actions] == [a.path for a in dry.plan.actions]
    assert [e.path for e in real.deleted] == ["step_3.pt", "step_2.pt", "step_1.pt"]
    deleted_events = [e for e in events if isinstance(e, FileDeleted)]
    assert deleted_events == [FileDeleted(a.path) for a in real.plan.actions]
    assert sorted(store.entries) == ["step_4.pt", "step_5.pt"] and store.deletes == 1  # one batch
    assert real.to_dict()["deleted_bytes"] == 6 and real.to_dict()["kept"][0]["path"] == "step_5.pt"


# -- watch ----------------------------------------------------------------------
def test_watch_reports_add_change_delete_not_baseline(tmp_path: Path) -> None:
    make(tmp_path, "existing.pt", 1_700_000_000)
    steps: dict[int, Callable[[], object]] = {
        0: lambda: make(tmp_path, "new.pt", 1_700_000_100, size=1),
        1: lambda: make(tmp_path, "new.pt", 1_700_000_200, size=2),
        2: lambda: (tmp_path / "new.pt").unlink(),
    }

    def on_poll(n: int) -> None:
        if n in steps:
            steps[n]()

    async def go() -> list[tuple[str, str, int]]:
        gen = watch(LocalStore(tmp_path), interval=0.01, max_polls=4, on_poll=on_poll)
        return [(c.event, c.entry.path, c.entry.size) async for c in gen]

    assert asyncio.run(go()) == [("added", "new.pt", 1), ("changed", "new.pt", 2), ("deleted", "new.pt", 2)]


def test_watch_backs_off_on_network_errors_and_stops() -> None:
    store = FlakyStore([Entry("a", 1, 1.0)])
    store.list_failures = [False, True, True, False, False]
    delays: list[float] = []
    retries: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        delays.append(seconds)
        if len(delays) == 4:
            store.entries["b"] = Entry("b", 2, 2.0)

    async def go() -> list[str]:
        gen = watch(
            store,
            interval=1.0,
            max_polls=10,
            sleep=fake_sleep,
            on_retry=lambda exc, d: retries.append(d),
            stop=lambda: len(delays) >= 5,
        )
        return [f"{c.event}:{c.entry.path}" async for c in gen]

    assert asyncio.run(go()) == ["added:b"]
    assert delays == [1.0, 2.0, 4.0, 1.0, 1.0]
    assert retries == [2.0, 4.0]


def test_watch_rejects_bad_interval(tmp_path: Path) -> None:
    async def go() -> None:
        async for _ in watch(LocalStore(tmp_path), interval=0):
            pass

    with pytest.raises(UsageError):
        asyncio.run(go())


# -- review (core, on a local store) --------------------------------------------
def test_review_local(run_dir: Path) -> None:
    result = asyncio.run(review(LocalStore(run_dir), detailed=True))
    doc = result.to_dict()
    assert doc["count"] == 8
    assert {k: v["count"] for k, v in doc["categories"].items()} == {
        "checkpoints": 5,
        "models": 1,
        "logs": 1,
        "other": 1,
    }
    assert doc["categories"]["checkpoints"]["bytes"] == 15
    assert doc["newest"]["path"] == f"{run_dir}/logs/train.log"  # tie with config.yaml: later key
    assert doc["oldest"]["path"] == f"{run_dir}/final/model.safetensors"
    assert doc["largest"]["path"] == f"{run_dir}/ckpts/step_5.pt"
    assert doc["categories"]["checkpoints"]["objects"][0]["path"] == f"{run_dir}/ckpts/step_5.pt"


def test_naming_comes_from_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from runctl.housekeeping.location import Naming, naming_for
    from runctl.stores.factory import open_store

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    settings = Settings(region="us-east-1")
    s3, _ = open_store("s3://some-bucket/run/ckpts", settings, directory=True)
    assert naming_for(s3) == Naming("key", "run/ckpts/")
    local, _ = open_store(tmp_path, settings, directory=True)
    assert naming_for(local) == Naming("path", f"{tmp_path}/")
    assert naming_for(FlakyStore([])) == Naming("path", "")  # a store that says nothing
