"""How a finished Run Command invocation maps to runctl's result or error."""

from __future__ import annotations

import pytest

from runctl.errors import CommandTimedOut, Interrupted, RemoteError
from runctl.remote.ssm_command import CUT_MARKER, CommandSpec, Invocation, Poll, _inline


def invocation(status: str, details: str, code: int | None) -> Invocation:
    return Invocation("i-0123456789abcdef0", status, details, code, b"", b"", False, 1.0)


def test_the_scripts_own_exit_status_is_not_an_error() -> None:
    assert invocation("Success", "Success", 0).error() is None
    assert invocation("Failed", "Failed", 3).error() is None


@pytest.mark.parametrize(
    ("status", "details", "code", "kind"),
    [
        ("TimedOut", "ExecutionTimedOut", 137, CommandTimedOut),
        ("TimedOut", "DeliveryTimedOut", -1, RemoteError),
        ("Failed", "DeliveryTimedOut", -1, RemoteError),
        ("Undeliverable", "Undeliverable", -1, RemoteError),
        ("Cancelled", "Cancelled", 137, Interrupted),
        ("Terminated", "Terminated", -1, RemoteError),
    ],
)
def test_statuses_that_did_not_run_to_the_end_are_one_line_errors(
    status: str, details: str, code: int, kind: type[Exception]
) -> None:
    error = invocation(status, details, code).error()
    assert isinstance(error, kind)
    assert "i-0123456789abcdef0" in error.message and status in error.message
    assert "\n" not in error.message
    if details == "DeliveryTimedOut":
        assert "AmazonSSMManagedInstanceCore" in error.hint
        assert not isinstance(error, CommandTimedOut)


def test_inline_output_cut_by_the_agent_is_flagged_and_the_marker_dropped() -> None:
    cut, flagged = _inline("a" * 23_980 + CUT_MARKER.decode(), 24_000)
    assert flagged and cut == b"a" * 23_980
    whole, flagged = _inline("short\n", 24_000)
    assert not flagged and whole == b"short\n"
    # Cut by bytes: 12,000 two-byte characters are at the limit, whatever their count.
    _, flagged = _inline("\u00e9" * 12_000, 24_000)
    assert flagged


def test_parameters_carry_lines_timeout_and_directory() -> None:
    spec = CommandSpec("a\nb", execution_timeout=60, working_directory="/w")
    expected = {"commands": ["a", "b"], "executionTimeout": ["60"], "workingDirectory": ["/w"]}
    assert spec.parameters() == expected
    assert CommandSpec("x").parameters() == {"commands": ["x"]}


def test_poll_delays_grow_to_a_ceiling_with_jitter() -> None:
    delays = Poll(first=1.0, factor=2.0, most=10.0, jitter=0.1).delays()
    got = [next(delays) for _ in range(8)]
    assert 0.9 <= got[0] <= 1.1
    assert all(9.0 <= d <= 11.0 for d in got[5:])
    assert got == sorted(got[:4]) + got[4:]  # growing until the ceiling
