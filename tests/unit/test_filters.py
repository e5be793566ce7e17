from __future__ import annotations

from runctl.filters import Rule, everything, from_flags, gitignore_spec, glob_selector, rule_lines


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


def test_rules_become_gitignore_lines_includes_negated() -> None:
    rules: list[Rule] = [("exclude", "*.bin"), ("include", "model.bin")]
    assert rule_lines(rules) == ["*.bin", "!model.bin"]
    spec = gitignore_spec(rule_lines(rules))
    assert spec.match_file("other.bin") and not spec.match_file("model.bin")


def test_glob_selector_is_fnmatch_not_gitignore() -> None:
    match = glob_selector(["ckpts/step_*.pt", "*.safetensors"])
    assert match("ckpts/step_10.pt")
    assert match("final/deep/model.safetensors")  # "*" crosses "/", unlike a gitignore "*"
    assert not match("ckpts/STEP_1.pt")  # case-sensitive
    assert not match("logs/step_1.pt")  # not anchored anywhere but the start


def test_glob_selector_without_patterns_uses_the_default() -> None:
    def only_pt(path: str) -> bool:
        return path.endswith(".pt")

    assert glob_selector(None) is everything
    assert glob_selector([], only_pt) is only_pt
