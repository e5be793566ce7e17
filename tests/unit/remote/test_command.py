"""exec's command line and its stderr capture (the working-directory marker)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from runctl.remote.command import _Capture, command_line

MARK = "runctl-no-workdir-0123456789abcdef"


@pytest.mark.parametrize("cwd_exists", [True, False])
def test_marked_command_line_runs_only_in_the_directory(tmp_path: Path, cwd_exists: bool) -> None:
    where = tmp_path / "it's $(x) dir"
    if cwd_exists:
        where.mkdir()
    line = command_line(["pwd; echo ran >&2"], str(where), MARK)
    proc = subprocess.run(["/bin/sh", "-c", line], capture_output=True, text=True, check=False)
    if cwd_exists:
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"{where}\n", "ran\n")
    else:  # the shell's own cd message is silenced; only the marker says why
        assert (proc.returncode, proc.stdout, proc.stderr) == (1, "", MARK + "\n")


def _feed(chunks: list[bytes]) -> tuple[_Capture, list[bytes]]:
    passed: list[bytes] = []
    capture = _Capture(passed.append, MARK)
    for chunk in chunks:
        capture(chunk)
    capture.flush()
    return capture, passed


@pytest.mark.parametrize("cut", [0, 1, 5, len(MARK), len(MARK) + 1])
def test_the_marker_line_is_taken_out_wherever_the_stream_is_cut(cut: int) -> None:
    data = b"motd line\n" + MARK.encode() + b"\n"
    at = len(b"motd line\n") + cut
    capture, passed = _feed([data[:at], data[at:]])
    assert capture.seen
    assert b"".join(passed) == bytes(capture.data) == b"motd line\n"


def test_other_output_passes_unchanged_and_as_it_arrives() -> None:
    chunks = [b"warning: a", b"bc\nrunctl-no", b"t the marker\n", b"partial"]
    capture, passed = _feed(chunks)
    assert not capture.seen
    assert b"".join(passed) == b"".join(chunks)
    assert passed[0] == b"warning: a"  # not held back: it cannot become the marker


def test_a_near_marker_is_not_taken_out() -> None:
    capture, passed = _feed([MARK.encode() + b"x\n", b"say " + MARK.encode() + b"\n"])
    assert not capture.seen
    assert b"".join(passed) == MARK.encode() + b"x\nsay " + MARK.encode() + b"\n"
