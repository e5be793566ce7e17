"""The partial-download journal: what one run records, the next finds only for the same
object, a torn last line is skipped, and two runs never share one."""

from __future__ import annotations

import os
from pathlib import Path

import crc32c

from runctl.stores.local_partial import PARTIAL_MARK, Partial, crc_of

IDENTITY = {"source": "s3://b/k", "version": '"abc-2"', "size": 30, "range": 10}


def claim(final: Path, identity: dict[str, object] = IDENTITY) -> Partial:
    partial = Partial.claim(final, identity)
    assert partial is not None
    return partial


def test_ranges_recorded_are_found_by_the_next_run(tmp_path: Path) -> None:
    final = tmp_path / "model.bin"
    partial = claim(final)
    assert partial.done == {}
    partial.data.write_bytes(b"x" * 30)
    partial.finished(0, 10, 123)
    partial.finished(20, 10, 456)
    partial.keep()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f".model.bin{PARTIAL_MARK}data",
        f".model.bin{PARTIAL_MARK}journal",
    ]

    again = claim(final)
    assert again.done == {0: (10, 123), 20: (10, 456)}
    again.discard()
    assert list(tmp_path.iterdir()) == []


def left_by_a_killed_run(final: Path, crc: int) -> Partial:
    """What an interrupted run leaves: the data and one range recorded."""
    partial = claim(final)
    partial.data.write_bytes(b"x" * 30)
    partial.finished(0, 10, crc)
    partial.keep()
    return partial


def test_another_version_starts_over(tmp_path: Path) -> None:
    final = tmp_path / "model.bin"
    left_by_a_killed_run(final, 1)

    again = claim(final, {**IDENTITY, "version": '"def-2"'})
    assert again.done == {}
    assert not again.data.exists()  # the old bytes are of another object
    again.discard()


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    final = tmp_path / "f"
    partial = left_by_a_killed_run(final, 7)
    with partial.journal.open("a") as fh:
        fh.write("10 10")  # killed mid-append
    assert claim(final).done == {0: (10, 7)}


def test_nothing_written_leaves_nothing(tmp_path: Path) -> None:
    claim(tmp_path / "f").keep()
    assert list(tmp_path.iterdir()) == []


def test_a_second_run_at_the_same_time_gets_none(tmp_path: Path) -> None:
    held = claim(tmp_path / "f")
    assert Partial.claim(tmp_path / "f", IDENTITY) is None
    held.discard()
    claim(tmp_path / "f").discard()


def test_crc_of_a_range(tmp_path: Path) -> None:
    path = tmp_path / "d"
    path.write_bytes(b"0123456789abcdef")
    fd = os.open(path, os.O_RDONLY)
    try:
        assert crc_of(fd, 4, 6) == crc32c.crc32c(b"456789")
        assert crc_of(fd, 10, 10) == -1  # shorter than recorded
    finally:
        os.close(fd)
