"""Parallel listing against SeaweedFS: a prefix cut into ranges where its tree branches
lists exactly what a page-by-page listing lists, in key order, markers dropped."""

from __future__ import annotations

import asyncio
import random

import obstore
import pytest
from obstore.store import S3Store as ObS3Store

from runctl.aio import run
from runctl.settings import Settings
from runctl.stores import s3, s3_listing
from runctl.stores.base import Entry
from runctl.stores.factory import open_store
from tests.conftest import S3Server
from tests.unit.stores.test_ordering import names


def seed(server: S3Server, prefix_url: str, keys: dict[str, bytes]) -> None:
    env = server.server.env()
    store = ObS3Store(
        server.bucket,
        endpoint=server.endpoint,
        region="us-east-1",
        access_key_id=env["AWS_ACCESS_KEY_ID"],
        secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        client_options={"allow_http": True},
        virtual_hosted_style_request=False,
    )
    prefix = prefix_url.removeprefix(f"s3://{server.bucket}/")

    async def put_all() -> None:
        gate = asyncio.Semaphore(32)

        async def put(key: str, body: bytes) -> None:
            async with gate:
                await obstore.put_async(store, prefix + key, body)

        await asyncio.gather(*(put(k, v) for k, v in keys.items()))

    run(put_all())


def listing(url: str) -> list[tuple[str, int, str | None]]:
    async def go() -> list[Entry]:
        store, _ = open_store(url, Settings(), directory=True)
        async with store:
            return [e async for e in store.list()]

    return [(e.path, e.size, e.etag) for e in run(go())]


@pytest.mark.parametrize("seed_no", range(3))
def test_parallel_listing_matches_the_page_by_page_one(
    s3_env: S3Server, monkeypatch: pytest.MonkeyPatch, seed_no: int
) -> None:
    rng = random.Random(seed_no)
    # Not empty: an empty "a" beside "a/..." keys reads as the marker "a/" (see the
    # obstore lists a marker "a/" as "a"; both are empty, and S3Store takes it for the marker).
    keys = {k: rng.randbytes(rng.randint(1, 3)) for k in names(rng, 250)}
    # Where walk order and key order differ, an object beside a prefix of its name,
    # a directory marker and an empty file.
    keys |= {"a": b"1", "a-b": b"2", "a.txt": b"3", "a/x": b"4", "a/y/z": b"5", "a0": b"6"}
    keys |= {"marked/": b"", "marked/in": b"7", "empty": b""}
    url = s3_env.fresh_prefix()
    seed(s3_env, url, keys)
    expected = sorted(k for k in keys if not k.endswith("/"))

    monkeypatch.setattr(s3, "_ONE_PAGE", 10**9)
    one_by_one = listing(url)
    assert [p for p, _, _ in one_by_one] == expected

    monkeypatch.setattr(s3, "_ONE_PAGE", 5)
    monkeypatch.setattr(s3_listing, "LEVEL_PAGE", 2)  # delimited levels page too
    monkeypatch.setattr(s3_listing, "TARGET", rng.choice([3, 64]))
    monkeypatch.setattr(s3_listing, "WINDOW", rng.choice([2, 32]))
    monkeypatch.setattr(s3_listing, "LEVEL_BUDGET", rng.choice([4, 20_000]))
    assert listing(url) == one_by_one


def test_a_flat_prefix_over_one_page_lists_whole(s3_env: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3, "_ONE_PAGE", 5)
    monkeypatch.setattr(s3_listing, "LEVEL_PAGE", 4)
    keys = {f"img{i:03d}.jpg": b"x" for i in range(40)} | {"sub/one": b"y"}
    url = s3_env.fresh_prefix()
    seed(s3_env, url, keys)
    assert [p for p, _, _ in listing(url)] == sorted(keys)


def test_a_flat_first_page_goes_on_page_by_page_without_a_delimited_look(
    s3_env: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full first page of objects side by side would be a level not worth cutting: the
    listing continues from it, with no botocore client (its import and client cost ~0.2 s)
    and no second request for the first page; objects and a sub-tree after it still list."""
    monkeypatch.setattr(s3, "_ONE_PAGE", 5)
    keys = {f"img{i:03d}.jpg": b"x" for i in range(12)} | {"sub/one": b"y", "sub/two/three": b"z"}
    url = s3_env.fresh_prefix()
    seed(s3_env, url, keys)
    looks: list[str] = []

    async def no_look(self: s3.S3Store, key: str, limit: int | None) -> None:
        looks.append(key)

    monkeypatch.setattr(s3.S3Store, "_level", no_look)

    async def go() -> tuple[list[str], object]:
        store, _ = open_store(url, Settings(), directory=True)
        async with store:
            assert isinstance(store, s3.S3Store)
            return [e.path async for e in store.list()], store._boto

    paths, client = run(go())
    assert paths == sorted(keys)
    assert looks == [] and client is None
