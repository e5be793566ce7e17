"""plan_sync over two in-memory listings (a test double store: planning reads listings only)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterable

import pytest

from runctl.engine.compare import SizeAndMtime
from runctl.engine.sync_plan import plan_sync
from runctl.filters import from_flags
from runctl.stores.base import Entry, ProgressFn, Reader, Store
from runctl.stores.local import safe_relpath


class ListingOnly(Store):
    def __init__(self, entries: list[Entry], url: str = "mem://") -> None:
        self.entries = sorted(entries, key=lambda e: e.path)
        self.url = url

    async def list(self) -> AsyncIterator[Entry]:
        for e in self.entries:
            yield e

    async def stat(self, path: str) -> Entry | None:
        return next((e for e in self.entries if e.path == path), None)

    async def open(
        self, path: str, offset: int = 0, length: int | None = None, version: str | None = None
    ) -> Reader:
        raise AssertionError("planning must not read file contents")

    async def write(self, path: str, src: Store, entry: Entry, progress: ProgressFn) -> None:
        raise AssertionError("planning must not write")

    async def delete(self, paths: Iterable[str]) -> None:
        raise AssertionError("planning must not delete")


def plan(src: list[Entry], dst: list[Entry], **kw: object) -> dict[str, tuple[str, str]]:
    s, d = ListingOnly(src), ListingOnly(dst)
    result = asyncio.run(plan_sync(s, d, SizeAndMtime(s, d), **kw))  # type: ignore[arg-type]
    return {a.path: (a.kind, a.reason) for a in result.actions}


def test_merge_gives_copy_skip_and_delete_with_reasons() -> None:
    src = [Entry("a", 1, 10.0), Entry("b", 2, 10.0), Entry("c", 3, 10.0)]
    dst = [Entry("b", 2, 10.0), Entry("c", 4, 10.0), Entry("d", 1, 10.0)]
    assert plan(src, dst) == {"a": ("copy", "new"), "b": ("skip", "unchanged"), "c": ("copy", "size differs")}
    assert plan(src, dst, delete=True)["d"] == ("delete", "not in source")


def test_filtered_paths_are_neither_copied_nor_deleted() -> None:
    src = [Entry("keep.py", 1, 1.0), Entry("out/x.bin", 1, 1.0)]
    dst = [Entry("out/old.bin", 1, 1.0)]
    actions = plan(src, dst, delete=True, allow=from_flags(order=[("exclude", "out/")]))
    assert actions == {"keep.py": ("copy", "new")}


def test_unsafe_source_paths_are_refused_with_a_warning() -> None:
    s, d = ListingOnly([Entry("../x", 1, 1.0), Entry("ok", 1, 1.0)], "s3://b/p/"), ListingOnly([])
    result = asyncio.run(plan_sync(s, d, SizeAndMtime(s, d)))
    assert [a.path for a in result.actions] == ["ok"]
    assert len(result.warnings) == 1 and "'../x'" in result.warnings[0]


def test_ordering_matches_byte_order_of_s3_listings() -> None:
    # "a.txt" < "a/b" in S3 (and Python string) order; a naive directory walk gets this wrong.
    src = [Entry("a/b", 1, 1.0), Entry("a.txt", 1, 1.0)]
    dst = [Entry("a.txt", 1, 1.0), Entry("a/b", 1, 1.0)]
    assert plan(src, dst) == {"a.txt": ("skip", "unchanged"), "a/b": ("skip", "unchanged")}


def _reference(src: list[Entry], dst: list[Entry], delete: bool) -> list[tuple[str, str]]:
    """The plan as a dict-based planner sees it (no ordering involved), in key order."""
    s, d = {e.path: e for e in src}, {e.path: e for e in dst}
    out: list[tuple[str, str]] = []
    for path in sorted(s.keys() | d.keys()):
        if path not in d:
            out.append(("copy", path))
        elif path not in s:
            if delete:
                out.append(("delete", path))
        else:
            out.append(("copy" if s[path].size != d[path].size else "skip", path))
    return out


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("delete", [False, True])
def test_streaming_merge_matches_a_dict_planner_action_for_action(seed: int, delete: bool) -> None:
    # Keys with "-", ".", "/" and unicode either side of each other, sides that end on
    # keys the other does not have, and listings longer than the merge's read-ahead block.
    rng = random.Random(seed)
    alphabet = ["a", "-", ".", "/", "0", "A", "é", "_", "日"]
    drawn = {"k" + "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))) for _ in range(3000)}
    keys = sorted(k for k in drawn if safe_relpath(k) is not None)
    src = [Entry(k, rng.choice([1, 2]), 10.0) for k in keys if rng.random() < 0.7]
    dst = [Entry(k, rng.choice([1, 2]), 10.0) for k in keys if rng.random() < 0.7]
    src.append(Entry("zzz-only-in-source", 1, 10.0))
    dst.append(Entry("zzzz-only-in-destination", 1, 10.0))
    s, d = ListingOnly(src), ListingOnly(dst)
    result = asyncio.run(plan_sync(s, d, SizeAndMtime(s, d), delete=delete))
    assert [(a.kind, a.path) for a in result.actions] == _reference(src, dst, delete)


def test_unrecorded_skips_are_counted_not_kept() -> None:
    src = [Entry("a", 1, 10.0), Entry("b", 2, 10.0)]
    dst = [Entry("a", 1, 10.0), Entry("b", 3, 10.0)]
    s, d = ListingOnly(src), ListingOnly(dst)
    result = asyncio.run(plan_sync(s, d, SizeAndMtime(s, d), record_skips=False))
    assert [(a.kind, a.path) for a in result.actions] == [("copy", "b")]
    assert result.skip_count == 1


def test_source_files_a_source_filter_refuses_are_absent_there() -> None:
    """A shard's view: the other shards' files are not in its source, so a copy of one in
    the destination goes with --delete (and stays without); the rules still hide a path
    on both sides."""
    src = [Entry("mine.bin", 1, 1.0), Entry("theirs.bin", 1, 1.0), Entry("new-theirs.bin", 1, 1.0)]
    dst = [Entry("theirs.bin", 1, 1.0), Entry("stale.bin", 1, 1.0), Entry("x.log", 1, 1.0)]
    rules = from_flags(order=[("exclude", "*.log")])

    def mine(path: str) -> bool:
        return not path.endswith("theirs.bin")

    assert plan(src, dst, src_allow=mine, allow=rules) == {"mine.bin": ("copy", "new")}
    assert plan(src, dst, src_allow=mine, allow=rules, delete=True) == {
        "mine.bin": ("copy", "new"),
        "stale.bin": ("delete", "not in source"),
        "theirs.bin": ("delete", "not in source"),
    }


def test_unrecorded_skips_count_their_bytes() -> None:
    s = ListingOnly([Entry("a", 3, 1.0), Entry("b", 5, 1.0), Entry("c", 7, 1.0)])
    d = ListingOnly([Entry("a", 3, 1.0), Entry("b", 5, 1.0)])
    result = asyncio.run(plan_sync(s, d, SizeAndMtime(s, d), record_skips=False))
    assert (result.skip_count, result.unrecorded_skip_bytes) == (2, 8)
    assert [a.path for a in result.actions] == ["c"]


@pytest.mark.parametrize("seed", range(6))
def test_listings_in_memory_plan_as_the_streaming_merge_does(seed: int) -> None:
    """Both listings given (code push): the same actions, warnings and skip counts as the
    streamed merge, whatever the options, unsafe names and filtered paths included."""
    rng = random.Random(seed)
    names = [f"{rng.choice(['a', 'b/', 'c-', '../', 'd/e'])}{i}" for i in range(400)]
    keys = sorted(set(names))
    src = [Entry(k, rng.choice([1, 2]), rng.choice([10.0, 11.0])) for k in keys if rng.random() < 0.8]
    dst = [Entry(k, rng.choice([1, 2]), rng.choice([10.0, 11.0])) for k in keys if rng.random() < 0.8]
    options = {
        "delete": rng.random() < 0.5,
        "staged": rng.random() < 0.3,
        "record_skips": rng.random() < 0.5,
        "allow": (lambda p: not p.endswith("7")) if rng.random() < 0.7 else None,
        "src_allow": (lambda p: not p.endswith("3")) if rng.random() < 0.5 else None,
    }

    def run(**given: object) -> tuple[list[tuple[str, str, str]], list[str], int, int]:
        s, d = ListingOnly(src), ListingOnly(dst)
        result = asyncio.run(plan_sync(s, d, SizeAndMtime(s, d), **options, **given))  # type: ignore[arg-type]
        actions: list[tuple[str, str, str]] = [(a.kind, a.path, a.reason) for a in result.actions]
        return actions, result.warnings, result.skip_count, result.unrecorded_skip_bytes

    streamed = run()
    assert run(src_entries=sorted(src), dst_entries=sorted(dst)) == streamed
    assert streamed[2] > 0 and streamed[1]  # some pairs unchanged, some names refused


@pytest.mark.parametrize("seed", range(4))
def test_a_selected_source_plans_as_allow_does_asking_it_only_of_the_destination(seed: int) -> None:
    """``source_selected`` (code push: the source was listed through ``allow``): the same
    plan, streamed or in memory, while ``allow`` hears only destination-only paths."""
    rng = random.Random(seed)
    keys = sorted({f"{rng.choice(['a', 'b/', 'c-', 'd/e'])}{i}" for i in range(300)})
    admitted = {k for k in keys if not k.endswith("7")}
    src = [Entry(k, rng.choice([1, 2]), 10.0) for k in keys if k in admitted and rng.random() < 0.8]
    dst = [Entry(k, rng.choice([1, 2]), 10.0) for k in keys if rng.random() < 0.8]
    options = {"delete": True, "staged": rng.random() < 0.5, "record_skips": rng.random() < 0.5}

    def run(selected: bool, **given: object) -> tuple[list[tuple[str, str, str]], int, set[str]]:
        asked: set[str] = set()

        def allow(path: str) -> bool:
            asked.add(path)
            return path in admitted

        s, d = ListingOnly(src), ListingOnly(dst)
        result = asyncio.run(
            plan_sync(s, d, SizeAndMtime(s, d), allow=allow, source_selected=selected, **options, **given)  # type: ignore[arg-type]
        )
        return [(a.kind, a.path, a.reason) for a in result.actions], result.skip_count, asked

    reference, skips, _ = run(False)
    only_dst = {e.path for e in dst} - {e.path for e in src}
    for given in ({}, {"src_entries": sorted(src), "dst_entries": sorted(dst)}):
        actions, counted, asked = run(True, **given)
        assert (actions, counted) == (reference, skips)
        assert asked == only_dst
    assert any(kind == "delete" for kind, _, _ in reference) and only_dst - admitted  # both kinds seen


def test_a_store_that_lists_safe_paths_is_not_second_guessed() -> None:
    """``lists_safe_paths``: a local tree's names are never unsafe, so they are not tested
    (S3's keys are: test_unsafe_source_paths_are_refused_with_a_warning)."""
    from runctl.stores.local import LocalStore

    assert LocalStore.lists_safe_paths and not ListingOnly.lists_safe_paths
    s, d = ListingOnly([Entry("a/./b", 1, 1.0)]), ListingOnly([])
    s.lists_safe_paths = True  # what such a store declares (a name like this one never comes from it)
    result = asyncio.run(plan_sync(s, d, SizeAndMtime(s, d)))
    assert [a.path for a in result.actions] == ["a/./b"] and not result.warnings
