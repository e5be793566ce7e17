"""Listings in key order: the external sort, and the local walk's own order."""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runctl.stores.base import Entry
from runctl.stores.local import LocalStore
from runctl.stores.ordering import in_key_order

# Characters that sort either side of "/" (0x2F) and across case and UTF-8 lengths.
ALPHABET = ["a", "b", "A", "Z", "-", ".", "_", "0", "9", " ", "~", "!", "é", "日", "😀", "+"]


def names(rng: random.Random, count: int) -> list[str]:
    found: set[str] = set()
    while len(found) < count:
        depth = rng.randint(1, 4)
        parts = ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 3))) for _ in range(depth)]
        found.add("/".join(p if p not in (".", "..") else p + "x" for p in parts))
    return list(found)


async def served(entries: list[Entry]) -> AsyncIterator[Entry]:
    for entry in entries:
        yield entry
        await asyncio.sleep(0)


async def collect(it: AsyncIterator[Entry]) -> list[str]:
    return [e.path async for e in it]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("spill_at", [1, 7, 100, 10_000])
def test_in_key_order_is_sorted_whatever_the_input_order(seed: int, spill_at: int) -> None:
    rng = random.Random(seed)
    keys = names(rng, 400)
    rng.shuffle(keys)
    entries = [Entry(k, i, 1.5e9 + i, f'"{i}"') for i, k in enumerate(keys)]
    got = asyncio.run(collect(in_key_order(served(entries), spill_at)))
    assert got == sorted(keys)  # Python str order == UTF-8 byte order of the whole key
    assert sorted(keys, key=lambda k: k.encode()) == sorted(keys)


def test_spilled_entries_come_back_whole_and_the_scratch_directory_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    entries = [
        Entry(f"k{i:03d}", i, 1.5e9 + i / 3, f'"{i}"', "file", 0o644, None, 1.6e9 + i)
        for i in range(50, 0, -1)
    ]
    got = asyncio.run(_all(in_key_order(served(entries), 4)))
    assert got == sorted(entries, key=lambda e: e.path)
    assert list(tmp_path.iterdir()) == []


def test_an_abandoned_listing_leaves_no_scratch_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    entries = [Entry(f"k{i:03d}", i, 0.0) for i in range(50, 0, -1)]

    async def first() -> str:
        it = in_key_order(served(entries), 4)
        entry = await anext(it)
        await it.aclose()
        return entry.path

    assert asyncio.run(first()) == "k001"
    assert list(tmp_path.iterdir()) == []


async def _all(it: AsyncIterator[Entry]) -> list[Entry]:
    return [e async for e in it]


@pytest.mark.parametrize("seed", range(6))
def test_the_local_walk_yields_key_order_without_sorting_the_tree(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    root = tmp_path / "tree"
    for key in names(rng, 300):
        path = root / key
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x")
        except (IsADirectoryError, NotADirectoryError, FileExistsError):
            continue  # a generated name that is both a file and a directory
    os.makedirs(root / "empty" / "dirs", exist_ok=True)  # contribute nothing
    expected = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    got = asyncio.run(collect(LocalStore(root).list()))
    assert got == expected
