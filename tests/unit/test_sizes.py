from __future__ import annotations

import pytest

from runctl.errors import UsageError
from runctl.sizes import human_size, parse_size

KiB = 1024
MiB = 1024**2
GiB = 1024**3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("1048576", 1048576),
        ("8MiB", 8 * MiB),
        ("8mib", 8 * MiB),
        ("8Mi", 8 * MiB),
        ("5MB", 5_000_000),
        ("5mb", 5_000_000),
        ("5M", 5_000_000),
        ("64k", 64_000),
        ("64KiB", 64 * KiB),
        ("1GiB", GiB),
        ("2G", 2_000_000_000),
        ("1TiB", 1024**4),
        ("1TB", 1000**4),
        ("1.5KiB", 1536),
        ("0.5MiB", MiB // 2),
        ("10b", 10),
        ("10B", 10),
        (" 8 MiB ", 8 * MiB),
        ("16 MB", 16_000_000),
    ],
)
def test_parse_size_accepts_units(text: str, expected: int) -> None:
    assert parse_size(text) == expected


def test_parse_size_passes_ints_through() -> None:
    assert parse_size(12345) == 12345


@pytest.mark.parametrize(
    "text", ["", "   ", "abc", "MiB", "8XB", "8 MiBs", "-1", "-5MiB", "1e3", "8MiB/s", "1,000", "0x10"]
)
def test_parse_size_rejects_garbage_with_a_hint(text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_size(text)
    assert info.value.exit_code == 2
    assert repr(text) in info.value.message
    assert "8MiB" in info.value.hint


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, "0 B"),
        (1, "1 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (MiB - 1, "1024.0 KiB"),
        (5 * MiB, "5.0 MiB"),
        (12 * MiB + MiB // 2, "12.5 MiB"),
        (3 * GiB, "3.0 GiB"),
        (2 * 1024**4, "2.0 TiB"),
        (1024**5, "1024.0 TiB"),
    ],
)
def test_human_size(n: int, expected: str) -> None:
    assert human_size(n) == expected


def test_human_size_of_a_rate_float() -> None:
    assert human_size(1536.0) == "1.5 KiB"
    assert human_size(0.0) == "0 B"


@pytest.mark.parametrize("n", [0, 1, 1000, KiB, 3 * KiB, 8 * MiB, 5 * GiB])
def test_human_size_parses_back_for_round_numbers(n: int) -> None:
    assert parse_size(human_size(n)) == n
