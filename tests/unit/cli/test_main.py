"""Only the named command family's parser is built (start-up time of every run)."""

from __future__ import annotations

import pytest

from runctl.cli.main import family_of


@pytest.mark.parametrize(
    ("argv", "family"),
    [
        (["code", "push", "a", "h:b"], "code"),
        (["-q", "-o", "json", "code", "push"], "code"),
        (["--profile", "code", "s3", "list"], "s3"),
        (["--prof", "code", "s3", "list"], "s3"),  # argparse accepts abbreviations
        (["--config=x.toml", "checkpoint", "list"], "checkpoint"),
        (["--help"], None),
        (["nope", "x"], None),
        ([], None),
    ],
)
def test_family_of(argv: list[str], family: str | None) -> None:
    assert family_of(argv) == family
