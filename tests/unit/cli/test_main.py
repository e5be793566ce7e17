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


def test_usage_errors_are_json_when_json_is_asked_for() -> None:
    import io
    import json

    from runctl.cli.main import run_cli

    out, err = io.StringIO(), io.StringIO()
    assert run_cli(["-o", "json", "s3", "frob"], out, err) == 2
    doc = json.loads(out.getvalue())
    assert doc["ok"] is False and doc["error"]["code"] == "usage"
    assert "frob" in doc["error"]["message"] and "--help" in doc["error"]["hint"]
    out, err = io.StringIO(), io.StringIO()
    assert run_cli(["s3", "upload"], out, err) == 2
    assert out.getvalue() == ""
    assert err.getvalue().startswith("error: runctl s3 upload: the following arguments are required")


def test_transfer_start_up_leaves_error_and_spill_modules_unloaded() -> None:
    """html (S3 error replies) and pickle (plans that spill to disk) load only when used:
    ~3 ms of every command's start-up otherwise. A fresh interpreter: this one has them."""
    import subprocess
    import sys

    code = (
        "import sys, runctl.cli.main, runctl.stores.s3, runctl.engine.execute, runctl.stores.ordering; "
        "loaded = {'html', 'pickle'} & set(sys.modules); assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
