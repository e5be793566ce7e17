"""tar_format's headers, read back by the standard library's tarfile and by GNU tar."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from runctl.stores.tar_format import (
    DIRECTORY,
    END_OF_ARCHIVE,
    REGULAR,
    SYMLINK,
    member_header,
    padding,
)

NS = 1_700_000_000_123_456_789
LONG = "deep/" * 30 + "file-with-a-long-name.py"


def archive() -> bytes:
    out = io.BytesIO()
    for path, flag, data, mode, link in [
        ("pkg", DIRECTORY, b"", 0o755, ""),
        ("pkg/run.sh", REGULAR, b"#!/bin/sh\necho hi\n", 0o755, ""),
        ("pkg/empty.txt", REGULAR, b"", 0o600, ""),
        ("pkg/latest", SYMLINK, b"", 0o777, "run.sh"),
        (LONG, REGULAR, b"x" * 1000, 0o644, ""),
        ("pkg/caf\u00e9 $x 'q'.py", REGULAR, b"unicode", 0o644, ""),
        ("pkg/link-long", SYMLINK, b"", 0o777, LONG),
        (os.fsdecode(b"pkg/raw-\xff.bin"), REGULAR, b"raw", 0o644, ""),
    ]:
        out.write(member_header(path, flag, size=len(data), mtime_ns=NS, mode=mode, link=link))
        out.write(data + padding(len(data)))
    out.write(END_OF_ARCHIVE)
    return out.getvalue()


def test_tarfile_reads_every_field() -> None:
    with tarfile.open(fileobj=io.BytesIO(archive()), encoding="utf-8", errors="surrogateescape") as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert members["pkg"].isdir() and members["pkg"].mode == 0o755
        run = members["pkg/run.sh"]
        assert run.isfile() and run.mode == 0o755 and run.size == 18
        assert tar.extractfile(run).read() == b"#!/bin/sh\necho hi\n"  # type: ignore[union-attr]
        assert run.mtime == pytest.approx(NS / 1e9, abs=1e-6)
        assert members["pkg/empty.txt"].size == 0 and members["pkg/empty.txt"].mode == 0o600
        assert members["pkg/latest"].issym() and members["pkg/latest"].linkname == "run.sh"
        assert members[LONG].size == 1000
        assert tar.extractfile(members[LONG]).read() == b"x" * 1000  # type: ignore[union-attr]
        assert "pkg/caf\u00e9 $x 'q'.py" in members
        assert members["pkg/link-long"].linkname == LONG
        assert os.fsdecode(b"pkg/raw-\xff.bin") in members


def test_gnu_tar_unpacks_with_exact_mtimes_and_modes(tmp_path: Path) -> None:
    subprocess.run(["tar", "-x", "-p", "-o", "-f", "-"], input=archive(), cwd=tmp_path, check=True)
    run = tmp_path / "pkg/run.sh"
    assert run.read_bytes() == b"#!/bin/sh\necho hi\n"
    assert run.stat().st_mode & 0o777 == 0o755
    assert run.stat().st_mtime_ns == NS
    assert (tmp_path / "pkg/latest").readlink() == Path("run.sh")
    assert (tmp_path / LONG).read_bytes() == b"x" * 1000
    assert (tmp_path / "pkg/caf\u00e9 $x 'q'.py").read_bytes() == b"unicode"
    assert (tmp_path / os.fsdecode(b"pkg/raw-\xff.bin")).read_bytes() == b"raw"


def test_record_length_counts_its_own_digits() -> None:
    # A value that makes the record exactly cross from 2 to 3 length digits.
    for n in range(80, 110):
        header = member_header("a" * n + "/" + "b" * 50, REGULAR, mtime_ns=NS)
        pax_size = int(header[124:135], 8)
        data = header[512 : 512 + pax_size]
        pos = 0
        while pos < len(data):
            length = int(data[pos:].split(b" ", 1)[0])
            assert data[pos + length - 1 : pos + length] == b"\n"
            pos += length
        assert pos == pax_size


def test_sizes_beyond_the_ustar_field_use_a_pax_size() -> None:
    big = 9 * 1024**3
    header = member_header("big.bin", REGULAR, size=big, mtime_ns=NS)
    info = tarfile.TarInfo.frombuf(header[-512:], "utf-8", "surrogateescape")
    assert info.size == 0
    assert b" size=%d\n" % big in header
