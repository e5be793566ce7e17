"""The racy-file rule of the code-push compare (see codesync.compare): equal mtimes are
trusted only when the remote copy was written after the window its mtime cannot tell."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest

from runctl.codesync.compare import CodeCompare
from runctl.engine.compare import UNSURE
from runctl.stores.base import Entry
from runctl.stores.local import LocalStore
from runctl.stores.remote_tree import RemoteTree, RemoteTreeStore


def compare(
    tmp_path: Path, *, whole_seconds: bool, ahead: float | None = 0.0, tools: tuple[str, ...] = ("sha256sum",)
) -> CodeCompare:
    tree = RemoteTree(True, "stat", frozenset(("tar", *tools)), [], (), whole_seconds, ahead)
    return CodeCompare(LocalStore(tmp_path), cast(RemoteTreeStore, None), tree)


def pair(local_mtime: float, remote_mtime: float, remote_ctime: float | None) -> tuple[Entry, Entry]:
    s = Entry("config.yaml", 7, local_mtime, mode=0o644)
    return s, Entry("config.yaml", 7, remote_mtime, mode=0o644, ctime=remote_ctime)


@pytest.mark.parametrize("whole_seconds", [True, False])
def test_whole_second_copy_written_within_its_second_is_compared(tmp_path: Path, whole_seconds: bool) -> None:
    """Local 10.6 vs a remote copy listed as 10 (BusyBox tar, SFTP), written at 10.8:
    an edit at 10.6 after that copy was read would look just the same."""
    c = compare(tmp_path, whole_seconds=whole_seconds)
    assert c.quick(*pair(10.6, 10.0, 10.8)) == UNSURE
    assert c.quick(*pair(10.6, 10.0, 11.9)) == UNSURE  # within WRITE_LAG of the window's end
    assert c.quick(*pair(10.6, 10.0, 12.5)) is None  # written well after: mtimes can tell
    assert c.quick(*pair(10.6, 10.0, None)) == UNSURE  # no ctime: never trusted


def test_clock_skew_widens_the_window(tmp_path: Path) -> None:
    """A remote clock up to 5 s ahead: its ctime 15 may be our 10."""
    c = compare(tmp_path, whole_seconds=True, ahead=5.0)
    assert c.quick(*pair(10.6, 10.0, 16.0)) == UNSURE
    assert c.quick(*pair(10.6, 10.0, 17.5)) is None
    unknown = compare(tmp_path, whole_seconds=True, ahead=None)
    assert unknown.quick(*pair(10.6, 10.0, 1e9)) == UNSURE  # no bound on the skew: content decides


def test_nanosecond_remote_is_racy_only_within_a_tick(tmp_path: Path) -> None:
    c = compare(tmp_path, whole_seconds=False, ahead=0.05)
    assert c.quick(*pair(10.123, 10.123, 10.3)) is None
    assert c.quick(*pair(10.123, 10.123, 10.15)) == UNSURE
    assert c.quick(*pair(10.6, 10.0, 12.5)) is None  # a truncated copy, written long after
    assert c.quick(*pair(11.2, 10.0, 100.0)) == "mtime differs"  # small: resent, not asked about


def test_racy_without_a_digest_tool_is_resent(tmp_path: Path) -> None:
    c = compare(tmp_path, whole_seconds=True, tools=())
    assert c.quick(*pair(10.6, 10.0, 10.8)) == "mtime cannot tell"
