"""The remote sh scripts: error mapping, the listers (GNU find, perl, BusyBox find + stat),
mtime fixes with every touch, hashing."""

from __future__ import annotations

import os
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest

from runctl.errors import IntegrityError
from runctl.remote import scripts
from runctl.stores.remote_tree import clock_ahead, parse_tree
from runctl.stores.remote_tree import parse_listing as _parse_listing


def test_remote_error_codes() -> None:
    def code(status: int, stderr: str) -> str:
        return scripts.remote_error("tar", status, stderr).code

    assert code(2, "tar: x: Cannot write: No space left on device") == "remote_disk_full"
    assert code(2, "tar: x: Wrote only 4608 of 10240 bytes\ntar: Exiting with failure") == "remote_disk_full"
    assert code(2, "mkdir: cannot create directory 'x': Permission denied") == "remote_not_writable"
    assert code(127, "sh: 1: tar: not found") == "remote_tool_missing"
    assert code(1, "weird") == "remote"


def test_perl_listing_matches_gnu_find(tmp_path: Path) -> None:
    """The fallback lister (remotes without GNU find) must parse like GNU find's output."""
    for rel in ("a.py", "sp ace/b $x.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    (tmp_path / "l").symlink_to("a.py")
    (tmp_path / "e").mkdir()
    os.chmod(tmp_path / "a.py", 0o751)
    gnu = subprocess.run(
        ["find", ".", "-mindepth", "1", "-printf", scripts.LIST_FORMAT],
        cwd=tmp_path,
        capture_output=True,
        check=True,
    ).stdout
    perl = subprocess.run(
        ["perl", "-e", scripts._PERL_LISTER], cwd=tmp_path, capture_output=True, check=True
    ).stdout

    def norm(raw: bytes) -> list[tuple[object, ...]]:
        entries = _parse_listing(raw)
        return sorted((e.path, e.kind, e.size, e.mode, e.link, e.mtime, e.ctime or 0.0) for e in entries)

    mine, theirs = norm(perl), norm(gnu)
    assert [e[:5] for e in mine] == [e[:5] for e in theirs]
    for a, b in zip(mine, theirs, strict=True):  # perl's double against ns: within a millisecond
        assert abs(a[5] - b[5]) < 1e-3 and abs(a[6] - b[6]) < 1e-3, (a, b)


def busybox_path(folder: Path, *extra: str, without: tuple[str, ...] = ()) -> str:
    """A PATH of BusyBox applets only (plus ``extra`` tools of this machine)."""
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.fail("busybox is not installed (apt-get install -y busybox; .ci/run installs it)")
    folder.mkdir()
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for name in [*applets, "busybox"]:
        if name not in without:
            (folder / name).symlink_to(busybox)
    for name in extra:
        found = shutil.which(name)
        assert found, name
        (folder / name).symlink_to(found)
    return str(folder)


def list_with(root: Path, path: str | None, packed: bool = False) -> subprocess.CompletedProcess[bytes]:
    """Run ``list_script`` with that PATH (and that PATH's sh)."""
    env = dict(os.environ, PATH=path) if path else dict(os.environ)
    sh = shutil.which("sh", path=env["PATH"])
    assert sh
    script = scripts.list_script(str(root), packed=packed)
    return subprocess.run([sh, "-s"], input=script.encode(), capture_output=True, env=env)


def awkward_tree(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    for name in ("new\nline", "back\\slash", "sub/sp ace $x", "ünïcødé", "a|b|c"):
        (root / name).write_text(name)
    (root / "li' -> 'nk").symlink_to("sub/sp ace $x")
    (root / "nl-link").symlink_to("x\ny")
    os.chmod(root / "ünïcødé", 0o751)
    (root / ".runctl-tmp-0badc0de").mkdir()  # a staging dir: left out of the entries
    return root


@pytest.mark.parametrize("packed", [False, True])
def test_every_lister_lists_the_same_tree(tmp_path: Path, packed: bool) -> None:
    """GNU find, perl under BusyBox, and BusyBox find + stat: the same entries (names with
    newlines, quotes, '|' and unicode; link targets), each lister named in the header;
    packed (gzip, GNU's or BusyBox's) or not."""
    root = awkward_tree(tmp_path / "tree")
    seen: dict[str, list[tuple[object, ...]]] = {}
    times: dict[str, list[tuple[float, float]]] = {}
    for lister, path in [
        ("gnu", None),
        ("perl", busybox_path(tmp_path / "bb-perl", "perl")),
        ("stat", busybox_path(tmp_path / "bb")),
    ]:
        done = list_with(root, path, packed)
        assert done.returncode == 0, done.stderr
        header = done.stdout.partition(b"\n")[0].split()
        assert (b"packed=gzip" in header) == packed
        listed = parse_tree(done.stdout, "test")
        assert listed.lister == lister
        # GNU tar keeps nanoseconds; BusyBox's (beside perl and stat here) whole seconds
        assert listed.whole_seconds == (lister != "gnu")
        assert listed.clock_ahead is not None and -1 < listed.clock_ahead < 5
        seen[lister] = [(e.path, e.kind, e.size, e.mode, e.link) for e in listed.entries]
        times[lister] = [(e.mtime, e.ctime or 0.0) for e in listed.entries]
    assert seen["gnu"] == seen["perl"] == seen["stat"]
    # Each lister prints its own precision (ns, perl's double, stat's text): the same
    # instants within a millisecond, not the same rounding (1.2675 rounds either way).
    for other in ("perl", "stat"):
        for (m, c), (m2, c2) in zip(times["gnu"], times[other], strict=True):
            assert abs(m - m2) < 1e-3 and abs(c - c2) < 1e-3, (other, m, m2, c, c2)
    assert {e[0] for e in seen["stat"]} == {
        "new\nline",
        "back\\slash",
        "sub",
        "sub/sp ace $x",
        "ünïcødé",
        "a|b|c",
        "li' -> 'nk",
        "nl-link",
    }


def test_a_packed_listing_keeps_the_listers_exit_status(tmp_path: Path) -> None:
    """POSIX sh has no pipefail: a lister that fails inside the gzip pipeline (here a find
    that lists one entry, then exits 3, as on an unreadable directory) still fails the
    script with its own status, and its stderr is kept."""
    root = awkward_tree(tmp_path / "tree")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    real = shutil.which("find")
    (bin_dir / "find").write_text(
        f'#!/bin/sh\ncase "$*" in *maxdepth*) exec {real} "$@";; esac\n'
        f'{real} "$@" -quit; echo "find: ./locked: Permission denied" >&2; exit 3\n'
    )
    (bin_dir / "find").chmod(0o755)
    done = list_with(root, f"{bin_dir}:{os.environ['PATH']}", packed=True)
    assert done.returncode == 3 and b"Permission denied" in done.stderr
    assert b"packed=gzip" in done.stdout.partition(b"\n")[0]
    assert len(parse_tree(done.stdout, "test").entries) == 1  # what it listed arrives whole


def test_a_packed_listing_is_plain_without_gzip(tmp_path: Path) -> None:
    root = awkward_tree(tmp_path / "tree")
    done = list_with(root, busybox_path(tmp_path / "bb", without=("gzip",)), packed=True)
    assert done.returncode == 0, done.stderr
    assert b"packed" not in done.stdout.partition(b"\n")[0]
    assert len(parse_tree(done.stdout, "test").entries) == 8


def test_a_gzip_without_levels_gives_a_plain_listing(tmp_path: Path) -> None:
    """A BusyBox built without FEATURE_GZIP_LEVELS refuses -1: gzip is tried, not only found."""
    root = awkward_tree(tmp_path / "tree")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    real = shutil.which("gzip")
    (bin_dir / "gzip").write_text(
        f'#!/bin/sh\ncase "$1" in -[0-9]) echo "gzip: invalid option" >&2; exit 1;; esac\nexec {real} "$@"\n'
    )
    (bin_dir / "gzip").chmod(0o755)
    done = list_with(root, f"{bin_dir}:{os.environ['PATH']}", packed=True)
    assert done.returncode == 0, done.stderr
    assert b"packed" not in done.stdout.partition(b"\n")[0]
    assert len(parse_tree(done.stdout, "test").entries) == 8


def test_a_damaged_packed_listing_is_an_integrity_error() -> None:
    body = zlib.compress(b"f 644 5 1.0 1.0 a\x00\x00", wbits=31)
    head = b"runctl-list gnu sent=1 now=1 packed=gzip tar\n"
    assert [e.path for e in parse_tree(head + body, "test").entries] == ["a"]
    with pytest.raises(IntegrityError, match="arrived damaged"):
        parse_tree(head + body[:-6], "test")


def test_busybox_tar_means_whole_seconds(tmp_path: Path) -> None:
    """BusyBox tar restores whole-second mtimes: the survey says so, whatever lists."""
    root = awkward_tree(tmp_path / "tree")
    done = list_with(root, busybox_path(tmp_path / "bb"))
    listed = parse_tree(done.stdout, "test")
    assert "tar" in listed.tools and listed.whole_seconds and listed.mtime_precision == 1.0
    assert listed.clock_ahead is not None and listed.clock_ahead >= 0  # BusyBox date: whole seconds


def test_whole_second_listing_is_detected() -> None:
    """No sub-second ctime anywhere: a lister or filesystem with whole seconds only."""

    def listing(ctime: str) -> bytes:
        record = f"f 644 3 1000.5 {ctime} a.py\0\0"
        return b"runctl-list gnu sent=99.5 now=100.25 tar\n" + record.encode()

    assert parse_tree(listing("1000"), "t").whole_seconds
    fine = parse_tree(listing("1000.25"), "t")
    assert not fine.whole_seconds and fine.mtime_precision == 1e-3
    assert fine.clock_ahead == pytest.approx(100.25 + 1e-2 - 99.5)


def test_clock_ahead_bounds() -> None:
    assert clock_ahead("200.123456789", "100") == pytest.approx(100.123456790)
    assert clock_ahead("200.%N", "100") == 101.0  # BusyBox: whole seconds, up to one more
    assert clock_ahead("", "100") is None and clock_ahead("200", "") is None


def test_no_lister_fails_naming_the_tool_and_package_manager(tmp_path: Path) -> None:
    path = busybox_path(tmp_path / "bb", without=("stat",))
    (tmp_path / "bb" / "apk").write_text("#!/bin/sh\n")
    (tmp_path / "bb" / "apk").chmod(0o755)
    done = list_with(tmp_path, path)
    assert done.returncode == 127
    error = scripts.remote_error("listing", done.returncode, done.stderr.decode())
    assert error.code == "remote_tool_missing"
    assert (
        error.hint == "Install GNU find (or perl) on the remote machine: apk add findutils or apk add perl."
    )


def test_install_hints() -> None:
    assert "apt-get install tar" in scripts.install_hint("sh: 1: tar: not found")
    assert "apk add tar" in scripts.install_hint("sh: 1: tar: not found")
    assert scripts.install_hint("tar: not found (missing: tar; package manager: apt-get)") == (
        "Install tar on the remote machine: apt-get install tar."
    )
    assert "apk add gzip" in scripts.install_hint("bash: line 1: gzip: command not found")


@pytest.mark.parametrize("flavour", ["gnu", "busybox"])
def test_touch_sets_mtimes_with_every_touch(tmp_path: Path, flavour: str) -> None:
    """GNU touch takes the ISO stamp (nanoseconds); BusyBox's refuses it and gets POSIX
    -t in UTC (whole seconds), whatever the remote's time zone."""
    root = tmp_path / "root"
    root.mkdir()
    names = ["a.py", "sp ace $x.py", "new\nline"]
    for name in names:
        (root / name).write_text("x")
    stamps = [981173106.789000034, 1_000_000_000.5, 1_700_000_000.0]
    env = dict(os.environ, TZ="JST-9")  # not UTC: -t must be read in UTC all the same
    if flavour == "busybox":
        env["PATH"] = busybox_path(tmp_path / "bb")
    sh = shutil.which("sh", path=env["PATH"])
    assert sh
    script = scripts.touch_script(str(root), list(zip(names, stamps, strict=True)))
    subprocess.run([sh, "-s"], input=script.encode(), env=env, check=True)
    for name, stamp in zip(names, stamps, strict=True):
        got = (root / name).stat().st_mtime_ns
        if flavour == "gnu":
            assert abs(got / 1e9 - stamp) < 1e-6, name  # the float's own precision
        else:
            assert got == int(stamp) * 10**9, name


def test_iso_and_posix_stamps_agree() -> None:
    assert scripts.iso_stamp(981173106.789000034) == "2001-02-03T04:05:06.789000034Z"
    assert scripts.posix_stamp(981173106.789000034) == "200102030405.06"
    assert scripts.iso_stamp(10.9999999999) == "1970-01-01T00:00:11.000000000Z"
    assert scripts.posix_stamp(10.9999999999) == "197001010000.11"  # the same second as the ISO form


@pytest.mark.parametrize("tool", [h[0] for h in scripts.HASHERS])
def test_hash_script_samples_then_digests(tmp_path: Path, tool: str) -> None:
    """Run the remote hash script with the local sh: a file whose ends match gets its
    whole digest, one whose ends differ gets SAMPLE_DIFFERS, a missing one too."""
    import threading

    from runctl.codesync.compare import _digest, _sample_digest

    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is not installed (the CI image installs it)")
    picked = scripts.pick_hasher([tool])
    assert picked is not None
    algo, command = picked
    sample = 4096
    same, changed, middle = tmp_path / "same.bin", tmp_path / "changed.bin", tmp_path / "sp ace $x.bin"
    for path in (same, changed, middle):
        path.write_bytes(os.urandom(50_000))
    expected = {p: _sample_digest(p, algo, sample) for p in (same, changed, middle)}
    changed.write_bytes(os.urandom(50_000))  # rewritten: both ends differ
    data = bytearray(middle.read_bytes())
    data[25_000] ^= 0xFF  # only the middle differs: the sample matches, the digest does not
    middle.write_bytes(bytes(data))
    items: list[tuple[str, str | None]] = [(p.name, expected[p]) for p in (same, changed, middle)]
    items += [("gone.bin", "0" * 64), (same.name, None), ("gone.bin", None)]  # None: the whole digest
    script = scripts.hash_script(str(tmp_path), command, items, sample)
    out = subprocess.run(["sh", "-s"], input=script.encode(), capture_output=True, check=True).stdout
    never = threading.Event()
    assert [line.split()[0] for line in out.decode().splitlines()] == [
        _digest(same, algo, never),
        scripts.SAMPLE_DIFFERS,
        _digest(middle, algo, never),
        scripts.SAMPLE_DIFFERS,
        _digest(same, algo, never),
        "-",
    ]
    assert _digest(middle, algo, never) != _digest(same, algo, never)


def test_pick_hasher_prefers_the_fastest() -> None:
    fastest = scripts.pick_hasher(["md5sum", "sha256sum", "openssl"])
    assert fastest == ("sha256", "openssl dgst -sha256 -r")
    assert scripts.pick_hasher(["md5sum"]) == ("md5", "md5sum")
    assert scripts.pick_hasher(["tar"]) is None


def test_staged_update_renames_files_into_place(tmp_path: Path) -> None:
    """The incremental unpack, run by the local sh: files replaced whole, new
    directories made with their modes, the staging directory gone afterwards."""
    import io
    import tarfile

    root = tmp_path / "root"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "a.py").write_text("old")
    (root / "pkg" / "keep.py").write_text("untouched")
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for name, data in [("pkg/a.py", b"new"), ("new dir/b $x.py", b"b"), ("top.py", b"t")]:
            info = tarfile.TarInfo(".runctl-tmp-test/" + name)  # members lie in the staging dir
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo(".runctl-tmp-test/new dir")
        info.type, info.mode = tarfile.DIRTYPE, 0o700
        tar.addfile(info)
    files = ["pkg/a.py", "new dir/b $x.py", "top.py"]
    script = scripts.staged_update_script(
        str(root), ".runctl-tmp-test", files, [("new dir", 0o700)], existing={"pkg"}
    )
    assert "mkdir -p -- 'new dir'" in script and "mkdir -p -- pkg" not in script
    subprocess.run(["sh", "-c", script], input=archive.getvalue(), check=True)
    assert (root / "pkg" / "a.py").read_text() == "new"
    assert (root / "pkg" / "keep.py").read_text() == "untouched"
    assert (root / "new dir" / "b $x.py").read_text() == "b"
    assert (root / "new dir").stat().st_mode & 0o777 == 0o700
    assert (root / "top.py").read_text() == "t"
    assert not (root / ".runctl-tmp-test").exists()
