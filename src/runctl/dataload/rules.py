"""--exclude/--include (gitignore rules) as s5cmd, AWS CLI and sh ``case`` wildcards, when
that can be done faithfully.

All three match a path relative to the source prefix against wildcards in which ``*``
also crosses "/" (s5cmd's are regexes with ``.*``, the AWS CLI uses fnmatch, ``case``
patterns are not pathname patterns). A gitignore rule is translated to the union of a
few such wildcards that match exactly the paths the rule matches, for these shapes only:

* a literal name or a name with one leading or trailing ``*`` (``data``, ``*.tmp``,
  ``ckpt*``), matching at any depth, as a file or as a directory;
* an anchored literal path (``/data``, ``logs/2024``), optionally ending in ``*``
  (``logs/run*``);
* either of these ending in "/", matching directories only.

Rule lists must also rank matches the way the tools do: s5cmd drops a key that matches
any exclude and cannot re-include, the AWS CLI lets the last matching flag win. pathspec
(runctl's filters) ranks a match of the file above a match of one of its directories, so
the lists that translate are: only excludes (every tool), or only directory rules in any
order (the AWS CLI). Anything else (``?``, ``[...]``, ``**``, escapes, a ``*`` inside a name,
an include after a file pattern) returns None, and the script filters the key list with
python3 instead: it never guesses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from shlex import quote

from ..filters import Rule

Wildcard = tuple[str, ...]
"""Literal pieces joined by ``*`` (the only wildcard used): ``("logs/", "")`` is ``logs/*``."""


@dataclass(frozen=True)
class Translated:
    kind: str
    """"exclude" or "include"."""
    wildcards: tuple[Wildcard, ...]
    dir_only: bool


def translate(pattern: str) -> tuple[tuple[Wildcard, ...], bool] | None:
    """The wildcards whose union matches what the gitignore ``pattern`` matches, and
    whether it matches directories only; None when the pattern has another shape."""
    if not pattern or pattern != pattern.strip() or pattern[0] in "#!":
        return None
    if any(ch in pattern for ch in "?[]\\{}") or "**" in pattern:
        return None
    dir_only = pattern.endswith("/")
    body = pattern[:-1] if dir_only else pattern
    anchored = body.startswith("/") or "/" in body
    body = body.removeprefix("/")
    if not body or body.startswith("/") or body.endswith("/") or "//" in body:
        return None
    parts = body.split("/")
    if any(part in (".", "..") for part in parts):
        return None
    if anchored:
        if "*" in body[:-1]:
            return None  # only a trailing "*", in the last component
        name = _pieces(body)
        return ((_dir(name),) if dir_only else _unique([name, _dir(name)])), dir_only
    word = parts[0]
    stars = word.count("*")
    if stars > 1 or (stars == 1 and word != "*" and not word.startswith("*") and not word.endswith("*")):
        return None
    piece = _pieces(word)
    found = [_dir(piece)] if dir_only else [piece, _dir(piece)]
    if piece[0]:  # at any depth too (a leading "*" already crosses the directories above)
        found += [_join(("", "/"), w) for w in found]
    return _unique(found), dir_only


def _pieces(literal_with_stars: str) -> Wildcard:
    return tuple(literal_with_stars.split("*"))


def _join(a: Wildcard, b: Wildcard) -> Wildcard:
    """``a`` followed by ``b``."""
    return (*a[:-1], a[-1] + b[0], *b[1:])


def _dir(w: Wildcard) -> Wildcard:
    """``w/*``: everything below what ``w`` matches."""
    return _join(w, ("/", ""))


def _unique(found: Sequence[Wildcard]) -> tuple[Wildcard, ...]:
    return tuple(dict.fromkeys(found))


def translate_rules(rules: Sequence[Rule]) -> list[Translated] | None:
    """Every rule translated, or None if one is not."""
    out: list[Translated] = []
    for kind, pattern in rules:
        done = translate(pattern)
        if done is None:
            return None
        out.append(Translated(kind, *done))
    return out


def for_s5cmd(rules: Sequence[Rule]) -> list[str] | None:
    """s5cmd ``--exclude`` values, or None: s5cmd has no ordered re-include."""
    done = translate_rules(rules)
    if done is None or any(t.kind == "include" for t in done):
        return None
    return [_as_glob(w) for t in done for w in t.wildcards]


def for_aws(rules: Sequence[Rule]) -> list[tuple[str, str]] | None:
    """AWS CLI ``--exclude``/``--include`` flags in order (the last match wins), or None."""
    done = translate_rules(rules)
    if done is None:
        return None
    if any(t.kind == "include" for t in done) and not all(t.dir_only for t in done):
        return None
    return [(t.kind, _as_glob(w)) for t in done for w in t.wildcards]


def _as_glob(w: Wildcard) -> str:
    return "*".join(w)  # no piece holds a wildcard character: translate() refused those


def case_arms(rules: Sequence[Rule]) -> list[tuple[str, str]] | None:
    """sh ``case`` patterns, last rule first, with what a match means ("exclude" or
    "include"): the first arm that matches decides, as the last flag does for the AWS
    CLI. None when neither s5cmd nor the AWS CLI could take the rules."""
    if for_aws(rules) is None:
        return None
    done = translate_rules(rules)
    assert done is not None
    return [(t.kind, "|".join(_as_case(w) for w in t.wildcards)) for t in reversed(done)]


def _as_case(w: Wildcard) -> str:
    """A wildcard as a case pattern: literal pieces quoted, ``*`` bare."""
    return "*".join(quote(piece) if piece else "" for piece in w)


def matches(w: Wildcard, path: str) -> bool:
    """Whether ``path`` matches the wildcard (``*`` crossing "/"), as the tools match it."""
    if len(w) == 1:
        return path == w[0]
    if not (path.startswith(w[0]) and path.endswith(w[-1]) and len(path) >= len(w[0]) + len(w[-1])):
        return False
    at, end = len(w[0]), len(path) - len(w[-1])
    for piece in w[1:-1]:
        found = path.find(piece, at, end)
        if found < 0:
            return False
        at = found + len(piece)
    return True


def last_match_passes(rules: Sequence[Rule], path: str) -> bool | None:
    """How the AWS CLI (last match wins) and the script's report decide ``path``, from the
    translated rules; None when the rules do not translate."""
    done = translate_rules(rules)
    if done is None:
        return None
    keep = True
    for t in done:
        if any(matches(w, path) for w in t.wildcards):
            keep = t.kind == "include"
    return keep
