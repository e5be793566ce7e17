"""--shard I/N: rclone's --hash-filter partition, and the helper's copy of it."""

from __future__ import annotations

import hashlib
import random
import unicodedata

import pytest

from runctl.dataload import instance_helper
from runctl.errors import UsageError
from runctl.filters import Shard, parse_shard, shard_of


def reference(path: str, total: int) -> int:
    """rclone's IncludeRemote, written out independently: NFC, Go's per-rune ToLower,
    md5, the first 8 bytes little-endian, modulo N."""
    text = unicodedata.normalize("NFC", path)
    lowered = "".join("i" if c == "\u0130" else c.lower() for c in text)
    return int.from_bytes(hashlib.md5(lowered.encode()).digest()[:8], byteorder="little") % total


PATHS = [
    "a.txt",
    "nested/deep/b.bin",
    "sp ace/it's $x.bin",
    "st*r?.txt",
    "\u0130stanbul.txt",  # U+0130: "i" for Go, "i" + U+0307 for str.lower
    "O\u0394\u039f\u03a3/\u0391\u03a3",  # final capital sigma: U+03C3 for Go, U+03C2 for str.lower
    "cafe\u0301.txt",  # NFD: hashed as its NFC form
    "caf\u00e9.txt",
    "UPPER/Case.TXT",
]


@pytest.mark.parametrize("total", [1, 2, 3, 7, 16])
def test_matches_the_reference_computation(total: int) -> None:
    for path in PATHS:
        assert shard_of(path, total) == reference(path, total)


def test_known_values_pin_the_hash() -> None:
    # md5("a.txt") = 8c4e..., first 8 bytes little-endian: independent of this module.
    digest = hashlib.md5(b"a.txt").digest()
    assert shard_of("a.txt", 1000) == int.from_bytes(digest[:8], "little") % 1000
    assert shard_of("A.TXT", 1000) == shard_of("a.txt", 1000)  # lower-cased first


def test_nfc_and_case_variants_share_a_shard_and_go_lower_is_not_str_lower() -> None:
    assert shard_of("cafe\u0301.txt", 97) == shard_of("caf\u00e9.txt", 97)
    assert shard_of("CAF\u00c9.TXT", 97) == shard_of("caf\u00e9.txt", 97)
    # Where str.lower and Go's ToLower differ, rclone's answer is Go's.
    for special, go_form in [("\u0130x", "ix"), ("\u0391\u03a3", "\u03b1\u03c3")]:
        assert special.lower() != go_form
        assert all(shard_of(special, n) == reference(go_form, n) for n in range(1, 50))


def test_the_path_is_hashed_whole_not_its_leaf() -> None:
    leafs_differ = [n for n in range(2, 60) if shard_of("dir/x.bin", n) != shard_of("x.bin", n)]
    assert leafs_differ


def test_shards_partition_a_set() -> None:
    rng = random.Random(4)
    paths = {f"d{rng.randrange(50)}/f{rng.randrange(10**6)}.bin" for _ in range(3000)}
    parts = [{p for p in paths if Shard(i, 5)(p)} for i in range(5)]
    assert set().union(*parts) == paths
    assert sum(len(p) for p in parts) == len(paths)
    assert all(400 < len(p) < 800 for p in parts)  # roughly even


def test_helper_computes_the_same_partition() -> None:
    rng = random.Random(9)
    alphabet = "aZ \u00e9\u0130\u03a3/$'\"*?-_.\u4e2d"
    paths = PATHS + ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))) for _ in range(500)]
    for path in paths:
        for total in (1, 3, 8):
            assert instance_helper.shard_of(path, total) == shard_of(path, total)


@pytest.mark.parametrize("text", ["3/3", "-1/2", "a/b", "1/0", "0/0", "1", "", "1/2/3", " /2", "0x1/2"])
def test_bad_shards_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_shard(text)
    assert info.value.exit_code == 2


def test_good_shards_parse() -> None:
    assert parse_shard("0/1") == Shard(0, 1)
    assert str(parse_shard("3/8")) == "3/8"
    assert parse_shard(" 2/4 ") == Shard(2, 4)
