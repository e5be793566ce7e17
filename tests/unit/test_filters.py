from __future__ import annotations

from runctl.filters import from_flags


def test_later_flags_win_and_include_re_adds() -> None:
    f = from_flags(order=[("exclude", "data/"), ("include", "data/small/"), ("exclude", "*.tmp")])
    assert f("code.py")
    assert not f("data/big.bin")
    assert f("data/small/x.txt")
    assert not f("data/small/x.tmp")


def test_gitignore_anchoring_and_negation() -> None:
    f = from_flags(order=[("exclude", "/build"), ("exclude", "*.log"), ("include", "keep.log")])
    assert not f("build/out.o")
    assert f("src/build/out.o")  # anchored: only the top-level build/
    assert not f("deep/x.log")
    assert f("deep/keep.log")


def test_empty_filter_allows_everything_and_is_falsy() -> None:
    f = from_flags()
    assert not f
    assert f("anything/at/all")


def test_excludes_then_includes_without_order() -> None:
    f = from_flags(excludes=["*.bin"], includes=["model.bin"])
    assert f("model.bin") and not f("other.bin")
