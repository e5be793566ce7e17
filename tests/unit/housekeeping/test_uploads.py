"""Ages for `s3 abort-uploads --older-than`."""

from __future__ import annotations

import pytest

from runctl.errors import UsageError
from runctl.housekeeping.uploads import parse_age


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("30m", 1800), ("12h", 43200), ("1d", 86400), ("2W", 1209600), ("1.5h", 5400)],
)
def test_ages(text: str, seconds: float) -> None:
    assert parse_age(text) == seconds


@pytest.mark.parametrize("text", ["", "1", "d", "-1d", "1y", "1 day"])
def test_bad_ages(text: str) -> None:
    with pytest.raises(UsageError):
        parse_age(text)
