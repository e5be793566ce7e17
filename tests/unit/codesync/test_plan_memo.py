"""The memo of no-change pushes (codesync.plan_memo): answered only for the very same
inputs, and only under a clock bound for which the remembered plan is still empty."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from runctl.codesync.plan_memo import PlanMemo, local_digest, remote_digest
from runctl.engine.compare import UNSURE
from runctl.engine.plan import Action, Plan
from runctl.stores.base import Entry
from tests.unit.codesync.test_racy import compare

RAW = b"runctl-list gnu sent=1.5 now=1.6 packed=gzip tar gzip\n\x1f\x8brecords"


def entries() -> list[Entry]:
    return [
        Entry("a.py", 10, 100.25, None, "file", 0o644, None, None),
        Entry("pkg", 0, 90.0, None, "dir", 0o755, None, None),
        Entry("pkg/l", 0, 95.5, None, "symlink", 0o777, "../a.py", None),
    ]


def empty_plan(skips: int = 3) -> Plan:
    plan = Plan(record_skips=False)
    plan.unrecorded_skips, plan.unrecorded_skip_bytes = skips, 10
    return plan


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RUNCTL_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_remote_digest_ignores_only_the_clock_words() -> None:
    same = remote_digest("()", RAW)
    assert remote_digest("()", RAW.replace(b"sent=1.5 now=1.6", b"sent=9.0 now=9.9")) == same
    assert remote_digest("()", RAW.replace(b" tar", b"")) != same  # another toolset
    assert remote_digest("()", RAW.replace(b"gnu", b"perl")) != same
    assert remote_digest("()", RAW + b"x") != same  # another record
    assert remote_digest("(('exclude', 'x'),)", RAW) != same  # other flags


def test_recalls_only_the_same_inputs_within_the_bound() -> None:
    digest = remote_digest("()", RAW)
    PlanMemo("ssh h:/x").keep(digest, entries(), 0.5, empty_plan())
    memo = PlanMemo("ssh h:/x")  # read back from its file
    plan = memo.recall(digest, entries(), 0.5)
    assert plan is not None and not plan.actions and plan.skip_count == 3 and plan.unrecorded_skip_bytes == 10
    assert memo.recall(digest, entries(), 0.51) is None  # a wider clock bound: plan again
    assert memo.recall(digest, entries(), None) is None
    assert memo.recall(remote_digest("()", RAW + b"x"), entries(), 0.0) is None
    assert PlanMemo("ssh h:/y").recall(digest, entries(), 0.0) is None  # another destination
    for index in range(3):
        for field in range(8):
            changed = entries()
            values = list(changed[index])
            values[field] = {str: "z", int: 7, float: 1.0}.get(type(values[field]), 1.5)
            changed[index] = Entry(*values)
            if changed != entries():
                assert memo.recall(digest, changed, 0.0) is None, (index, field)
    assert memo.recall(digest, entries()[:2], 0.0) is None


def test_only_empty_plans_are_kept(cache: Path) -> None:
    digest = remote_digest("()", RAW)
    busy = empty_plan()
    busy.actions.append(Action("touch", "a.py", 10, "content unchanged", entries()[0]))
    PlanMemo("ssh h:/x").keep(digest, entries(), 0.5, busy)
    warned = empty_plan()
    warned.warnings.append("skipped a path")
    PlanMemo("ssh h:/x").keep(digest, entries(), 0.5, warned)
    assert not (cache / "plans").exists()


def test_a_damaged_memo_is_no_memo(cache: Path) -> None:
    digest = remote_digest("()", RAW)
    PlanMemo("ssh h:/x").keep(digest, entries(), 0.5, empty_plan())
    (kept,) = (cache / "plans").iterdir()
    kept.write_bytes(kept.read_bytes()[:-3])
    assert PlanMemo("ssh h:/x").memo is None


def test_forget_removes_the_file(cache: Path) -> None:
    PlanMemo("ssh h:/x").keep(remote_digest("()", RAW), entries(), 0.5, empty_plan())
    memo = PlanMemo("ssh h:/x")
    assert memo.memo is not None
    memo.forget()
    assert memo.memo is None and not list((cache / "plans").iterdir())
    memo.forget()  # nothing left to remove: no error


def test_turned_off_with_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNCTL_CACHE_DIR", "")
    memo = PlanMemo("ssh h:/x")
    memo.keep(remote_digest("()", RAW), entries(), 0.5, empty_plan())
    assert memo.path is None and PlanMemo("ssh h:/x").memo is None


def test_local_digest_covers_every_field() -> None:
    base = local_digest(entries())
    assert local_digest(entries()) == base
    moved = entries()
    moved[0] = moved[0]._replace(mtime=moved[0].mtime + 1e-9)
    assert local_digest(moved) != base


@pytest.mark.parametrize("whole_seconds", [True, False])
def test_trusted_up_to_is_the_bound_quick_keeps_trusting(tmp_path: Path, whole_seconds: bool) -> None:
    """Differential against ``quick``: below the bound every pair trusted now stays
    trusted; just above it (when it is above the bound used now, and the copies have
    fractional mtimes) one is not."""
    rnd = random.Random(3 if whole_seconds else 4)
    for _ in range(200):
        ahead = rnd.uniform(-2, 2)
        now = compare(tmp_path, whole_seconds=whole_seconds, ahead=ahead)
        pairs = []
        for i in range(rnd.randint(1, 6)):
            mtime = rnd.choice([100.0, 100.25])
            local = mtime + rnd.choice([0.0, 0.0, 0.5])
            s = Entry(f"f{i}", 7, local, mode=0o644)
            d = Entry(f"f{i}", 7, mtime, mode=0o644, ctime=mtime + rnd.uniform(0, 8))
            if now.quick(s, d) is None:
                pairs.append((s, d))
        bound = now.trusted_up_to([d for _, d in pairs] + [Entry("dir", 0, 1.0, kind="dir", ctime=1.0)])
        assert bound >= ahead
        for later in (ahead, (ahead + bound) / 2, bound - 1e-9):
            if later != float("inf"):
                c = compare(tmp_path, whole_seconds=whole_seconds, ahead=later)
                assert all(c.quick(s, d) is None for s, d in pairs), (ahead, later, bound)
        if pairs and bound > ahead and all(d.mtime % 1 for _, d in pairs):
            # Tight where the guard is known (a whole-second copy is held to the wider one).
            c = compare(tmp_path, whole_seconds=whole_seconds, ahead=bound + 1e-6)
            assert any(c.quick(s, d) in (UNSURE, "mtime cannot tell") for s, d in pairs)
