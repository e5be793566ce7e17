"""Rules as tool wildcards: translated only where the translation is exact, and the
helper's stdlib evaluation of the rules agrees with runctl's Filter."""

from __future__ import annotations

import functools
import random
import re
from fnmatch import fnmatchcase

import pytest

from runctl.dataload import instance_helper
from runctl.dataload.rules import case_arms, for_aws, for_s5cmd, last_match_passes, matches, translate
from runctl.filters import Rule, filter_passes, from_flags, precedence, rule_regexes

NAMES = ["a", "data", "x.txt", "sp ace", "\u00fc", "it's", "$v", "log"]
SHAPES = ("{}", "{}/", "*{}", "{}*", "*{}/", "/{}", "/{}/", "a/{}", "a/{}*/")
TRANSLATABLE = [shape.format(n) for n in NAMES for shape in SHAPES] + ["*", "*/"]
UNTRANSLATABLE = ["a*b", "?x", "[ab]*", "**/a", "a/**", "\\#a", "!a", " a", "a//b", "a/*/b", "a/*.txt", ""]
COMPONENTS = ["a", "data", "x.txt", "sp ace", "\u00fc", "it's", "$v", "log", "alog", "loga", "b", "a.b", "ab"]


@functools.cache
def corpus(seed: int = 7, n: int = 3000) -> list[str]:
    rng = random.Random(seed)
    return sorted({"/".join(rng.choice(COMPONENTS) for _ in range(rng.randint(1, 4))) for _ in range(n)})


@pytest.mark.parametrize("pattern", TRANSLATABLE)
def test_each_translation_matches_exactly_what_the_rule_matches(pattern: str) -> None:
    done = translate(pattern)
    assert done is not None
    rule = from_flags([("exclude", pattern)])
    for path in corpus():
        assert any(matches(w, path) for w in done[0]) == (not rule(path)), (pattern, path)
        # The tools' matchers agree with ours: fnmatch (the AWS CLI), where "*" crosses "/".
        assert any(fnmatchcase(path, "*".join(w)) for w in done[0]) == (not rule(path))


@pytest.mark.parametrize("pattern", UNTRANSLATABLE)
def test_other_shapes_are_not_translated(pattern: str) -> None:
    assert translate(pattern) is None


def test_which_rule_lists_each_tool_can_take() -> None:
    excludes: list[Rule] = [("exclude", "*.tmp"), ("exclude", "/logs/")]
    assert for_s5cmd(excludes) is not None and for_aws(excludes) is not None
    dirs: list[Rule] = [("exclude", "data/"), ("include", "data/small/")]
    assert for_s5cmd(dirs) is None  # s5cmd cannot re-include
    assert for_aws(dirs) == [("exclude", "data/*"), ("exclude", "*/data/*"), ("include", "data/small/*")]
    # pathspec ranks a file match above a directory match: not "the last flag wins".
    mixed: list[Rule] = [("exclude", "*.txt"), ("include", "keep/")]
    assert not from_flags(mixed)("keep/a.txt")
    assert for_aws(mixed) is None and case_arms(mixed) is None
    assert for_s5cmd([("exclude", "[ab]*")]) is None


def test_translated_lists_decide_as_the_filter_does() -> None:
    rng = random.Random(3)
    tried = 0
    while tried < 300:
        rules: list[Rule] = [
            (rng.choice(["exclude", "include"]), rng.choice(TRANSLATABLE)) for _ in range(rng.randint(1, 4))
        ]
        if for_aws(rules) is None:
            continue
        tried += 1
        f = from_flags(rules)
        for path in corpus()[::11]:
            assert last_match_passes(rules, path) == f(path), (rules, path)


def test_helper_evaluates_any_rules_as_the_filter_does() -> None:
    rng = random.Random(5)
    patterns = TRANSLATABLE + UNTRANSLATABLE[:-1] + ["keep/", "*.txt", "a/x.txt"]
    order = precedence()
    for _ in range(600):
        rules: list[Rule] = [
            (rng.choice(["exclude", "include"]), rng.choice(patterns)) for _ in range(rng.randint(1, 5))
        ]
        f = from_flags(rules)
        compiled = [(excludes, re.compile(regex)) for excludes, regex in rule_regexes(rules)]
        for path in corpus(n=400)[::3]:
            assert instance_helper.passes(compiled, path, order) == f(path), (rules, path)
            assert filter_passes(compiled, path, order) == f(path)


def test_case_arms_are_quoted_sh_patterns_last_rule_first() -> None:
    arms = case_arms([("exclude", "data/"), ("include", "data/it's $v/")])
    assert arms == [("include", "'data/it'\"'\"'s $v/'*"), ("exclude", "data/*|*/data/*")]
