"""Parallel listing: the cuts of a key space, listed side by side, give exactly the
sorted listing (no key lost, none twice), against a model of S3's delimited listing."""

from __future__ import annotations

import asyncio
import bisect
import random
from collections.abc import AsyncIterator

import pytest

from runctl.stores import s3_listing
from runctl.stores.base import Entry
from runctl.stores.ordering import concat_in_parallel
from tests.unit.stores.test_ordering import names


class Bucket:
    """Sorted keys, listed as S3 lists them: by prefix, one level with a delimiter,
    ``page`` entries (objects and prefixes together) per delimited request."""

    def __init__(self, keys: list[str], page: int = 1000) -> None:
        self.keys = sorted(keys)
        self.page = page
        self.running = 0
        self.most_running = 0

    async def level(self, prefix: str, limit: int) -> s3_listing.Level | None:
        start = bisect.bisect_left(self.keys, prefix)
        dirs: list[str] = []
        objs: list[Entry] = []
        i = start
        while i < len(self.keys) and self.keys[i].startswith(prefix):
            rest = self.keys[i][len(prefix) :]
            if "/" in rest:
                sub = prefix + rest[: rest.index("/") + 1]
                dirs.append(sub)
                i = bisect.bisect_left(self.keys, sub + "\U0010ffff")
            else:
                objs.append(Entry(self.keys[i], 1, 0.0))
                i += 1
            if len(dirs) + len(objs) >= self.page and (not dirs or len(dirs) + len(objs) >= limit):
                more = i < len(self.keys) and self.keys[i].startswith(prefix)
                if more:
                    return None
        return dirs, objs

    async def list_range(self, prefix: str) -> AsyncIterator[Entry]:
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            for key in self.keys[bisect.bisect_left(self.keys, prefix) :]:
                if not key.startswith(prefix):
                    break
                await asyncio.sleep(0)
                yield Entry(key, 1, 0.0)
        finally:
            self.running -= 1


async def paths(it: AsyncIterator[Entry]) -> list[str]:
    return [e.path async for e in it]


def listed(bucket: Bucket) -> list[str]:
    return asyncio.run(paths(s3_listing.listing(bucket.level, bucket.list_range)))


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("page", [1, 3, 1000])
def test_parallel_listing_is_exactly_the_sorted_keys(
    seed: int, page: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    monkeypatch.setattr(s3_listing, "TARGET", rng.choice([2, 5, 64]))
    monkeypatch.setattr(s3_listing, "WINDOW", rng.choice([1, 3, 32]))
    monkeypatch.setattr(s3_listing, "LEVEL_BUDGET", rng.choice([4, 50, 20_000]))
    keys = names(rng, rng.randint(1, 400))
    bucket = Bucket(keys, page)
    assert listed(bucket) == sorted(keys)


def test_keys_either_side_of_a_cut_keep_key_order_not_walk_order() -> None:
    # "a-b" and "a.txt" sort before every "a/..." key ('-' and '.' are below '/'), "a0" after.
    keys = ["a", "a-b", "a.txt", "a/x", "a/y/z", "a0", "a-b/c", "b/c", "é/1", "日本/2", "~"]
    assert listed(Bucket(keys)) == sorted(keys)


def test_a_tree_is_cut_where_it_branches_and_listed_side_by_side(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3_listing, "WINDOW", 8)
    keys = [f"train/class{c:03d}/img{i:04d}.jpg" for c in range(100) for i in range(20)] + ["README"]
    bucket = Bucket(keys)
    cuts = asyncio.run(s3_listing.cut(bucket.level))
    assert [c.key for c in cuts if c.is_range] == [f"train/class{c:03d}/" for c in range(100)]
    assert [c.key for c in cuts if not c.is_range] == ["README"]
    assert listed(bucket) == sorted(keys)
    assert bucket.most_running == 8


def test_a_flat_prefix_stays_one_range_after_one_look() -> None:
    keys = [f"img{i:06d}.jpg" for i in range(5000)]
    bucket = Bucket(keys, page=1000)
    cuts = asyncio.run(s3_listing.cut(bucket.level))
    assert [(c.key, c.final) for c in cuts] == [("", True)]
    assert listed(bucket) == keys


def test_a_marker_object_is_not_listed_as_a_file() -> None:
    # The marker "d/" is an object of level "d/" once that level is looked into.
    bucket = Bucket(["d/", "d/a", "d/b", "e"])
    assert listed(bucket) == ["d/a", "d/b", "e"]


async def numbers(start: int, count: int, fail_at: int | None = None) -> AsyncIterator[int]:
    for i in range(start, start + count):
        if i == fail_at:
            raise ValueError(f"listing failed at {i}")
        await asyncio.sleep(0)
        yield i


def test_concat_keeps_the_order_of_the_sources() -> None:
    sources: list[s3_listing.Source[int]] = []
    for s in range(0, 1000, 100):
        sources.append(lambda s=s: numbers(s, 50))
        sources.append(list(range(s + 50, s + 100)))

    async def run() -> list[int]:
        return [i async for i in concat_in_parallel(sources, window=3, batch=7)]

    assert asyncio.run(run()) == list(range(1000))


def test_concat_raises_a_listing_error_when_the_reader_reaches_it() -> None:
    sources: list[s3_listing.Source[int]] = [lambda: numbers(0, 10), lambda: numbers(10, 10, fail_at=15)]

    async def run() -> list[int]:
        got: list[int] = []
        with pytest.raises(ValueError, match="at 15"):
            async for i in concat_in_parallel(sources, window=2, batch=2):
                got.append(i)
        return got

    assert asyncio.run(run()) == list(range(14))


def test_leaving_early_stops_every_listing() -> None:
    bucket = Bucket([f"d{d}/k{i}" for d in range(10) for i in range(500)])

    async def run() -> None:
        it = s3_listing.listing(bucket.level, bucket.list_range)
        async for _ in it:
            break
        await it.aclose()  # type: ignore[attr-defined]
        await asyncio.sleep(0)

    asyncio.run(run())
    assert bucket.running == 0
