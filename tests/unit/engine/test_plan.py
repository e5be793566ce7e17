from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from runctl.engine.plan import Action, Plan, plan_copy_all, plan_single, unsafe_path_warning
from runctl.stores.base import Entry


async def entries(*paths: str) -> AsyncIterator[Entry]:
    for i, path in enumerate(paths):
        yield Entry(path, 10 * (i + 1), 1_600_000_000.0 + i)


def plan_of(*paths: str, allow=None, where: str = "s3://b/p/") -> Plan:  # type: ignore[no-untyped-def]
    return asyncio.run(plan_copy_all(entries(*paths), where=where, allow=allow))


def test_copies_every_entry_in_order_with_its_size() -> None:
    plan = plan_of("a", "b/c.txt", "d e/ü.bin")
    assert [(a.kind, a.path, a.size, a.reason) for a in plan.actions] == [
        ("copy", "a", 10, "new"),
        ("copy", "b/c.txt", 20, "new"),
        ("copy", "d e/ü.bin", 30, "new"),
    ]
    assert all(a.entry is not None and a.entry.path == a.path for a in plan.actions)
    assert plan.warnings == []
    assert list(plan.copies) == plan.actions
    assert plan.deletes == [] and plan.skips == []


def test_empty_listing_gives_an_empty_plan() -> None:
    plan = plan_of()
    assert plan.actions == [] and plan.warnings == []


@pytest.mark.parametrize(
    "bad",
    ["../escape.txt", "../../etc/passwd", "a/../../b", "/abs", "a//b", "./x", "a/./b", ".."],
)
def test_unsafe_paths_are_refused_with_a_warning_naming_them(bad: str) -> None:
    plan = plan_of("good/1", bad, "good/2", where="s3://bucket/evil/")
    assert [a.path for a in plan.actions] == ["good/1", "good/2"]
    assert len(plan.warnings) == 1
    assert repr(bad) in plan.warnings[0]
    assert "s3://bucket/evil/" in plan.warnings[0]
    assert plan.warnings[0] == unsafe_path_warning(bad, "s3://bucket/evil/")


def test_every_unsafe_path_gets_its_own_warning() -> None:
    plan = plan_of("../a", "ok", "../b")
    assert [a.path for a in plan.actions] == ["ok"]
    assert len(plan.warnings) == 2
    assert "'../a'" in plan.warnings[0] and "'../b'" in plan.warnings[1]


def test_filter_keeps_only_allowed_paths() -> None:
    plan = plan_of("a.py", "b.txt", "sub/c.py", "sub/d.log", allow=lambda p: p.endswith(".py"))
    assert [a.path for a in plan.actions] == ["a.py", "sub/c.py"]
    assert plan.warnings == []


def test_filter_is_called_with_relative_paths() -> None:
    seen: list[str] = []

    def allow(path: str) -> bool:
        seen.append(path)
        return True

    plan_of("x", "y/z", allow=allow, where="s3://b/prefix/")
    assert seen == ["x", "y/z"]


def test_filter_never_sees_unsafe_paths() -> None:
    seen: list[str] = []

    def allow(path: str) -> bool:
        seen.append(path)
        return True

    plan = plan_of("../x", "ok", allow=allow)
    assert seen == ["ok"]
    assert [a.path for a in plan.actions] == ["ok"]
    assert len(plan.warnings) == 1


def test_filter_that_refuses_everything() -> None:
    plan = plan_of("a", "b", allow=lambda p: False)
    assert plan.actions == [] and plan.warnings == []


def test_plan_single_maps_source_to_a_destination_name() -> None:
    entry = Entry("data/file.bin", 123, 1.0)
    plan = plan_single(entry, "renamed.bin")
    (action,) = plan.actions
    assert (action.kind, action.path, action.target, action.size) == (
        "copy",
        "data/file.bin",
        "renamed.bin",
        123,
    )
    assert action.entry is entry
    assert action.to_dict() == {"action": "copy", "path": "renamed.bin", "size": 123, "reason": "new"}


def test_action_target_defaults_to_path_and_plan_groups_by_kind() -> None:
    plan = Plan(
        [
            Action("copy", "a", 1, "new"),
            Action("skip", "b", 2, "unchanged"),
            Action("delete", "c", 0, "not in source"),
            Action("copy", "d", 4, "changed"),
        ]
    )
    assert [a.target for a in plan.actions] == ["a", "b", "c", "d"]
    assert [a.path for a in plan.copies] == ["a", "d"]
    assert [a.path for a in plan.skips] == ["b"]
    assert [a.path for a in plan.deletes] == ["c"]
    assert plan.actions[2].to_dict() == {
        "action": "delete",
        "path": "c",
        "size": 0,
        "reason": "not in source",
    }


def test_copies_past_the_memory_bound_spill_to_disk_and_come_back_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from runctl.engine import plan as plan_module

    monkeypatch.setattr(plan_module, "COPIES_IN_MEMORY", 2)
    paths = [f"k{i}" for i in range(7)]
    plan = plan_of(*paths)
    plan.add(Action("delete", "gone", 1, "not in source"))
    assert len(plan.actions) == 3  # two copies and the delete; five copies on disk
    assert plan.spilled is not None and len(plan.spilled) == 5
    copies = plan.copies
    assert len(copies) == 7 and bool(copies)
    for _ in range(2):  # iterable as often as needed
        assert [a.path for a in copies] == paths
    spilled = list(copies)[-1]
    assert spilled.entry == Entry("k6", 70, 1_600_000_006.0) and spilled.reason == "new"
    assert [a.kind for a in plan.all_actions()] == ["copy", "copy", "delete"] + ["copy"] * 5
